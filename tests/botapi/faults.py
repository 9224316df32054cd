"""Faults the fake Bot API can inject: flood limits (429), a blocked person (403), server errors and
dropped connections, for some methods or chats, for a while or for a number of calls.

Usage::

    api.faults.add(429, retry_after=2, seconds=5)          # a 5-second storm of 429s on every method
    api.faults.add(403, chat=1001)                         # "bot was blocked by the user" for one chat
    api.faults.add(500, methods={"sendMessage"}, times=2)  # the next two sendMessage calls fail
    api.faults.add(DROP, times=1)                          # the next call: connection closed, no answer

A rule matches a call when its method is among ``methods`` (case-insensitive; by default every method
except ``getUpdates``, which Telegram does not flood-limit) and its ``chat_id`` is ``chat`` (if given).
The first matching live rule answers instead of the method; the call is still recorded (``Call.error``
says what was answered, and ``Call.params`` the chat), so tests read the times of calls, not clocks.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from .world import JSON

__all__ = ["DROP", "Fault", "Faults"]

DROP = 0
"""Status of a fault that closes the connection without answering (a timeout or a network error)."""

DESCRIPTIONS = {
    403: "Forbidden: bot was blocked by the user",
    429: "Too Many Requests: retry after {retry_after}",
    500: "Internal Server Error",
    502: "Bad Gateway",
    DROP: "connection dropped",
}


@dataclass
class Fault:
    """One rule: answer ``status`` to matching calls until ``deadline`` (monotonic) or ``times`` run out."""

    status: int
    methods: frozenset[str] | None
    chat: int | None
    deadline: float | None
    times: int | None
    retry_after: int | None
    description: str

    def live(self) -> bool:
        return (self.deadline is None or time.monotonic() < self.deadline) and (
            self.times is None or self.times > 0
        )

    def matches(self, method: str, chat_id: object) -> bool:
        if self.methods is None:
            wanted = method.lower() != "getupdates"
        else:
            wanted = method.lower() in self.methods
        return wanted and (self.chat is None or str(chat_id) == str(self.chat))

    def answer(self) -> tuple[int, JSON]:
        """The HTTP status and body Telegram would send (status DROP: no answer at all)."""
        body: JSON = {"ok": False, "error_code": self.status, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return self.status, body


class Faults:
    """The server's fault rules, oldest first."""

    def __init__(self) -> None:
        self.rules: list[Fault] = []

    def add(
        self,
        status: int,
        *,
        methods: Iterable[str] | None = None,
        chat: int | None = None,
        seconds: float | None = None,
        times: int | None = None,
        retry_after: int | None = None,
    ) -> Fault:
        """Answer ``status`` (429, 403, 500, 502 or DROP) to matching calls, for ``seconds`` from now
        and/or the next ``times`` calls; without either, until ``clear()``. A 429 carries
        ``retry_after`` (default 1 second), as Telegram's does."""
        if status not in DESCRIPTIONS:
            raise ValueError(f"no fault with status {status}; known: {sorted(DESCRIPTIONS)}")
        if status == 429 and retry_after is None:
            retry_after = 1
        fault = Fault(
            status,
            None if methods is None else frozenset(m.lower() for m in methods),
            chat,
            None if seconds is None else time.monotonic() + seconds,
            times,
            retry_after if status == 429 else None,
            DESCRIPTIONS[status].format(retry_after=retry_after),
        )
        self.rules.append(fault)
        return fault

    def clear(self) -> None:
        """Remove every rule."""
        self.rules.clear()

    def take(self, method: str, chat_id: object) -> Fault | None:
        """The rule that answers this call, if any (a counted rule uses up one call)."""
        self.rules = [rule for rule in self.rules if rule.live()]
        for rule in self.rules:
            if rule.matches(method, chat_id):
                if rule.times is not None:
                    rule.times -= 1
                return rule
        return None
