"""The per-city knowledge base: schema, loader and answer lookup.

Content lives in YAML files that editors change by hand (see ``content/README.md``). Every problem the
loader finds names the file, the entry and the field in plain words, with a hint how to fix it.

- ``schema``: what an entry, a city and the example questions may hold, and ``Problem``;
- ``base``: ``KnowledgeBase`` (answers by city, key and language, with fallbacks) and ``Taxonomy``;
- ``loader``: ``load_knowledge_base`` reads and validates ``content/``.
"""

from .base import Answer, KnowledgeBase, Taxonomy
from .loader import load_knowledge_base, load_taxonomy
from .schema import (
    EMERGENCY_KEY,
    NOT_EMERGENCY_KEY,
    OLD_REVIEW_FIELDS,
    Check,
    City,
    ContentError,
    Entry,
    KeyText,
    Problem,
    Severity,
)

__all__ = [
    "EMERGENCY_KEY",
    "NOT_EMERGENCY_KEY",
    "OLD_REVIEW_FIELDS",
    "Answer",
    "Check",
    "City",
    "ContentError",
    "Entry",
    "KeyText",
    "KnowledgeBase",
    "Problem",
    "Severity",
    "Taxonomy",
    "load_knowledge_base",
    "load_taxonomy",
]
