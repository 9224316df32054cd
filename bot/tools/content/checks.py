"""``content check``: problems in the knowledge base, in plain words, most serious first."""

from __future__ import annotations

import datetime as dt
import re

from nlu import normalise

from ...engine import Engine
from ...i18n import Catalogues
from ...knowledge import Entry, KnowledgeBase, Problem, Severity
from ...language import LanguageDetector
from ...render import render_plain
from ...settings import Settings
from ..realistic import load_realistic

__all__ = ["ACTOR_STEMS", "PHONE_FRIENDLY_CHARS", "age_in_words", "check", "editor_engine", "names_an_actor"]

_URL_IN_TEXT = re.compile(r"https?://|www\.", re.IGNORECASE)
_MARKUP_IN_TEXT = re.compile(r"<[a-z/][^>]*>|\*\*|__|\[[^\]]+\]\(")
# A phone screen shows about this much without scrolling much; longer answers get a warning.
PHONE_FRIENDLY_CHARS = 900

# --- "who do I turn to?" ---------------------------------------------------------------------------
# An answer should tell people whom to turn to. `names_an_actor` accepts a text that has
#   1. a word starting with one of ACTOR_STEMS (case-insensitive: "Ministry", "offices", "consulate",
#      "e-mail"), or
#   2. an acronym: a word of two or more capitals ("OAMP", "NGO", "EU"), or
#   3. a proper name of two or more capitalised words in a row, not counting the first word of a
#      sentence ("the Integration Centre Prague", "ask Caritas Czech Republic").
# It looks at the English text, or at the first language an entry has when English is missing (then
# only 2 and 3 are meaningful). A warning, never an error: it cannot understand the text.
ACTOR_STEMS = (
    "office",
    "ministr",
    "police",
    "municipal",
    "centre",
    "center",
    "organisation",
    "organization",
    "ngo",
    "hotline",
    "helpline",
    "website",
    "portal",
    "embass",
    "consul",
    "agenc",
    "institut",
    "service",
    "insurer",
    "bank",
    "school",
    "court",
    "union",
    "authorit",
    "department",
    "directorate",
    "administration",
    "call",
    "phone",
    "telephone",
    "e-mail",
    "email",
)
_ACTOR_WORD = re.compile(r"\b(?:" + "|".join(re.escape(s) for s in ACTOR_STEMS) + ")", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+|\n+")
_TOKEN_EDGE = "\"'()[]{}«»„“”‚‘’,.;:!?"


def names_an_actor(text: str) -> bool:
    """True when ``text`` names an office, organisation or channel (see the rules above)."""
    if _ACTOR_WORD.search(text):
        return True
    for sentence in _SENTENCE_END.split(text):
        run = 0
        for position, token in enumerate(sentence.split()):
            word = re.split(r"['’]", token.strip(_TOKEN_EDGE), maxsplit=1)[0]
            if len(word) >= 2 and word.isalpha() and word.isupper():
                return True
            capitalised = position > 0 and word[:1].isupper() and word.isalpha()
            run = run + 1 if capitalised else 0
            if run >= 2:
                return True
            if token[-1:] in ",;:()":
                run = 0
    return False


def age_in_words(days: int) -> str:
    months = round(days * 12 / 365)
    return f"{months} months" if months * 365 == days * 12 else f"{days} days"


def editor_engine(settings: Settings, kb: KnowledgeBase) -> Engine:
    detector = LanguageDetector(settings.languages[:1] or ["en"], default=settings.default_language)
    return Engine(settings, kb, None, detector, Catalogues(settings.languages))


def check(settings: Settings, kb: KnowledgeBase, today: dt.date | None = None) -> list[Problem]:
    """Every problem in the content, most serious first."""
    today = today or dt.date.today()
    problems = list(kb.problems)
    max_age = dt.timedelta(days=settings.content.max_review_age_days)
    engine = editor_engine(settings, kb)
    seen_entries: set[int] = set()
    unchecked = 0

    for city in settings.cities:
        spec = kb.cities.get(city)
        if spec is None:
            continue
        for key in kb.taxonomy.content_keys:
            found = kb.entry(city, key)
            if found is None:
                problems.append(
                    Problem(
                        "error",
                        f"content/cities/{city}",
                        f"the city has no answer for '{key}' "
                        f"(neither in the city nor in countries/{spec.country})",
                        entry=key,
                        hint=f"add an entry '{key}:' to content/countries/{spec.country}/ "
                        f"or content/cities/{city}/",
                    )
                )
                continue
            entry, origin = found
            file, _, line_text = origin.partition(":")
            line = int(line_text) if line_text else None
            first_time = id(entry) not in seen_entries
            seen_entries.add(id(entry))
            if first_time:
                unchecked += entry.checked is None
                problems += _check_entry(settings, engine, city, key, entry, file, line, today, max_age)

    if unchecked:
        problems.append(
            Problem(
                "warning",
                "content/",
                f"{unchecked} of {len(seen_entries)} answers are not yet checked by a partner organisation",
                hint="when a partner organisation has checked an answer against its sources, record it: "
                "`python -m bot content review --city C --key K --by ORGANISATION`",
            )
        )
    problems += _check_questions(settings, kb)
    problems += _check_realistic_overlap(settings, kb)
    return sorted(problems, key=lambda p: (p.severity != "error", p.file, p.line or 0))


def _check_entry(
    settings: Settings,
    engine: Engine,
    city: str,
    key: str,
    entry: Entry,
    file: str,
    line: int | None,
    today: dt.date,
    max_age: dt.timedelta,
) -> list[Problem]:
    """Problems of one answer entry (checked once, even when several cities share it)."""
    found: list[Problem] = []

    def report(severity: Severity, message: str, hint: str, field: str | None = None) -> None:
        found.append(Problem(severity, file, message, entry=key, field=field, line=line, hint=hint))

    missing = [lang for lang in settings.languages if lang not in entry.answer]
    if missing:
        shown = "English" if "en" in entry.answer else "the local language"
        report(
            "warning",
            f"no translation in: {', '.join(missing)} (people then see {shown})",
            "add a line per missing language under 'answer:'",
            "answer",
        )
    if entry.updated > today:
        report(
            "error",
            f"the date {entry.updated} is in the future",
            "write the day the text or the sources last changed (YYYY-MM-DD)",
            "updated",
        )
    if entry.checked is not None:
        by, on = entry.checked.by, entry.checked.on
        record = (
            f'when they have, record it: `python -m bot content review --city {city} --key {key} --by "{by}"`'
        )
        if on > today:
            report(
                "error",
                f"the check date {on} is in the future",
                "write the day the partner organisation checked the answer (YYYY-MM-DD)",
                "checked.on",
            )
        elif today - on > max_age:
            report(
                "warning",
                f"checked by {by} on {on}, more than {age_in_words(max_age.days)} ago: "
                "ask them to check it again",
                record,
                "checked.on",
            )
        if entry.updated > on:
            report(
                "warning",
                f"changed on {entry.updated}, after {by} checked it on {on} (people still read that it "
                "was checked): ask them to check it again",
                record,
                "updated",
            )
    actor_lang = "en" if "en" in entry.answer else next(iter(entry.answer))
    if not names_an_actor(entry.answer[actor_lang]):
        report(
            "warning",
            "the answer names no office, organisation or channel, so people do not know whom to turn to",
            "name the responsible office or organisation (or its website, phone line or e-mail) in the text",
            f"answer.{actor_lang}",
        )
    for lang, text in entry.answer.items():
        field = f"answer.{lang}"
        if _URL_IN_TEXT.search(text):
            report("warning", "the text contains a web address", "move web addresses to 'sources:'", field)
        if _MARKUP_IN_TEXT.search(text):
            report(
                "warning",
                "the text contains HTML or Markdown, which is shown as is",
                "write plain text",
                field,
            )
        if lang not in settings.languages:
            report("warning", f"'{lang}' is not a language in config.yml", "check the language code", field)
            continue
        shown_chars = len(render_plain(engine, engine.answer_key(key, city, lang)))
        limit = settings.content.max_message_chars
        if shown_chars > limit:
            report(
                "error",
                f"too long for one Telegram message ({shown_chars} characters with sources, limit {limit})",
                "shorten the answer",
                field,
            )
        elif len(text) > PHONE_FRIENDLY_CHARS:
            report(
                "warning",
                f"long for a phone screen ({len(text)} characters)",
                f"keep answers under {PHONE_FRIENDLY_CHARS} characters",
                field,
            )
    return found


def _check_questions(settings: Settings, kb: KnowledgeBase) -> list[Problem]:
    problems: list[Problem] = []
    minimum = settings.content.min_examples_per_key
    for lang in settings.languages:
        file = f"content/questions/{lang}.yml"
        texts = kb.texts.get(lang)
        if texts is None:
            problems.append(
                Problem(
                    "error",
                    file,
                    "the file with example questions is missing",
                    hint="copy content/questions/en.yml and translate it",
                )
            )
            continue
        owner: dict[str, str] = {}
        for key in kb.taxonomy.all_keys:
            text = texts.get(key)
            if text is None:
                problems.append(
                    Problem(
                        "error",
                        file,
                        "this key has no title and no example questions",
                        entry=key,
                        hint=f"add '{key}:' with a title and examples",
                    )
                )
                continue
            if len(text.examples) < minimum:
                problems.append(
                    Problem(
                        "error",
                        file,
                        f"only {len(text.examples)} example questions (at least {minimum} "
                        "needed for the bot to recognise this topic)",
                        entry=key,
                        field="examples",
                        hint="add more ways people ask this",
                    )
                )
            for example in text.examples:
                folded = normalise(example)
                other = owner.get(folded)
                if other is not None and other != key:
                    problems.append(
                        Problem(
                            "error",
                            file,
                            f"the question '{example}' is also listed under '{other}'",
                            entry=key,
                            field="examples",
                            hint="keep it under the one key it belongs to",
                        )
                    )
                owner.setdefault(folded, key)
        heldout = kb.heldout.get(lang, {})
        if not heldout:
            problems.append(
                Problem(
                    "warning",
                    f"content/heldout/{lang}.yml",
                    "no held-out test questions: accuracy in this language cannot be measured",
                    hint="add a few questions per key that are not in questions/",
                )
            )
        for key, questions in heldout.items():
            for question in questions:
                if normalise(question) in owner:
                    problems.append(
                        Problem(
                            "error",
                            f"content/heldout/{lang}.yml",
                            f"'{question}' is also a training example, so it cannot test anything",
                            entry=key,
                            hint="reword it or remove it from one of the two files",
                        )
                    )
    return problems


_HELD_APART = {
    "realistic": "the realistic evaluation set), so the evaluation would overstate how well the bot "
    "understands",
    "dev": "the development set, on which thresholds are chosen), so the thresholds would be chosen on "
    "what the model has already seen",
}


def _check_realistic_overlap(settings: Settings, kb: KnowledgeBase) -> list[Problem]:
    """Training examples that are also messages of the realistic evaluation set (content/realistic/)
    or of the development set (content/dev/).

    Those sets are read only to compare normalised forms; their text is never shown.
    """
    problems: list[Problem] = []
    for name, why in _HELD_APART.items():
        folder = kb.root / name
        for lang in settings.languages:
            held_file = f"content/{name}/{lang}.yml"
            try:
                items = load_realistic(folder, [lang])
            except ValueError as exc:
                problems.append(
                    Problem("error", held_file, f"the file cannot be read: {exc}", hint="ask the NLU team")
                )
                continue
            held = {normalise(item.text) for item in items}
            if not held:
                continue
            for key, text in kb.texts.get(lang, {}).items():
                for number, example in enumerate(text.examples, 1):
                    if normalise(example) in held:
                        problems.append(
                            Problem(
                                "error",
                                f"content/questions/{lang}.yml",
                                f"example {number} is also a message in {held_file} ({why}",
                                entry=key,
                                field="examples",
                                hint=f"remove or reword this example; never copy from content/{name}/",
                            )
                        )
    return problems
