"""Topics a case has left, in the storage, on SQLite and PostgreSQL: recorded with the change that ends
them, told once, and all found again for /forget (open and closed cases, transfers, referrals)."""

from __future__ import annotations

from datetime import timedelta

from bot.storage import EndedTopicData, Storage

from .test_storage import T0, Clock
from .test_storage import clock as clock  # the fixtures, shared
from .test_storage import storage as storage

PRAGUE, BRNO, OSIJEK = -1001, -1002, -1003


async def open_case(storage: Storage, chat_id: int, thread_id: int) -> int:
    case, created = await storage.cases.open(
        chat_id, city="prague", language="fa", key=None, urgent=False, group_chat_id=PRAGUE, remind_at=None
    )
    assert created
    await storage.cases.set_topic(case.id, thread_id=thread_id, card_message_id=thread_id + 1)
    return case.id


async def test_a_closed_topic_is_told_once_and_forget_finds_every_topic_of_the_person(
    storage: Storage, clock: Clock
) -> None:
    await storage.save_person(7, language="fa", city="prague", consent_at=T0)
    await storage.save_person(8, language="uk", city="prague", consent_at=T0)
    first = await open_case(storage, 7, 10)
    assert await storage.cases.ended_topic(PRAGUE, 10) is None  # open: not ended
    clock.advance(minutes=1)
    assert await storage.cases.close(first, 501, "close") is not None
    ended = await storage.cases.ended_topic(PRAGUE, 10)
    assert ended == EndedTopicData(PRAGUE, 10, first, "closed", None) and ended.number == "C-0001"
    assert await storage.cases.tell_once(PRAGUE, 10)
    assert not await storage.cases.tell_once(PRAGUE, 10)  # once per topic
    assert not await storage.cases.tell_once(PRAGUE, 99)  # never a case's topic

    # The second case moves twice: a transfer, then a referral; each topic it leaves is recorded.
    second = await open_case(storage, 7, 20)
    case = await storage.cases.get(second)
    assert case is not None
    moved = await storage.cases.transfer(
        second,
        city="brno",
        group_chat_id=BRNO,
        thread_id=30,
        card_message_id=31,
        remind_at=None,
        actor_id=501,
    )
    assert moved is not None
    referred = await storage.referrals.refer(
        moved,
        from_partner="brno",
        to_partner="osijek-centre",
        group_chat_id=OSIJEK,
        thread_id=40,
        card_message_id=41,
        remind_at=None,
        actor_id=502,
    )
    assert referred is not None
    assert await storage.cases.ended_topic(PRAGUE, 20) == EndedTopicData(PRAGUE, 20, second, "moved", None)
    assert await storage.cases.ended_topic(BRNO, 30) == EndedTopicData(BRNO, 30, second, "moved", None)
    assert await storage.cases.ended_topic(OSIJEK, 40) is None  # where the case is now
    other = await open_case(storage, 8, 50)  # someone else's case is never touched

    # /forget: every topic that holds the person's messages, all marked erased (to be told anew).
    clock.advance(minutes=1)
    assert await storage.cases.close(second, None, "erase") is not None
    topics = await storage.cases.erase_topics(7)
    assert sorted((t.group_chat_id, t.thread_id, t.case_id) for t in topics) == sorted(
        [(PRAGUE, 10, first), (PRAGUE, 20, second), (BRNO, 30, second), (OSIJEK, 40, second)]
    )
    for topic in topics:
        assert await storage.cases.ended_topic(topic.group_chat_id, topic.thread_id) == EndedTopicData(
            topic.group_chat_id, topic.thread_id, topic.case_id, "erased", None
        )
    await storage.cases.topic_deleted(PRAGUE, 10)
    assert await storage.cases.ended_topic(PRAGUE, 10) is None
    assert await storage.forget(7)
    # The erased person's topics stay known (ids only), so staff there are still told why.
    assert await storage.cases.tell_once(OSIJEK, 40)
    assert await storage.cases.ended_topic(PRAGUE, 50) is None
    assert await storage.cases.get(other) is not None
    assert await storage.cases.erase_topics(7) == []  # nobody left to find topics for
    assert [c.id for c in await storage.cases.closed_of(8)] == []


async def test_closed_cases_of_a_person_oldest_first(storage: Storage, clock: Clock) -> None:
    await storage.save_person(9, language="cs", city="prague", consent_at=T0)
    ids = []
    for thread in (60, 70):
        case_id = await open_case(storage, 9, thread)
        clock.advance(minutes=5)
        assert await storage.cases.close(case_id, None, "return") is not None
        ids.append(case_id)
    await open_case(storage, 9, 80)
    closed = await storage.cases.closed_of(9)
    assert [c.id for c in closed] == ids
    assert [c.closed_at for c in closed] == [T0 + timedelta(minutes=5), T0 + timedelta(minutes=10)]


async def test_topics_cases_left_are_kept_as_long_as_the_audit_log(storage: Storage, clock: Clock) -> None:
    await storage.save_person(10, language="bg", city="prague", consent_at=T0)
    case_id = await open_case(storage, 10, 90)
    assert await storage.cases.close(case_id, None, "close") is not None
    clock.advance(days=20)
    retention = {
        "turns_older_than": timedelta(days=365),
        "inactive_people_older_than": timedelta(days=365),
        "unanswered_older_than": timedelta(days=365),
    }
    kept = await storage.purge(now=clock.now, audit_older_than=timedelta(days=21), **retention)
    assert kept["ended_topics"] == 0 and await storage.cases.ended_topic(PRAGUE, 90) is not None
    deleted = await storage.purge(now=clock.now, audit_older_than=timedelta(days=19), **retention)
    assert deleted["ended_topics"] == 1 and await storage.cases.ended_topic(PRAGUE, 90) is None
