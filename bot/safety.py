"""How people describe danger: curated situations and danger signals, from ``content/safety/``.

Situations teach the model's emergency detector (they are added to the ``safety.emergency`` examples).
Signals are words or short phrases that on their own mean someone may be in danger now ("not
breathing", "ne dyshit"); they are matched in every language at once, because a person in danger may
write in a language or script the bot did not expect. A trailing ``*`` matches any word ending.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nlu import normalise

__all__ = ["DangerSignals", "SafetyContent", "load_safety"]

_ARABIC_LETTER = re.compile(r"[\u0600-\u06ff]")


def _pattern(signal: str) -> str | None:
    stem = signal.strip().endswith("*")
    words = normalise(signal.strip().rstrip("*")).split()
    if not words:
        return None
    parts = [re.escape(w) for w in words]
    if stem:
        parts[-1] += r"\w*"
    if _ARABIC_LETTER.match(words[0]):
        # Arabic and Persian join "and"/"so" to the next word: "وما يتنفس" is "ما يتنفس" too.
        parts[0] = "[وف]?" + parts[0]
    return r"(?<!\w)" + r"\s+".join(parts) + r"(?!\w)"


@dataclass(frozen=True)
class DangerSignals:
    """Danger signals of all languages, compiled once."""

    signals: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        compiled: list[tuple[str, str, re.Pattern[str]]] = []
        for language, signals in self.signals.items():
            for signal in signals:
                pattern = _pattern(signal)
                if pattern:
                    compiled.append((language, signal, re.compile(pattern)))
        object.__setattr__(self, "_compiled", tuple(compiled))

    def find(self, text: str) -> tuple[str, str] | None:
        """The first (language, signal) that occurs in ``text``, or None."""
        folded = normalise(text)
        compiled: tuple[tuple[str, str, re.Pattern[str]], ...] = getattr(self, "_compiled", ())
        for language, signal, pattern in compiled:
            if pattern.search(folded):
                return language, signal
        return None


@dataclass(frozen=True)
class SafetyContent:
    situations: dict[str, tuple[str, ...]] = field(default_factory=dict)
    signals: DangerSignals = field(default_factory=DangerSignals)


def load_safety(folder: Path, languages: Iterable[str], read_yaml: Any, problem: Any) -> SafetyContent:
    """Read ``<folder>/<language>.yml``; ``problem(path, message, hint)`` reports what is wrong."""
    situations: dict[str, tuple[str, ...]] = {}
    signals: dict[str, tuple[str, ...]] = {}
    for lang in languages:
        path = folder / f"{lang}.yml"
        if not path.exists():
            continue
        data = read_yaml(path)
        if data is None:
            continue
        if not isinstance(data, dict) or set(data) - {"situations", "signals"}:
            problem(path, "the file must have only the lists 'situations' and 'signals'", None)
            continue
        for name, target in (("situations", situations), ("signals", signals)):
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
    return SafetyContent(situations, DangerSignals(signals))
