"""What the engine decides: the outcome of a message and everything a front end needs to show it."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from nlu import IntentScore

from .knowledge import Answer
from .language import Detection

__all__ = ["InvalidQuestion", "Outcome", "Reply", "UnknownCity"]


class Outcome(StrEnum):
    ANSWER = "answer"  # a knowledge-base answer
    CLARIFY = "clarify"  # not sure: offer the alternatives
    CONVERSATION = "conversation"  # greet, thanks, change_city…
    OUT_OF_SCOPE = "out_of_scope"
    HANDOFF = "handoff"  # the person asked for a human
    NO_CONTENT = "no_content"  # the city (or this key in it) has no content yet
    UNAVAILABLE = "unavailable"  # the NLU server could not be asked


class InvalidQuestion(ValueError):
    """The text cannot be a question (empty, no letters); ``message`` is in the person's language."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.message = message


class UnknownCity(ValueError):
    """The city is not one the deployment serves."""


@dataclass
class Reply:
    """What the engine decided, with everything a front end needs to show it."""

    outcome: Outcome
    city: str
    language: str
    text: str
    key: str | None = None
    confidence: float = 0.0
    alternatives: list[IntentScore] = field(default_factory=list)
    answer: Answer | None = None
    notice: str | None = None
    handoff: bool = False
    urgent: bool = False
    detection: Detection | None = None
    # When an emergency is detected in a message that also asks something else, the emergency reply
    # comes first and the answer to the other question follows.
    followup: Reply | None = None
    # Why the reply is urgent: "signal" (a danger signal), "detector", "sentence" or "key" (the
    # model), "words" (the model was away: the nearest examples by their words are emergencies).
    urgent_reason: str | None = None
    # The model could not be asked: the alternatives come from the words alone (bot/lexical.py).
    degraded: bool = False
    # No alarm, but the message comes close to one (``Engine.concern``): the reply ends with the
    # emergency number and the offer of a person, in case it is more than it says.
    caution: bool = False

    def to_json(self) -> dict[str, Any]:
        """The ``ask --jsonl`` record."""
        return {
            "key": self.key,
            "confidence": round(self.confidence, 4),
            "language": self.language,
            "alternatives": [{"key": a.key, "confidence": round(a.confidence, 4)} for a in self.alternatives],
            "answer": self.text if self.outcome is not Outcome.CLARIFY else None,
            "sources": list(self.answer.sources) if self.answer else [],
            "handoff": self.handoff,
            "outcome": str(self.outcome),
            "city": self.city,
            "urgent": self.urgent,
            "caution": self.caution,
            "answer_language": self.answer.language if self.answer else self.language,
            "notice": self.notice,
            "updated": self.answer.updated.isoformat() if self.answer else None,
            "checked_by": self.answer.checked_by if self.answer else None,
            "checked_on": str(self.answer.checked_on) if self.answer and self.answer.checked_on else None,
            "urgent_reason": self.urgent_reason,
            "followup": self.followup.to_json() if self.followup else None,
        }
