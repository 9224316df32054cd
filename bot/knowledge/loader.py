"""Loading ``content/``: every problem is collected with its file, entry, line and a hint, never raised."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import ValidationError

from ..safety import load_safety
from .base import KnowledgeBase, Taxonomy
from .schema import OLD_REVIEW_FIELDS, City, ContentError, Entry, KeyText, Problem

T = TypeVar("T")

__all__ = ["load_knowledge_base", "load_taxonomy"]


_FIELD_HINTS = {
    "updated": "write the day the text or the sources last changed as YYYY-MM-DD, "
    "for example 'updated: 2026-11-23'",
    "checked": "write two indented lines under 'checked:', for example 'by: \"Integration Centre Prague\"' "
    "and 'on: 2026-11-23', or record it with `python -m bot content review --city C --key K --by ORG`",
    "status": "'status' is no longer used: delete the line "
    "(`python -m bot content migrate-review` updates the old review fields in every file)",
    "last_reviewed": "'last_reviewed' is now called 'updated': keep only one of the two",
    "sources": "list at least one web address under 'sources:', each line starting with '- https://'",
    "answer": "under 'answer:' write one line per language, like 'en: |' followed by the text",
    "country": "write the two-letter country code, for example 'country: cz'",
    "local_language": "write the two-letter language code, for example 'local_language: cs'",
    "name": "give the city's name per language, for example 'name: {en: Prague, cs: Praha}'",
    "title": "give a short label for buttons, for example 'title: Renewing a permit'",
    "examples": "list example questions under 'examples:', one per line starting with '- '",
}


def _plain(err: Mapping[str, Any]) -> str:
    kind = err["type"]
    if kind == "missing":
        return "is missing"
    if kind == "extra_forbidden":
        return "is not a field this file may have (check the spelling)"
    if kind.startswith("date"):
        return "is not a date in the form YYYY-MM-DD"
    if kind == "too_short":
        return "is empty"
    if kind in {"string_type", "dict_type", "tuple_type", "list_type"}:
        expected = {"string_type": "text", "dict_type": "a list of 'name: value' lines"}.get(
            kind, "a list of lines starting with '- '"
        )
        return f"must be {expected}"
    if kind == "string_pattern_mismatch":
        return "must be a two-letter lower-case code"
    msg = str(err["msg"])
    return msg.removeprefix("Value error, ")


_CHECKED_NEEDS = "checked needs 'by' (the organisation) and 'on' (the date)"


def _validation_problems(
    exc: ValidationError, file: str, entry: str | None, line: int | None
) -> list[Problem]:
    problems: list[Problem] = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        fld = loc[0] if loc else None
        message = f"this {'field' if fld else 'entry'} {_plain(err)}"
        if len(loc) > 1 and fld in {"answer", "checked"}:
            fld = f"{fld}.{loc[1]}"
        if loc[:1] == ["checked"] and (err["type"] in {"missing", "model_type"} or fld == "checked.by"):
            # A half-written check: name both parts, once.
            fld, message = "checked", _CHECKED_NEEDS
            if any(p.field == fld and p.message == message and p.entry == entry for p in problems):
                continue
        problems.append(
            Problem(
                "error",
                file,
                message,
                entry=entry,
                field=fld,
                line=line,
                hint=_FIELD_HINTS.get(loc[0] if loc else "", None),
            )
        )
    return problems


# libyaml's safe loader, about ten times faster than the pure-Python one (start-up reads all of content/).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read_yaml(path: Path, root: Path, problems: list[Problem]) -> tuple[Any, dict[str, int]]:
    """Parse a YAML file, returning its data and the line of each top-level key."""
    rel = _rel(path, root)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        problems.append(Problem("error", rel, "the file is not saved as UTF-8 text", hint="save it as UTF-8"))
        return None, {}
    try:
        node = yaml.compose(text, Loader=_LOADER)
        data = yaml.load(text, Loader=_LOADER)  # a safe loader either way
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problems.append(
            Problem(
                "error",
                rel,
                f"the file cannot be read: {getattr(exc, 'problem', None) or exc}",
                line=mark.line + 1 if mark else None,
                hint="check the indentation (spaces, not tabs) and that text with ':' or '#' is in quotes",
            )
        )
        return None, {}
    lines: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, _ in node.value:
            key = str(key_node.value)
            if key in lines:
                problems.append(
                    Problem(
                        "error",
                        rel,
                        "this entry appears twice in the file; only the last one would be used",
                        entry=key,
                        line=key_node.start_mark.line + 1,
                        hint="merge the two entries into one",
                    )
                )
            lines[key] = key_node.start_mark.line + 1
    return data, lines


def _rel(path: Path, root: Path) -> str:
    """A path as editors see it: relative to the folder that holds content/."""
    return str(path.relative_to(root.parent)) if path.is_relative_to(root.parent) else str(path)


def load_taxonomy(root: Path) -> Taxonomy:
    """Only the question keys and their topics (``keys.yml``), for tools that need no answers."""
    return _load_taxonomy(root, [])


def _load_taxonomy(root: Path, problems: list[Problem]) -> Taxonomy:
    data, _ = _read_yaml(root / "keys.yml", root, problems)
    if not isinstance(data, dict) or "topics" not in data:
        raise ContentError(
            [*problems, Problem("error", "content/keys.yml", "the list of question keys is missing")]
        )
    topics = {str(t): tuple(str(k) for k in keys) for t, keys in data["topics"].items()}
    return Taxonomy(topics=topics, conversation=tuple(str(k) for k in data.get("conversation", ())))


def _load_entries(
    folder: Path, root: Path, taxonomy: Taxonomy, problems: list[Problem], skip: Iterable[str] = ()
) -> dict[str, tuple[Entry, str]]:
    entries: dict[str, tuple[Entry, str]] = {}
    known = set(taxonomy.content_keys)
    for path in sorted(folder.glob("*.yml")):
        if path.name in skip:
            continue
        rel = _rel(path, root)
        data, lines = _read_yaml(path, root, problems)
        if data is None:
            continue
        if not isinstance(data, dict):
            problems.append(
                Problem("error", rel, "the file must be a list of entries like 'permit.renewal:'")
            )
            continue
        old_format: list[str] = []
        for key, raw in data.items():
            key = str(key)
            line = lines.get(key)
            if isinstance(raw, dict) and any(name in raw for name in OLD_REVIEW_FIELDS):
                old_format.append(key)
            if key not in known:
                problems.append(
                    Problem(
                        "error",
                        rel,
                        "this is not a known question key",
                        entry=key,
                        line=line,
                        hint="use one of the keys listed in content/keys.yml (check the spelling)",
                    )
                )
                continue
            if key in entries:
                problems.append(
                    Problem(
                        "error",
                        rel,
                        f"this key is already answered in {entries[key][1]}",
                        entry=key,
                        line=line,
                        hint="keep one of the two entries",
                    )
                )
                continue
            if not isinstance(raw, dict):
                problems.append(
                    Problem(
                        "error",
                        rel,
                        "the entry must have the fields updated, sources and answer (and checked, "
                        "once a partner organisation checked it)",
                        entry=key,
                        line=line,
                    )
                )
                continue
            try:
                entries[key] = (Entry.model_validate(raw), f"{rel}:{line}" if line else rel)
            except ValidationError as exc:
                problems.extend(_validation_problems(exc, rel, key, line))
        if old_format:
            count = f"{len(old_format)} {'entry' if len(old_format) == 1 else 'entries'}"
            problems.append(
                Problem(
                    "warning",
                    rel,
                    f"old review fields ('status', 'last_reviewed') in {count}: "
                    "run `python -m bot content migrate-review`",
                    line=lines.get(old_format[0]),
                    hint="it renames 'last_reviewed' to 'updated' and deletes 'status' in every answer file",
                )
            )
    return entries


def _load_keyed(
    path: Path,
    root: Path,
    known: set[str],
    problems: list[Problem],
    parse: Callable[[Any], T | None],
    problem: str,
    hint: str | None = None,
) -> dict[str, T]:
    """A file of ``key: value`` per question key (questions/, heldout/): each known key's value, parsed.
    An unknown key, or a value ``parse`` rejects (None), is the ``problem``; a schema error is reported
    by field."""
    data, lines = _read_yaml(path, root, problems)
    found: dict[str, T] = {}
    for key, raw in (data or {}).items():
        key = str(key)
        try:
            value = parse(raw) if key in known else None
        except ValidationError as exc:
            problems.extend(_validation_problems(exc, _rel(path, root), key, lines.get(key)))
            continue
        if value is None:
            problems.append(
                Problem("error", _rel(path, root), problem, entry=key, line=lines.get(key), hint=hint)
            )
            continue
        found[key] = value
    return found


def _question_list(raw: Any) -> tuple[str, ...] | None:
    return tuple(str(q) for q in raw) if isinstance(raw, list) else None


def _load_language_files(
    folder: Path, root: Path, taxonomy: Taxonomy, languages: Iterable[str], problems: list[Problem]
) -> tuple[dict[str, dict[str, KeyText]], dict[str, dict[str, tuple[str, ...]]]]:
    texts: dict[str, dict[str, KeyText]] = {}
    heldout: dict[str, dict[str, tuple[str, ...]]] = {}
    known = set(taxonomy.all_keys)
    for lang in languages:
        path = folder / "questions" / f"{lang}.yml"
        if path.exists():
            texts[lang] = _load_keyed(
                path,
                root,
                known,
                problems,
                KeyText.model_validate,
                "this is not a known question key",
                hint="use one of the keys listed in content/keys.yml",
            )
        path = folder / "heldout" / f"{lang}.yml"
        if path.exists():
            unknown = "must be a known key followed by a list of questions"
            heldout[lang] = _load_keyed(path, root, known, problems, _question_list, unknown)
    return texts, heldout


def load_knowledge_base(root: Path, cities: Iterable[str], languages: Iterable[str]) -> KnowledgeBase:
    """Load and validate everything under ``root``; problems are collected, not raised.

    Entries with errors are left out, so one editor's typo never takes the others' answers down;
    ``content check`` reports them and fails.
    """
    problems: list[Problem] = []
    taxonomy = _load_taxonomy(root, problems)
    kb = KnowledgeBase(root=root, taxonomy=taxonomy, problems=problems)
    languages = tuple(languages)
    for city in cities:
        folder = root / "cities" / city
        city_file = folder / "city.yml"
        if not city_file.exists():
            problems.append(
                Problem(
                    "warning",
                    _rel(city_file, root),
                    f"the city '{city}' is listed in config.yml but has no content yet",
                    hint="create this file with the city's country, local language and name",
                )
            )
            continue
        data, _ = _read_yaml(city_file, root, problems)
        try:
            kb.cities[city] = City.model_validate({**(data or {}), "id": city})
        except ValidationError as exc:
            problems.extend(_validation_problems(exc, _rel(city_file, root), None, None))
            continue
        for key, (entry, origin) in _load_entries(
            folder, root, taxonomy, problems, skip={"city.yml"}
        ).items():
            kb.city_entries.setdefault(city, {})[key] = entry
            kb.origins[("city", city, key)] = origin
    for country in sorted({c.country for c in kb.cities.values()}):
        folder = root / "countries" / country
        for key, (entry, origin) in _load_entries(folder, root, taxonomy, problems).items():
            kb.country_entries.setdefault(country, {})[key] = entry
            kb.origins[("country", country, key)] = origin
    kb.texts, kb.heldout = _load_language_files(root, root, taxonomy, languages, problems)
    kb.safety = load_safety(
        root / "safety",
        languages,
        lambda path: _read_yaml(path, root, problems)[0],
        lambda path, message, hint: problems.append(Problem("error", _rel(path, root), message, hint=hint)),
    )
    return kb
