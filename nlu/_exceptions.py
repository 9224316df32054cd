"""Errors raised by the NLU client.

NLUError
├── NLUUnavailable   the server cannot be reached, or is not ready
│   └── NLUTimeout   it did not answer in time
└── NLUResponseError it answered, but not with a classification (bad status or body)
"""

from __future__ import annotations

__all__ = ["NLUError", "NLUResponseError", "NLUTimeout", "NLUUnavailable"]


class NLUError(Exception):
    """Base class for everything that can go wrong while classifying a question."""


class NLUUnavailable(NLUError):
    """The NLU server cannot be reached or is not ready."""


class NLUTimeout(NLUUnavailable):
    """The NLU server did not answer within the configured timeout."""


class NLUResponseError(NLUError):
    """The NLU server answered with an error status or an unexpected body."""
