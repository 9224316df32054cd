"""How people describe danger: curated situations and danger signals, from ``content/safety/``.

Situations teach the model's emergency detector (they are added to the ``safety.emergency`` examples).
Not-emergencies are the opposite: messages that sound worrying or use words like "kill" or "fire" but
where nobody is in danger now ("this bureaucracy is killing me", "I left my violent husband two years
ago, how do I get my own permit"); they teach the detector what not to raise an alarm for, and only
the detector (they are no topic's examples). Signals are words or short phrases that on their own
mean someone may be in danger now ("not breathing", "ne dyshit"); they are matched in every language
at once, because a person in danger may write in a language or script the bot did not expect. A
``*`` at the end of a word matches any ending of it. Safe phrases are the figurative or negated uses of danger
words ("I almost had a heart attack when I saw the bill", "not suicidal, just sad"): a signal inside
one of them does not count (the model and its detector still read the whole message).
"Danger over" phrases say that the danger is past or was never real ("years ago", "now I am safe",
"it was only a drill"): in a message with one, a danger word or a single sentence that reads like
danger no longer raises the alarm on its own (the reply ends with the emergency number instead);
the model's reading of the whole message still does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nlu import normalise

__all__ = ["DangerSignals", "SafetyContent", "load_safety"]

_ARABIC_LETTER = re.compile(r"[\u0600-\u06ff]")


_WORD = re.compile(r"\w+")
# Arabic and Persian join "and"/"so" to the next word: "وما يتنفس" is "ما يتنفس" too.
_JOINED = "وف"
# Signals are looked up by the first three letters of their first word.
_KEY = 3


def _pattern(signal: str) -> tuple[str, str | None] | None:
    """The regular expression of a signal, and the lookup key of its first word (None: always try).
    A word ending in ``*`` matches any ending of it."""
    words: list[str] = []
    parts: list[str] = []
    for raw in signal.split():
        pieces = normalise(raw.rstrip("*")).split()
        words += pieces
        parts += [re.escape(piece) for piece in pieces]
        if pieces and raw.endswith("*"):
            parts[-1] += r"\w*"
    if not words:
        return None
    if _ARABIC_LETTER.match(words[0]):
        parts[0] = f"[{_JOINED}]?" + parts[0]
    first = _WORD.match(words[0])
    key = first.group()[:_KEY] if first is not None and len(first.group()) >= _KEY else None
    return r"(?<!\w)" + r"\s+".join(parts) + r"(?!\w)", key


def _keys(folded: str) -> set[str]:
    """The lookup keys a text can match: the start of each word (also without a joined و/ف)."""
    keys = set()
    for word in _WORD.findall(folded):
        keys.add(word[:_KEY])
        if word[0] in _JOINED and len(word) > 1:
            keys.add(word[1 : 1 + _KEY])
    return keys


_Compiled = tuple[tuple[str, str, re.Pattern[str]], ...]  # (language, phrase, pattern)


def _index(phrases: dict[str, tuple[str, ...]]) -> tuple[_Compiled, dict[str | None, list[int]]]:
    """Phrases of all languages compiled, and which of them may occur in a text by the start of its
    words: a message is checked against the few phrases whose first word starts like one of its words,
    not against all of them."""
    compiled: list[tuple[str, str, re.Pattern[str]]] = []
    by_key: dict[str | None, list[int]] = {}
    for language, items in phrases.items():
        for phrase in items:
            found = _pattern(phrase)
            if found:
                pattern, key = found
                by_key.setdefault(key, []).append(len(compiled))
                compiled.append((language, phrase, re.compile(pattern)))
    return tuple(compiled), by_key


def _candidates(by_key: dict[str | None, list[int]], folded: str) -> list[int]:
    candidates = set(by_key.get(None, ()))
    for key in _keys(folded):
        candidates.update(by_key.get(key, ()))
    return sorted(candidates)


@dataclass(frozen=True)
class DangerSignals:
    """Danger signals of all languages, compiled once."""

    signals: dict[str, tuple[str, ...]] = field(default_factory=dict)
    safe_phrases: dict[str, tuple[str, ...]] = field(default_factory=dict)
    danger_over: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        safe = [found[0] for phrases in self.safe_phrases.values() for p in phrases if (found := _pattern(p))]
        # Longest first, so that a longer safe phrase is masked before a shorter one inside it.
        safe.sort(key=len, reverse=True)
        object.__setattr__(self, "_safe", re.compile("|".join(safe)) if safe else None)
        compiled, by_key = _index(self.signals)
        object.__setattr__(self, "_compiled", compiled)
        object.__setattr__(self, "_by_key", by_key)
        object.__setattr__(self, "_over", _index(self.danger_over))

    def find(self, text: str) -> tuple[str, str] | None:
        """The first (language, signal) that occurs in ``text`` outside its safe phrases, or None."""
        folded = normalise(text)
        compiled: _Compiled = getattr(self, "_compiled", ())
        by_key: dict[str | None, list[int]] = getattr(self, "_by_key", {})
        found = [index for index in _candidates(by_key, folded) if compiled[index][2].search(folded)]
        if not found:
            # Most messages: no signal at all, so the safe phrases (one long pattern, most of the
            # time this takes) need not be masked. Masking only ever removes a match.
            return None
        safe: re.Pattern[str] | None = getattr(self, "_safe", None)
        masked = safe.sub(" | ", folded) if safe is not None else folded
        for index in found:
            language, signal, pattern = compiled[index]
            if pattern.search(masked):
                return language, signal
        return None

    def over(self, text: str) -> tuple[str, str] | None:
        """The first (language, phrase) of the "danger over" phrases that occurs in ``text``, or None."""
        folded = normalise(text)
        compiled, by_key = getattr(self, "_over", ((), {}))
        for index in _candidates(by_key, folded):
            language, phrase, pattern = compiled[index]
            if pattern.search(folded):
                return language, phrase
        return None


@dataclass(frozen=True)
class SafetyContent:
    situations: dict[str, tuple[str, ...]] = field(default_factory=dict)
    signals: DangerSignals = field(default_factory=DangerSignals)
    not_emergencies: dict[str, tuple[str, ...]] = field(default_factory=dict)


_LISTS = ("situations", "signals", "not_emergencies", "safe_phrases", "danger_over")


def load_safety(folder: Path, languages: Iterable[str], read_yaml: Any, problem: Any) -> SafetyContent:
    """Read ``<folder>/<language>.yml``; ``problem(path, message, hint)`` reports what is wrong."""
    lists: dict[str, dict[str, tuple[str, ...]]] = {name: {} for name in _LISTS}
    for lang in languages:
        path = folder / f"{lang}.yml"
        if not path.exists():
            continue
        data = read_yaml(path)
        if data is None:
            continue
        if not isinstance(data, dict) or set(data) - set(_LISTS):
            problem(
                path,
                "the file may only have the lists 'situations', 'signals', 'not_emergencies', "
                "'safe_phrases', 'danger_over'",
                None,
            )
            continue
        for name, target in lists.items():
            items = data.get(name) or []
            if not isinstance(items, list) or not all(isinstance(i, str) and i.strip() for i in items):
                problem(path, f"'{name}' must be a list of texts", "put each text on its own '- ' line")
                continue
            if name == "signals":
                too_short = [i for i in items if len(normalise(i).replace("*", "")) < 3]
                if too_short:
                    problem(
                        path,
                        f"these signals are too short to be safe: {', '.join(too_short)}",
                        "a signal needs at least three letters; write a word or a short phrase",
                    )
                    items = [i for i in items if i not in too_short]
            target[lang] = tuple(i.strip() for i in items)
    signals = DangerSignals(lists["signals"], lists["safe_phrases"], lists["danger_over"])
    plain = DangerSignals(lists["signals"])
    # Each list, what in it is wrong (shown as the returned label), and how the editor fixes it.
    checks: list[tuple[str, Callable[[str], str | None], str, str]] = [
        # A safe phrase exists to stop a signal; one that holds none does nothing (a typo, a wrong stem).
        (
            "safe_phrases",
            lambda phrase: None if plain.find(phrase) else phrase,
            "these safe phrases contain no danger signal, so they change nothing",
            "write the whole figurative phrase, including the danger word as the signal spells it",
        ),
        # A situation (someone in danger now) that a safe phrase would hide from the signals.
        (
            "situations",
            lambda item: item if plain.find(item) and not signals.find(item) else None,
            "a safe phrase hides the danger signal in these situations",
            "make the safe phrase more specific, so that it only matches the harmless use",
        ),
        # Someone in danger now, told with words that say the danger is over: the phrase would weaken the
        # alarm for messages like it.
        (
            "situations",
            lambda item: f"'{item}' ({found[1]})" if (found := signals.over(item)) else None,
            "these situations contain a 'danger_over' phrase, so in messages like them a danger word or "
            "one sentence would no longer raise the alarm on its own",
            'make the \'danger_over\' phrase more specific ("years ago" rather than "ago"), or remove it',
        ),
        # A danger signal fires before the model is asked: such an example could never stop an alarm
        # (unless a "danger over" phrase holds the signal back).
        (
            "not_emergencies",
            lambda item: (
                f"'{item}' ({found[1]})" if (found := signals.find(item)) and not signals.over(item) else None
            ),
            "these not-emergencies contain a danger signal, so they would still raise the alarm",
            "reword them without the signal, or remove the signal from 'signals' if it is not one",
        ),
    ]
    for name, wrong, message, hint in checks:
        for lang, items in lists[name].items():
            labels = [label for item in items if (label := wrong(item))]
            if labels:
                problem(folder / f"{lang}.yml", f"{message}: {'; '.join(labels)}", hint)
    return SafetyContent(lists["situations"], signals, lists["not_emergencies"])
