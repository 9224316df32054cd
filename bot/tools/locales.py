"""``python -m bot locales update|check``: the gettext workflow for the bot's own texts.

``update`` extracts the texts from the code into ``locales/messages.pot`` and merges them into every
language's ``messages.po`` (creating missing ones); translators then fill in the ``msgstr`` lines.
``check`` fails when the template is stale or a catalogue is incomplete, fuzzy, or breaks a
``{placeholder}``; the test command runs it.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from babel.messages.pofile import read_po

from ..i18n import DOMAIN, LOCALES_DIR
from ..settings import load_settings

__all__ = ["add_parser", "check_catalogues"]

ROOT = LOCALES_DIR.parent
TEMPLATE = LOCALES_DIR / f"{DOMAIN}.pot"
_PLACEHOLDER = re.compile(r"\{[a-z_]+\}")


def _pybabel(*args: str) -> None:
    subprocess.run([str(Path(sys.executable).with_name("pybabel")), "-q", *args], cwd=ROOT, check=True)


def extract(target: Path) -> None:
    _pybabel(
        "extract",
        "-F",
        "babel.cfg",
        "-o",
        str(target),
        "--no-location",
        "--sort-output",
        "--add-comments=TRANSLATORS:",
        # Besides the standard _() and ngettext(): _p() for the person's language and _t() for
        # another group's, where one handler writes to staff and to the person (bot/telegram/handoff/).
        "--keyword=_p",
        "--keyword=_t",
        "--project=integra-assistant",
        "--omit-header",
        ".",
    )


def _msgids(path: Path) -> set[str]:
    with path.open("rb") as handle:
        return {str(m.id) for m in read_po(handle) if m.id}


def check_catalogues(languages: list[str]) -> list[str]:
    """Plain-language problems with the catalogues; empty when all is well."""
    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "fresh.pot"
        extract(fresh)
        wanted = _msgids(fresh)
    if not TEMPLATE.exists() or _msgids(TEMPLATE) != wanted:
        problems.append(f"{TEMPLATE.relative_to(ROOT)} is stale: run `make locales` and translate")
    for lang in languages:
        if lang == "en":
            continue  # the source texts are English
        po = LOCALES_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
        if not po.exists():
            problems.append(f"{po.relative_to(ROOT)} is missing: run `make locales`")
            continue
        with po.open("rb") as handle:
            catalogue = read_po(handle, locale=lang)
        have = {str(m.id): m for m in catalogue if m.id}
        for msgid in sorted(wanted):
            message = have.get(msgid)
            short = msgid[:50] + ("…" if len(msgid) > 50 else "")
            if message is None or not message.string:
                problems.append(f"{po.relative_to(ROOT)}: not translated: {short!r}")
            elif message.fuzzy:
                problems.append(
                    f"{po.relative_to(ROOT)}: marked fuzzy (check and remove the flag): {short!r}"
                )
            elif message.pluralizable and not (
                len(message.string) == catalogue.num_plurals and all(message.string)
            ):
                problems.append(
                    f"{po.relative_to(ROOT)}: needs all {catalogue.num_plurals} plural forms "
                    f"(see Plural-Forms in its header): {short!r}"
                )
            elif set(_PLACEHOLDER.findall(msgid)) != set(_PLACEHOLDER.findall(str(message.string))):
                problems.append(f"{po.relative_to(ROOT)}: placeholders differ from the original: {short!r}")
    return problems


def update(languages: list[str]) -> None:
    extract(TEMPLATE)
    for lang in languages:
        if lang == "en":
            continue
        po = LOCALES_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
        action = "update" if po.exists() else "init"
        _pybabel(action, "-i", str(TEMPLATE), "-d", str(LOCALES_DIR), "-D", DOMAIN, "-l", lang)
    _pybabel("compile", "-d", str(LOCALES_DIR), "-D", DOMAIN)


def _run(args: argparse.Namespace) -> int:
    languages = list(load_settings().languages)
    if args.action == "update":
        update(languages)
        print(f"Updated {TEMPLATE.relative_to(ROOT)} and the catalogues in locales/.")
        return 0
    problems = check_catalogues(languages)
    for problem in problems:
        print(problem)
    print(f"{len(problems)} catalogue problem(s).", file=sys.stderr)
    return 1 if problems else 0


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("locales", help="update or check the UI translation catalogues")
    parser.add_argument("action", choices=["update", "check"])
    parser.set_defaults(func=_run)
