"""Partner organisations in config.yml (validation, routing) and referrals in the storage."""

from __future__ import annotations

import datetime as dt
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.settings import ConfigError, Settings, load_settings
from bot.storage import Storage

BASE = "languages: [en, cs, uk, fa]\ncities: [prague, osijek]\n"
PARTNERS = """
handoff:
  partners:
    prague:
      - {id: icp, name: Integration Centre Prague, chat_id: -1001, language: cs, default: true}
      - id: legal
        name: Legal Aid Prague
        chat_id: -1002
        language: cs
        languages: [cs, uk]
        handles: [services.legal_aid, "work.*"]
      - {id: any-uk, name: Ukrainian House, chat_id: -1003, language: uk, languages: [uk], handles: ["*"]}
      - {id: rights, name: Workers' Rights, chat_id: -1004, handles: [work.rights]}
    osijek:
      - {id: osijek-centre, chat_id: -1005, language: en}
"""


def config(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "config.yml"
    path.write_text(BASE + textwrap.dedent(text), encoding="utf-8")
    return load_settings(path, environ={})


def test_a_case_goes_to_the_partner_for_its_key_and_language_else_to_the_default(tmp_path: Path) -> None:
    settings = config(tmp_path, PARTNERS)

    def route(key: str | None, language: str) -> str | None:
        partner = settings.route("prague", key, language)
        return None if partner is None else partner.id

    assert route("work.rights", "cs") == "rights"  # the exact key before a prefix
    assert route("work.job_search", "uk") == "legal"  # a prefix before "*"
    assert route("work.job_search", "fa") == "icp"  # legal aid does not speak Persian
    assert route("services.legal_aid", "fa") == "icp"
    assert route("work.rights", "fa") == "rights"  # no languages listed: any language
    assert route("health.doctor", "uk") == "any-uk"  # "*" in the person's language
    assert route(None, "uk") == "any-uk"
    assert route(None, "en") == "icp"
    assert [p.id for p in settings.partners_in("osijek")] == ["osijek-centre"]
    assert settings.partners_in("osijek")[0].default  # a city's only partner is its default
    assert settings.route("osijek", "work.rights", "fa") == settings.partners_in("osijek")[0]
    assert settings.find_partner("legal") == ("prague", settings.partners_in("prague")[1])
    assert settings.staff_group("osijek", "legal") == settings.partners_in("prague")[1]  # any city
    assert settings.staff_group("prague", None) == settings.partners_in("prague")[0]
    assert settings.staff_group("prague", "gone") == settings.partners_in("prague")[0]


def test_one_group_per_city_is_still_its_only_partner(tmp_path: Path) -> None:
    settings = config(tmp_path, "handoff:\n  groups:\n    prague: {chat_id: -1001, language: cs}\n")
    [partner] = settings.partners_in("prague")
    assert (partner.id, partner.name, partner.default, partner.chat_id) == ("prague", "", True, -1001)
    assert settings.route("prague", "work.rights", "fa") == partner
    assert settings.partners_in("osijek") == () and settings.route("osijek", None, "en") is None


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "handoff:\n  partners:\n    brno: [{id: a, chat_id: -1}]\n",
            "handoff.partners has 'brno', which is not one of the cities",
        ),
        (
            "handoff:\n  groups:\n    prague: {chat_id: -1}\n"
            "  partners:\n    prague: [{id: a, chat_id: -2}]\n",
            "prague is under both handoff.groups and handoff.partners",
        ),
        (
            "handoff:\n  partners:\n    prague: [{id: a, chat_id: -1}, {id: b, chat_id: -2}]\n",
            "handoff.partners.prague: mark exactly one partner 'default: true'",
        ),
        (
            "handoff:\n  partners:\n    prague: [{id: a, chat_id: -1}]\n    osijek: [{id: a, chat_id: -2}]\n",
            "the partner id 'a' is already used in prague",
        ),
        (
            "handoff:\n  partners:\n    prague: [{id: a, chat_id: -1, handles: [work.]}]\n",
            "'work.' is not a key like services.legal_aid",
        ),
        (
            "handoff:\n  partners:\n    prague: [{id: a, chat_id: -1, languages: [de]}]\n",
            "handoff.partners.prague.a.languages: de is not one of the languages",
        ),
        ("handoff:\n  partners:\n    prague: [{id: A B, chat_id: -1}]\n", "handoff.partners.prague.0.id"),
        ("handoff:\n  partners:\n    prague: [{id: a, chat_id: -1, city: x}]\n", "Extra inputs"),
    ],
)
def test_partner_mistakes_are_explained(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as raised:
        config(tmp_path, text)
    assert problem in str(raised.value)


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[tuple[Storage, Clock]]:
    clock = Clock()
    async with Storage(f"sqlite+aiosqlite:///{tmp_path / 'referrals.db'}", clock=clock) as opened:
        yield opened, clock


async def test_a_referral_moves_the_case_records_one_answer_and_is_reminded_until_claimed(
    storage: tuple[Storage, Clock],
) -> None:
    store, clock = storage
    for chat_id in (7, 8):
        await store.save_person(chat_id, language="uk", city="prague", consent_at=clock.now)
    case, _ = await store.cases.open(
        7, city="prague", language="uk", key="work.rights", urgent=False, group_chat_id=-1001,
        remind_at=None, partner="icp",
    )  # fmt: skip
    await store.cases.set_topic(case.id, thread_id=11, card_message_id=12)
    seen = await store.cases.get(case.id)
    assert seen is not None
    done = await store.referrals.refer(
        seen, from_partner="icp", to_partner="legal", group_chat_id=-1002, thread_id=21,
        card_message_id=22, remind_at=None, actor_id=501,
    )  # fmt: skip
    assert done is not None
    moved, referral = done
    assert (moved.partner, moved.group_chat_id, moved.thread_id, moved.owner_id) == ("legal", -1002, 21, None)
    assert (referral.from_chat_id, referral.from_thread_id, referral.consent) == (-1001, 11, None)
    # The same (now stale) view of the case cannot be referred twice.
    assert await store.referrals.refer(
        seen, from_partner="icp", to_partner="legal", group_chat_id=-1002, thread_id=31,
        card_message_id=32, remind_at=None, actor_id=501,
    ) is None  # fmt: skip

    assert await store.referrals.answer(referral.id, 8, True) is None  # not their case
    answered = await store.referrals.answer(referral.id, 7, False)
    assert answered is not None and answered.consent is False
    assert await store.referrals.answer(referral.id, 7, True) is None  # only the first answer counts

    hour = dt.timedelta(minutes=60)
    assert await store.referrals.due(clock.now, hour) == []
    clock.now += hour
    [due] = await store.referrals.due(clock.now, hour)
    assert await store.referrals.reminded(due)
    assert not await store.referrals.reminded(due)  # another process was first
    assert await store.referrals.due(clock.now, hour) == []
    clock.now += hour
    [again] = await store.referrals.due(clock.now, hour)  # reminded again while it waits
    assert again.reminded_at == clock.now - hour

    won, _current = await store.cases.claim(case.id, 601)
    assert won
    assert await store.referrals.claimed(case.id, "icp") == []  # claimed by the receiving partner only
    [claimed] = await store.referrals.claimed(case.id, "legal")
    assert claimed.claimed_at == clock.now and await store.referrals.claimed(case.id, "legal") == []
    assert await store.referrals.due(clock.now + hour, hour) == []

    log = [(row.action, row.detail, row.partner) for row in await store.cases.audit_log(case.id)]
    assert log == [
        ("open", "work.rights", "icp"),
        ("refer", "legal", "icp"),
        ("consent", "no", "legal"),
        ("remind", "referral", "legal"),
        ("claim", None, "legal"),
    ]
    assert await store.forget(7)
    assert await store.referrals.of_case(case.id) == []  # erased with the person's case
