"""Office hours of a staff group: is someone at work now, and when are they back."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["WEEKDAYS", "OfficeHours"]

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Span = tuple[dt.time, dt.time]


def _time(text: str, where: str) -> dt.time:
    try:
        hours, minutes = text.strip().split(":")
        return dt.time(int(hours), int(minutes))
    except ValueError:
        raise ValueError(f"{where}: '{text}' is not a time like 09:00") from None


def _spans(value: str | Sequence[str], where: str) -> list[Span]:
    spans = []
    for item in [value] if isinstance(value, str) else value:
        start, sep, end = item.partition("-")
        if not sep:
            raise ValueError(f"{where}: '{item}' must be a range like 09:00-17:00")
        span = (_time(start, where), _time(end, where))
        if span[0] >= span[1]:
            raise ValueError(f"{where}: '{item}' ends before it starts")
        spans.append(span)
    return sorted(spans)


@dataclass(frozen=True)
class OfficeHours:
    """Weekly opening hours in a time zone. No hours at all means staff may answer at any time."""

    zone: ZoneInfo
    week: Mapping[int, Sequence[Span]]

    @classmethod
    def parse(cls, hours: Mapping[str, str | Sequence[str]], timezone: str) -> OfficeHours:
        """From ``{"mon": "09:00-17:00", "fri": ["09:00-12:00"]}`` and an IANA zone name."""
        try:
            zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"'{timezone}' is not a time zone name like Europe/Prague") from None
        week: dict[int, list[Span]] = {}
        for day, value in hours.items():
            if day not in WEEKDAYS:
                raise ValueError(f"'{day}' is not a weekday; use {', '.join(WEEKDAYS)}")
            week[WEEKDAYS.index(day)] = _spans(value, day)
        return cls(zone, week)

    @property
    def always(self) -> bool:
        return not any(self.week.values())

    def is_open(self, at: dt.datetime) -> bool:
        if self.always:
            return True
        local = at.astimezone(self.zone)
        return any(start <= local.time() < end for start, end in self.week.get(local.weekday(), ()))

    def next_opening(self, at: dt.datetime) -> dt.datetime:
        """``at`` itself when open, otherwise the next moment the office opens (aware, in its zone)."""
        if self.is_open(at):
            return at
        local = at.astimezone(self.zone)
        for offset in range(8):
            day = local.date() + dt.timedelta(days=offset)
            for start, _end in self.week.get(day.weekday(), ()):
                opening = dt.datetime.combine(day, start, self.zone)
                if opening > local:
                    return opening
        raise AssertionError("a week with office hours always has a next opening")
