"""Storage for resumable cases and edits, on SQLite and PostgreSQL: text PostgreSQL refuses, the
steps of opening and transferring a case with their lease, and the map of relayed message ids."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from bot.storage import Storage
from bot.storage._models import HandoffMessage

from .test_storage import Clock, count

PRAGUE = -1001000000001
LEASE = timedelta(minutes=2)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def storage(url: str, clock: Clock) -> AsyncIterator[Storage]:
    """An empty database on each backend."""
    async with Storage(url, clock=clock) as store:
        yield store


async def opened(storage: Storage, chat_id: int = 7) -> int:
    await storage.save_person(chat_id, language="uk", city="prague", consent_at=storage.clock())
    case, created = await storage.cases.open(
        chat_id, city="prague", language="uk", key=None, urgent=False, group_chat_id=PRAGUE, remind_at=None
    )
    assert created
    return case.id


async def test_nul_and_lone_surrogates_are_stored_as_replacement_characters(storage: Storage) -> None:
    """PostgreSQL refuses NUL in text and no UTF-8 encoder takes a lone surrogate (a JSON "\\ud800"):
    the turn, the unanswered question and the audit detail are stored with U+FFFD instead."""
    text = "ahoj\x00svět \ud800 😀"
    await storage.add_turn(7, "user", text, None, message_id=11)
    await storage.add_unanswered("prague", "cs", text, None, 0.1)
    case_id = await opened(storage, 8)
    await storage.cases.audit(case_id, "note", 1, text)
    [turn] = await storage.recent_turns(7)
    assert turn.text == "ahoj\ufffdsvět \ufffd 😀"
    [question] = await storage.unanswered_report()
    assert question.text == "ahoj\ufffdsvět \ufffd 😀"
    assert (await storage.cases.audit_log(case_id))[-1].detail == "ahoj\ufffdsvět \ufffd 😀"
    assert await storage.question_key(7, 11) == (True, None)


async def test_a_new_case_has_its_steps_ahead_and_one_taker_at_a_time(storage: Storage, clock: Clock) -> None:
    case_id = await opened(storage)
    setup = await storage.steps.get(case_id)
    assert setup is not None and (setup.kind, setup.step, setup.attempts) == ("open", "topic", 0)
    assert [s.case_id for s in await storage.steps.pending(clock.now)] == [case_id]

    taken = await storage.steps.take(case_id, LEASE)
    assert taken is not None and taken.attempts == 1
    assert await storage.steps.take(case_id, LEASE) is None  # someone holds it
    assert await storage.steps.pending(clock.now) == []
    await storage.steps.advance(case_id, "card")
    # A taker that crashed: its lease runs out, and the step it reached is where the next one starts.
    clock.advance(minutes=3)
    again = await storage.steps.take(case_id, LEASE)
    assert again is not None and again.step == "card" and again.attempts == 2
    await storage.steps.release(case_id)
    await storage.steps.done(case_id)
    assert await storage.steps.get(case_id) is None
    assert await storage.steps.take(case_id, LEASE) is None


async def test_a_transfer_is_recorded_once_and_not_while_the_case_is_being_opened(storage: Storage) -> None:
    case_id = await opened(storage)
    assert not await storage.steps.request_transfer(case_id, to_city="osijek", actor_id=5)  # still opening
    await storage.cases.set_topic(case_id, thread_id=40, card_message_id=41)
    await storage.steps.done(case_id)
    assert await storage.steps.request_transfer(case_id, to_city="osijek", actor_id=5)
    assert not await storage.steps.request_transfer(case_id, to_city="sofia", actor_id=5)
    setup = await storage.steps.get(case_id)
    assert setup is not None and setup.kind == "transfer" and setup.to_city == "osijek"
    assert (setup.from_group_chat_id, setup.from_thread_id) == (PRAGUE, 40)


async def test_a_referral_is_recorded_like_a_transfer_with_its_partner_and_note_until_done(
    storage: Storage,
) -> None:
    case_id = await opened(storage)
    await storage.cases.set_topic(case_id, thread_id=40, card_message_id=41)
    await storage.steps.done(case_id)
    note = "needs a lawyer\x00 soon"
    assert await storage.steps.request_transfer(
        case_id, to_city="osijek", actor_id=5, to_partner="oc", note=note
    )
    assert not await storage.steps.request_transfer(case_id, to_city="prague", actor_id=5)  # one at a time
    setup = await storage.steps.get(case_id)
    assert setup is not None and (setup.kind, setup.to_city, setup.to_partner) == ("refer", "osijek", "oc")
    assert setup.note == "needs a lawyer\ufffd soon" and setup.from_thread_id == 40
    await storage.steps.done(case_id)  # the note goes with the steps
    assert await storage.steps.get(case_id) is None


async def test_relayed_copies_go_with_their_case_and_with_old_turns(storage: Storage, clock: Clock) -> None:
    case_id = await opened(storage)
    await storage.relayed.add(case_id, "person", 10, PRAGUE, [100, 101])
    await storage.relayed.add(case_id, "staff", 55, 7, [12])
    assert [c.copy_id for c in await storage.relayed.copies(case_id, "person", 10)] == [100, 101]
    assert await storage.relayed.from_person(7, 10) and not await storage.relayed.from_person(7, 55)
    await storage.relayed.mark_broken(case_id, "person", 10)
    assert all(c.broken for c in await storage.relayed.copies(case_id, "person", 10))

    clock.advance(days=91)
    other = await opened(storage, 9)
    await storage.relayed.add(other, "person", 1, PRAGUE, [200])
    deleted = await storage.purge(
        now=clock.now,
        turns_older_than=timedelta(days=90),
        inactive_people_older_than=timedelta(days=365),
        unanswered_older_than=timedelta(days=365),
    )
    assert deleted["relayed"] == 3
    assert [c.copy_id for c in await storage.relayed.copies(other, "person", 1)] == [200]
    await storage.forget(9)  # the person, their case, and its map
    assert await count(storage, HandoffMessage) == 0
