"""The clock: what time it is now (timezone-aware, UTC).

One clock is passed to ``Storage``, which stamps every row with it; the Telegram handlers read the same
one as ``context.clock`` and the editor tools as ``storage.clock``. Tests pass a clock they move by hand.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

__all__ = ["Clock", "utcnow"]

Clock = Callable[[], dt.datetime]


def utcnow() -> dt.datetime:
    """The real time, in UTC."""
    return dt.datetime.now(dt.UTC)
