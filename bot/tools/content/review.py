"""``content review`` and ``content migrate-review``: record that a partner organisation checked an
answer, and move answer files from the old review fields.

Both edit answer files line by line, so comments, order and formatting stay as the editor wrote them."""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ...knowledge import Entry, KnowledgeBase
from ...settings import Settings

__all__ = ["Migration", "migrate_review", "record_check"]

_TOP_LEVEL = re.compile(r"^[^\s#]")


def _entry_blocks(lines: list[str]) -> dict[str, tuple[int, int]]:
    """Top-level entry → (index of its 'key:' line, index after its last line)."""
    starts = [i for i, line in enumerate(lines) if _TOP_LEVEL.match(line)]
    blocks: dict[str, tuple[int, int]] = {}
    for n, start in enumerate(starts):
        key = lines[start].split(":", 1)[0].strip().strip("\"'")
        blocks.setdefault(key, (start, starts[n + 1] if n + 1 < len(starts) else len(lines)))
    return blocks


def _indent_of(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _field_indent(lines: list[str], start: int, end: int) -> str:
    """The indentation of an entry's fields (two spaces in every shipped file)."""
    for line in lines[start + 1 : end]:
        if line.strip() and not line.lstrip().startswith("#"):
            return " " * _indent_of(line)
    return "  "


def _field_at(line: str, indent: str, name: str) -> bool:
    """True when ``line`` is the field ``name`` of an entry whose fields are indented by ``indent``."""
    return re.match(rf"{indent}{re.escape(name)}\s*:", line) is not None and _indent_of(line) == len(indent)


def _field_value(line: str) -> str:
    return line.split(":", 1)[1].split("#", 1)[0].strip().strip("\"'")


def _eol(line: str) -> str:
    return "\r\n" if line.endswith("\r\n") else "\n"


def _set_check(lines: list[str], start: int, end: int, by: str, on: dt.date) -> list[str]:
    """The entry's lines with its 'checked:' block (if any) replaced by one after 'updated:'."""
    indent = _field_indent(lines, start, end)
    body: list[str] = []
    rest = lines[start + 1 : end]
    i = 0
    while i < len(rest):
        if _field_at(rest[i], indent, "checked"):
            i += 1
            while i < len(rest) and rest[i].strip() and _indent_of(rest[i]) > len(indent):
                i += 1
            continue
        body.append(rest[i])
        i += 1
    # "last_reviewed:" is the old name of "updated:" (before `content migrate-review`).
    anchor = next((j for j, line in enumerate(body) if _field_at(line, indent, "updated")), None)
    if anchor is None:
        anchor = next((j for j, line in enumerate(body) if _field_at(line, indent, "last_reviewed")), None)
    if anchor is None:
        raise ValueError("the entry has no 'updated:' line: add one (the day the text last changed) first")
    eol = _eol(body[anchor])
    if not body[anchor].endswith("\n"):
        body[anchor] += eol
    block = [
        f"{indent}checked:{eol}",
        f"{indent * 2}by: {json.dumps(by, ensure_ascii=False)}{eol}",
        f"{indent * 2}on: {on.isoformat()}{eol}",
    ]
    return [*lines[: start + 1], *body[: anchor + 1], *block, *body[anchor + 1 :], *lines[end:]]


def record_check(
    settings: Settings,
    kb: KnowledgeBase,
    city: str,
    key: str,
    by: str,
    on: dt.date | None = None,
    today: dt.date | None = None,
) -> str:
    """Record that organisation ``by`` checked the answer ``city`` uses for ``key``; say what changed.

    The entry is the one the city actually uses: its own, else its country's. Raises ValueError with a
    plain-language message when the city, the key or the entry cannot be found.
    """
    today = today or dt.date.today()
    on = on or today
    by = by.strip()
    if city not in settings.cities:
        raise ValueError(f"unknown city '{city}'; choose one of: {', '.join(settings.cities)}")
    spec = kb.cities.get(city)
    if spec is None:
        raise ValueError(f"the city '{city}' has no content yet (content/cities/{city}/city.yml)")
    if key not in kb.taxonomy.content_keys:
        raise ValueError(f"unknown key '{key}'; see content/keys.yml for the list")
    if not by:
        raise ValueError('name the organisation that checked it, e.g. --by "Integration Centre Prague"')
    if on > today:
        raise ValueError(f"the date {on} is in the future: give the day the organisation checked the answer")
    folders = (f"{kb.root.name}/cities/{city}/", f"{kb.root.name}/countries/{spec.country}/")
    broken = [p for p in kb.errors if p.entry == key and p.file.startswith(folders)]
    if broken:
        raise ValueError(
            f"the entry '{key}' in {broken[0].file} has errors: fix them first "
            "(`python -m bot content check` lists them)"
        )
    found = kb.entry(city, key)
    if found is None:
        raise ValueError(
            f"{city} has no answer for '{key}': neither content/cities/{city}/ nor "
            f"content/countries/{spec.country}/ has an entry '{key}:'. Write the answer first."
        )
    rel, _, line_text = found[1].partition(":")
    path = Path(rel) if Path(rel).is_absolute() else kb.root.parent / rel
    raw = path.read_bytes().decode("utf-8")
    lines = raw.splitlines(keepends=True)
    blocks = _entry_blocks(lines)
    if key not in blocks:
        raise ValueError(f"the entry '{key}:' was not found at the start of a line in {rel}")
    start, end = blocks[key]
    edited = "".join(_set_check(lines, start, end, by, on))
    # The edit must change this entry's check and nothing else.
    before, after = yaml.safe_load(raw), yaml.safe_load(edited)
    entry = Entry.model_validate(after[key])
    assert entry.checked is not None and (entry.checked.by, entry.checked.on) == (by, on)
    assert {k: v for k, v in after.items() if k != key} == {k: v for k, v in before.items() if k != key}
    if edited != raw:
        path.write_bytes(edited.encode("utf-8"))
    line = int(line_text) if line_text else start + 1
    if rel.startswith(folders[0]):
        scope = f"This is {kb.cities[city].display_name('en')}'s own answer."
    else:
        sharing = [c for c in settings.cities if (used := kb.entry(c, key)) and used[1] == found[1]]
        scope = (
            f"This is the country-level answer for '{spec.country}': it applies to every city of that "
            f"country that has no answer of its own (now: {', '.join(sharing)})."
        )
    state = "Recorded" if edited != raw else "Already recorded"
    return f"{state} in {rel}:{line}, entry '{key}': checked by {by} on {on.isoformat()}.\n{scope}"


@dataclass
class Migration:
    """What ``migrate_review`` changed, and what it left for a person."""

    changed_files: list[str] = field(default_factory=list)
    renamed: int = 0
    deleted: int = 0
    was_reviewed: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)

    def report(self) -> str:
        lines = [
            f"{len(self.changed_files)} file(s) changed: {self.renamed} 'last_reviewed' renamed to "
            f"'updated', {self.deleted} 'status' line(s) deleted."
        ]
        if self.was_reviewed:
            lines.append(
                "These entries said 'status: reviewed', which named nobody; if a partner organisation "
                "checked them, record it with `python -m bot content review --city C --key K --by ORG`:"
            )
            lines += [f"  {where}" for where in self.was_reviewed]
        if self.left:
            lines.append("Left as they are, for you to fix:")
            lines += [f"  {what}" for what in self.left]
        return "\n".join(lines)


def migrate_review(root: Path, write: bool = True) -> Migration:
    """Move answer files to ``updated:`` (from ``last_reviewed:``) and drop ``status:`` lines.

    Line by line, so comments and formatting stay; running it again changes nothing.
    """
    result = Migration()
    paths = sorted(root.glob("countries/*/*.yml")) + sorted(root.glob("cities/*/*.yml"))
    for path in paths:
        if path.name == "city.yml":
            continue
        rel = str(path.relative_to(root.parent))
        raw = path.read_bytes().decode("utf-8")
        lines = raw.splitlines(keepends=True)
        drop: set[int] = set()
        for key, (start, end) in _entry_blocks(lines).items():
            indent = _field_indent(lines, start, end)
            fields = {
                name: [i for i in range(start + 1, end) if _field_at(lines[i], indent, name)]
                for name in ("status", "last_reviewed", "updated")
            }
            where = f"{rel}:{start + 1}, entry '{key}'"
            for i in fields["last_reviewed"]:
                if fields["updated"]:
                    result.left.append(f"{where}: has both 'last_reviewed' and 'updated'; keep one")
                    continue
                lines[i] = indent + "updated" + lines[i][len(indent) + len("last_reviewed") :]
                result.renamed += 1
            for i in fields["status"]:
                value = _field_value(lines[i])
                if value not in ("draft", "reviewed"):
                    result.left.append(f"{where}: unknown 'status: {value}'; delete the line")
                    continue
                if value == "reviewed":
                    result.was_reviewed.append(where)
                drop.add(i)
                result.deleted += 1
        edited = "".join(line for i, line in enumerate(lines) if i not in drop)
        if edited != raw:
            result.changed_files.append(rel)
            if write:
                path.write_bytes(edited.encode("utf-8"))
    return result


# --- command line ----------------------------------------------------------------------------------
