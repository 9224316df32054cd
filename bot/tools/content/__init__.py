"""``python -m bot content check|coverage|preview|review|migrate-review|unanswered``: editor tools.

The people who edit ``content/`` use these: ``check`` lists problems in plain words, ``coverage`` shows
what is missing or unchecked, ``review`` records that a partner organisation checked an answer (a
two-line edit that keeps the file as the editor wrote it) and ``migrate-review`` moves answer files
from the old review fields (``status``, ``last_reviewed``) to ``updated``.
"""

from .checks import ACTOR_STEMS, check, names_an_actor
from .command import add_parser, preview, unanswered_markdown
from .coverage import coverage_markdown, coverage_matrix, coverage_png, gaps_markdown
from .review import Migration, migrate_review, record_check

__all__ = [
    "ACTOR_STEMS",
    "Migration",
    "add_parser",
    "check",
    "coverage_markdown",
    "coverage_matrix",
    "coverage_png",
    "gaps_markdown",
    "migrate_review",
    "names_an_actor",
    "preview",
    "record_check",
    "unanswered_markdown",
]
