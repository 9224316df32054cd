"""Office hours of staff groups, and the handoff part of config.yml."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from bot.hours import OfficeHours
from bot.settings import ConfigError, Partner, Settings, StaffGroup, load_settings

PRAGUE = OfficeHours.parse({"mon": "09:00-17:00", "fri": ["09:00-12:00", "13:00-15:00"]}, "Europe/Prague")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=dt.UTC)


def test_open_and_closed_follow_the_local_clock() -> None:
    assert PRAGUE.is_open(utc(2026, 11, 23, 8, 0))  # Monday 09:00 in Prague (UTC+1)
    assert not PRAGUE.is_open(utc(2026, 11, 23, 7, 59))
    assert not PRAGUE.is_open(utc(2026, 11, 23, 16, 0))  # 17:00: closing time is not open
    assert not PRAGUE.is_open(utc(2026, 11, 24, 10, 0))  # Tuesday: no hours
    assert not PRAGUE.is_open(utc(2026, 11, 27, 11, 30))  # Friday lunch break
    assert PRAGUE.is_open(utc(2026, 11, 27, 12, 0))


def test_next_opening_is_now_when_open_and_else_the_next_start() -> None:
    now = utc(2026, 11, 23, 10, 0)
    assert PRAGUE.next_opening(now) == now
    friday = PRAGUE.next_opening(utc(2026, 11, 23, 17, 0))
    assert friday == dt.datetime(2026, 11, 27, 9, 0, tzinfo=PRAGUE.zone)
    assert PRAGUE.next_opening(utc(2026, 11, 27, 11, 15)) == dt.datetime(
        2026, 11, 27, 13, 0, tzinfo=PRAGUE.zone
    )
    assert PRAGUE.next_opening(utc(2026, 11, 27, 15, 0)) == dt.datetime(
        2026, 11, 30, 9, 0, tzinfo=PRAGUE.zone
    )
    # Across the change to summer time the opening stays at 09:00 local (07:00 UTC).
    assert PRAGUE.next_opening(utc(2027, 3, 27, 12, 0)).astimezone(dt.UTC) == utc(2027, 3, 29, 7, 0)


def test_no_hours_means_always_open() -> None:
    always = OfficeHours.parse({}, "UTC")
    moment = utc(2026, 12, 25, 3, 0)
    assert always.always and always.is_open(moment) and always.next_opening(moment) == moment


@pytest.mark.parametrize(
    ("hours", "zone", "message"),
    [
        ({"monday": "09:00-17:00"}, "UTC", "'monday' is not a weekday"),
        ({"mon": "9-17"}, "UTC", "is not a time like 09:00"),
        ({"mon": "17:00-09:00"}, "UTC", "ends before it starts"),
        ({"mon": "09:00"}, "UTC", "must be a range"),
        ({}, "Europe/Nowhere", "is not a time zone name"),
    ],
)
def test_mistakes_in_office_hours_are_explained(hours: dict[str, str], zone: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        OfficeHours.parse(hours, zone)


def test_config_rejects_staff_groups_for_unknown_cities_and_bad_hours(
    settings: Settings, tmp_path: Path
) -> None:
    config = tmp_path / "config.yml"
    base = "languages: [en, cs]\ncities: [prague]\n"
    config.write_text(base + "handoff:\n  groups:\n    brno: {chat_id: -1001}\n")
    with pytest.raises(ConfigError, match="'brno', which is not one of the cities"):
        load_settings(config, environ={})
    config.write_text(base + "handoff:\n  groups:\n    prague: {chat_id: -1001, office_hours: {mon: 9-5}}\n")
    with pytest.raises(ConfigError, match=r"handoff\.groups\.prague\.office_hours"):
        load_settings(config, environ={})
    config.write_text(base + "handoff:\n  groups:\n    prague: {chat_id: -1001, language: cs, allow: [5]}\n")
    loaded = load_settings(config, environ={})
    # One group per city (the older form) is the city's only partner, named by the city.
    group = StaffGroup(chat_id=-1001, language="cs", allow=(5,))
    assert loaded.staff_group("prague") == Partner(**group.model_dump(), id="prague", default=True)
    assert loaded.staff_group("brno") is None
    assert settings.handoff.groups == {}  # the shipped config has no groups: they are per deployment
