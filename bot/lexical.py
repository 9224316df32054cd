"""A small lexical matcher over the knowledge base's example questions, for when the model is away.

When the NLU server is down, hung or slow, the person still gets something useful within seconds:
the topics whose example questions share the most character trigrams with the question (cosine
similarity of trigram counts, weighted by how rare a trigram is across topics). It never answers on
its own authority: the engine offers its topics as "did you mean…" buttons with the offer of a person.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable

from nlu import IntentScore, normalise

__all__ = ["LexicalMatcher"]


def _trigrams(text: str) -> Counter[str]:
    grams: Counter[str] = Counter()
    for word in normalise(text).split():
        padded = f" {word} "
        grams.update(padded[i : i + 3] for i in range(len(padded) - 2))
    return grams


class LexicalMatcher:
    """Topic vectors of character trigrams, built once from (key, example) pairs."""

    def __init__(self, examples: Iterable[tuple[str, str]], keys: Iterable[str]) -> None:
        wanted = set(keys)
        counts: dict[str, Counter[str]] = defaultdict(Counter)
        for key, text in examples:
            if key in wanted:
                counts[key].update(_trigrams(text))
        spread = Counter(gram for grams in counts.values() for gram in grams)
        self._idf = {gram: math.log(1 + len(counts) / n) for gram, n in spread.items()}
        self._topics: dict[str, dict[str, float]] = {}
        for key, grams in counts.items():
            vector = {g: (1 + math.log(n)) * self._idf[g] for g, n in grams.items()}
            norm = math.sqrt(sum(v * v for v in vector.values())) or 1.0
            self._topics[key] = {g: v / norm for g, v in vector.items()}

    def best(self, text: str, limit: int = 3, minimum: float = 0.05) -> list[IntentScore]:
        """The ``limit`` closest topics with their similarity (0-1), closest first."""
        grams = _trigrams(text)
        query = {g: (1 + math.log(n)) * self._idf[g] for g, n in grams.items() if g in self._idf}
        norm = math.sqrt(sum(v * v for v in query.values()))
        if not norm:
            return []
        scores = [
            IntentScore(key, sum(w * topic.get(g, 0.0) for g, w in query.items()) / norm)
            for key, topic in self._topics.items()
        ]
        ranked = sorted(scores, key=lambda s: s.confidence, reverse=True)
        return [s for s in ranked[:limit] if s.confidence >= minimum]
