"""The example questions closest to a question by their words, for when the model is away.

When the NLU server is down, hung or slow, the person still gets something useful within seconds,
and someone in danger is still recognised. Every example the model learns from is indexed by its
character trigrams (TF-IDF, cosine similarity): the knowledge base's example questions, the curated
emergency situations and the not-emergencies (``content/safety/``). For a question, its nearest
examples give

- the **topics** to offer as "did you mean…" buttons (the matcher never answers on its own
  authority), ranked by how similar their examples among the nearest are;
- the **emergency share**: how much of the similarity of the few nearest examples belongs to
  emergency situations. The engine shows the emergency numbers above a threshold that
  ``python -m bot tune`` chooses on the development set.

Measured on the realistic set (docs/nlu.md): the nearest examples find more emergencies than the
danger signals alone, and the right topic more often than one trigram profile per topic did.
"""

from __future__ import annotations

import heapq
import math
from array import array
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from operator import itemgetter

from nlu import IntentScore, normalise

__all__ = ["LANGUAGE_NEIGHBOURS", "LANGUAGE_SHARE_DECIDES", "TOPIC_NEIGHBOURS", "LexicalMatcher", "Nearest"]

# How many nearest examples the topics are ranked from, and the languages read from.
TOPIC_NEIGHBOURS = 20
LANGUAGE_NEIGHBOURS = 10
# The share of those examples a language needs to decide for text typed in Latin letters. Shares
# spread over more languages than the model's identifier's confidences do (the Slavic languages
# share trigrams), so less than its 0.4: on the realistic set, 0.3 reads 90 of 107 transliterated
# messages right instead of 88, all messages 97.2 % instead of 97.3 %.
LANGUAGE_SHARE_DECIDES = 0.3


def _trigrams(text: str) -> Counter[str]:
    grams: Counter[str] = Counter()
    for word in normalise(text).split():
        padded = f" {word} "
        grams.update(padded[i : i + 3] for i in range(len(padded) - 2))
    return grams


class LexicalMatcher:
    """An index of labelled examples by their character trigrams, built once.

    ``examples`` are (key, text, language) triples; ``keys`` are the topics that may be offered. Other
    keys (emergency situations, conversation, not-emergencies) are indexed too: they are what a
    question is nearest to when it is not a topic.
    """

    def __init__(self, examples: Iterable[tuple[str, str, str]], keys: Iterable[str]) -> None:
        triples = list(examples)
        self._topics = set(keys)
        self._labels: list[str] = sorted({key for key, _, _ in triples})
        index = {key: i for i, key in enumerate(self._labels)}
        self._label_of = array("H", (index[key] for key, _, _ in triples))
        self._languages: list[str] = sorted({lang for _, _, lang in triples})
        spoken = {lang: i for i, lang in enumerate(self._languages)}
        self._language_of = array("B", (spoken[lang] for _, _, lang in triples))
        # Two passes, so that the trigrams of all examples are never held at once (peak memory).
        spread: Counter[str] = Counter()
        for _, text, _ in triples:
            spread.update(_trigrams(text).keys())
        count = len(triples)
        self._idf = {gram: math.log(count / n) for gram, n in spread.items()}
        ids: dict[str, array[int]] = defaultdict(lambda: array("I"))
        weights: dict[str, array[float]] = defaultdict(lambda: array("f"))
        for number, (_, text, _) in enumerate(triples):
            vector = self._vector(text)
            for gram, weight in vector.items():
                ids[gram].append(number)
                weights[gram].append(weight)
        self._postings = {gram: (ids[gram], weights[gram]) for gram in ids}

    def _vector(self, text: str) -> dict[str, float]:
        """The unit TF-IDF vector of a text's known trigrams (sublinear term frequency)."""
        vector = {g: (1 + math.log(n)) * self._idf[g] for g, n in _trigrams(text).items() if g in self._idf}
        norm = math.sqrt(sum(v * v for v in vector.values()))
        return {g: v / norm for g, v in vector.items()} if norm else {}

    def neighbours(self, text: str, count: int) -> Nearest:
        """The ``count`` examples most similar to ``text``, closest first."""
        scores: defaultdict[int, float] = defaultdict(float)
        for gram, weight in self._vector(text).items():
            ids, weights = self._postings[gram]
            for number, other in zip(ids, weights, strict=True):
                scores[number] += weight * other
        top = heapq.nlargest(count, scores.items(), key=itemgetter(1))
        return Nearest(
            tuple(
                (self._labels[self._label_of[n]], self._languages[self._language_of[n]], score)
                for n, score in top
            )
        )

    def topics(self, nearest: Nearest, limit: int = 3, minimum: float = 0.05) -> list[IntentScore]:
        """Up to ``limit`` topics among the first ``TOPIC_NEIGHBOURS`` of the ``nearest`` examples, the
        most similar first; each with the similarity (0-1) of its closest example, which must be at
        least ``minimum``."""
        total: defaultdict[str, float] = defaultdict(float)
        closest: dict[str, float] = {}
        for key, _, score in nearest.examples[:TOPIC_NEIGHBOURS]:
            if key in self._topics:
                total[key] += score
                closest.setdefault(key, score)
        ranked = sorted(total, key=lambda key: total[key], reverse=True)
        return [IntentScore(key, closest[key]) for key in ranked[:limit] if closest[key] >= minimum]

    def best(self, text: str, limit: int = 3, minimum: float = 0.05) -> list[IntentScore]:
        """The topics of the ``TOPIC_NEIGHBOURS`` examples nearest to ``text`` (see ``topics``)."""
        return self.topics(self.neighbours(text, TOPIC_NEIGHBOURS), limit, minimum)


@dataclass(frozen=True)
class Nearest:
    """The examples nearest to one text, closest first: (key, language, similarity 0-1) each.

    One search answers everything the engine asks of a message while the model is away: the
    emergency share, the languages and the topics, each from as many of the nearest as it needs.
    """

    examples: tuple[tuple[str, str, float], ...]

    def share(self, key: str, count: int | None = None) -> float:
        """How much of the similarity of the first ``count`` (default: all) belongs to ``key``'s
        examples (0-1; 0 when nothing is similar)."""
        total = matched = 0.0
        for label, _, score in self.examples[:count]:
            total += score
            if label == key:
                matched += score
        return matched / total if total > 0 else 0.0

    def languages(self, count: int | None = None) -> tuple[IntentScore, ...]:
        """The languages of the first ``count`` (default: all) by their share of the similarity, the
        largest first: the examples include questions typed in Latin letters (Russian, Arabizi,
        Finglish…), so this reads transliteration as the model's language identifier does."""
        found = self.examples[:count]
        total = sum(score for _, _, score in found)
        share: defaultdict[str, float] = defaultdict(float)
        for _, language, score in found:
            share[language] += score / total
        return tuple(IntentScore(lang, value) for lang, value in sorted(share.items(), key=lambda p: -p[1]))
