"""Helpers shared by the components: sentence parts, safe persistence of arrays."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

# Sentence ends in the scripts people write here (Latin, Cyrillic, Arabic, Persian), and new lines.
_SENTENCE_END = re.compile(r"(?<=[.!?؟。…])\s+|[\n;]+|(?<=[!?؟])(?=\S)")
PARTS = "integra_parts"  # message property: the sentences of a long message
PART_SPARSE = "integra_parts_sparse"
PART_DENSE = "integra_parts_dense"
MAX_PARTS = 8


def sentence_parts(text: str) -> list[str]:
    """The sentences of ``text`` worth classifying on their own; [] for a one-sentence message."""
    parts = [p.strip(" .,!?؟-–—") for p in _SENTENCE_END.split(text)]
    parts = [p for p in parts if len(p.split()) >= 2]
    if len(parts) < 2:
        return []
    return parts[:MAX_PARTS]


def save_logreg(clf: LogisticRegression, path: Path) -> None:
    """Store a fitted logistic regression as plain arrays (no pickle)."""
    np.savez(
        path,
        coef=clf.coef_,
        intercept=clf.intercept_,
        classes=np.array([str(c) for c in clf.classes_]),
    )


def load_logreg(path: Path) -> LogisticRegression:
    with np.load(path, allow_pickle=False) as data:
        clf = LogisticRegression()
        # Column-major so that ``features @ coef_.T`` in predict_proba reads the
        # matrix in place; a row-major array is copied whole on every call
        # (about a third of the CPU of one question).
        clf.coef_ = np.asfortranarray(data["coef"])
        clf.intercept_ = data["intercept"]
        clf.classes_ = data["classes"]
    return clf


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))
