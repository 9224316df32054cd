"""What the files under ``content/`` may hold: entries, cities, example questions, and the problems
the loader reports in plain words."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "EMERGENCY_KEY",
    "NOT_EMERGENCY_KEY",
    "OLD_REVIEW_FIELDS",
    "Check",
    "City",
    "ContentError",
    "Entry",
    "KeyText",
    "Problem",
    "Severity",
]


Severity = Literal["error", "warning"]
# The key whose examples the curated emergency situations (content/safety/) join.
EMERGENCY_KEY = "safety.emergency"
# The training label of content/safety/'s not-emergencies: only the emergency detector learns from them
# (nlu/config.yml tells the intent classifier to leave them out); no answer has this key.
NOT_EMERGENCY_KEY = "safety.not_emergency"
# Review fields of the old entry format, still read until `python -m bot content migrate-review` ran.
OLD_REVIEW_FIELDS = ("status", "last_reviewed")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the content, phrased for an editor."""

    severity: Severity
    file: str
    message: str
    entry: str | None = None
    field: str | None = None
    line: int | None = None
    hint: str | None = None

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line else "")
        if self.entry:
            where += f", entry '{self.entry}'"
        if self.field:
            where += f", field '{self.field}'"
        text = f"{self.severity.upper()}: {where}: {self.message}"
        return text + (f"\n    how to fix: {self.hint}" if self.hint else "")


class ContentError(Exception):
    """The content has errors; ``problems`` lists them."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def _check_url(value: str) -> str:
    value = value.strip()
    try:
        url = httpx.URL(value)
    except httpx.InvalidURL as exc:
        raise ValueError(f"'{value}' is not a web address") from exc
    if url.scheme not in {"https", "http"} or not url.host or "." not in url.host:
        raise ValueError(f"'{value}' is not a full web address starting with https://")
    return value


class Check(BaseModel):
    """A named partner organisation checked the answer against its sources on a day."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    by: str = Field(min_length=1)
    on: dt.date

    @model_validator(mode="before")
    @classmethod
    def _read_on_key(cls, data: Any) -> Any:
        """YAML 1.1 (PyYAML) reads the key ``on:`` as the boolean true: take it back as ``on``."""
        if isinstance(data, dict) and True in data and "on" not in data:
            return {("on" if k is True else k): v for k, v in data.items()}
        return data

    @field_validator("by")
    @classmethod
    def _organisation_named(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the organisation's name is empty")
        return value.strip()


class Entry(BaseModel):
    """One answer for one key, in several languages, with its sources and who checked it.

    ``updated`` is the day the text or the sources last changed; ``checked`` is set only when a named
    partner organisation checked the answer against its sources.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    updated: dt.date
    checked: Check | None = None
    sources: tuple[str, ...] = Field(min_length=1)
    answer: dict[str, str] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _read_old_review_fields(cls, data: Any) -> Any:
        """Read the old format: ``last_reviewed`` is ``updated``; ``status: draft|reviewed`` is dropped.

        ``status: reviewed`` never named who checked, so it does not count as a partner's check. Other
        values (or both ``last_reviewed`` and ``updated``) are left in place and reported as unknown fields.
        """
        if not isinstance(data, dict) or not any(name in data for name in OLD_REVIEW_FIELDS):
            return data
        data = dict(data)
        if data.get("status") in ("draft", "reviewed"):
            del data["status"]
        if "last_reviewed" in data and "updated" not in data:
            data["updated"] = data.pop("last_reviewed")
        return data

    @field_validator("sources")
    @classmethod
    def _sources_are_urls(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_check_url(v) for v in value)

    @field_validator("answer")
    @classmethod
    def _answers_not_empty(cls, value: dict[str, str]) -> dict[str, str]:
        cleaned = {}
        for lang, text in value.items():
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"the '{lang}' answer is empty")
            cleaned[lang] = text.strip()
        return cleaned


class City(BaseModel):
    """A city the bot serves."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    country: str = Field(pattern=r"^[a-z]{2}$")
    local_language: str = Field(pattern=r"^[a-z]{2}$")
    name: dict[str, str] = Field(min_length=1)

    def display_name(self, language: str) -> str:
        return self.name.get(language) or self.name.get("en") or self.id.title()


class KeyText(BaseModel):
    """A key's button title and example questions in one language."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str = Field(min_length=1)
    examples: tuple[str, ...] = ()

    @field_validator("examples", mode="before")
    @classmethod
    def _examples_are_text(cls, value: Any) -> Any:
        if isinstance(value, list):
            for item in value:
                if not isinstance(item, str):
                    raise ValueError(f"'{item}' is not text: put it in double quotes")
        return value
