"""The city insights report (``python -m bot insights``): figures from a seeded database, checked
exactly, with k-anonymity (small figures hidden, and what would give them away withheld); no text or id
in any file; the HTML opened in headless Chromium shows the charts."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as settings_hypothesis
from hypothesis import strategies as st

from bot.knowledge import Taxonomy, load_taxonomy
from bot.settings import ROOT, Settings
from bot.settings import Partner as PartnerSettings
from bot.storage import Storage
from bot.tools.content import gaps_markdown
from bot.tools.insights import collect
from bot.tools.insights.report import PALETTE, write_report
from bot.tools.insights.suppress import SHOWN, SMALL, WITHHELD, Cell, Group, protect

UTC = dt.UTC
START, END = dt.date(2026, 3, 2), dt.date(2026, 3, 15)  # two weeks, Monday to Sunday
WEEK1 = dt.datetime(2026, 3, 3, 10, 0, tzinfo=UTC)
WEEK2 = dt.datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
CASES_AT = dt.datetime(2026, 3, 4, 9, 0, tzinfo=UTC)
SECRET = "zebra-passport-7731"  # a text people wrote: must not reach any output
GROUP_A, GROUP_B, STAFF = -1009990001, -1009990002, 770000555


def chat(n: int) -> int:
    """A recognisable chat id (grepped for in the outputs)."""
    return 880_000_000 + n


class Clock:
    def __init__(self) -> None:
        self.now = WEEK1

    def __call__(self) -> dt.datetime:
        return self.now


def with_partners(settings: Settings) -> Settings:
    partners = (
        PartnerSettings(chat_id=GROUP_A, id="centre", name="Integration Centre", default=True),
        PartnerSettings(chat_id=GROUP_B, id="legal", name="Legal Aid", handles=("services.legal_aid",)),
    )
    handoff = settings.handoff.model_copy(update={"partners": {"prague": partners}, "groups": {}})
    return settings.model_copy(update={"handoff": handoff})


async def seed(storage: Storage, clock: Clock) -> None:
    """Two weeks of Prague (and a little of Sofia and of the days around, which must not count)."""

    async def person(n: int, lang: str, city: str = "prague") -> None:
        await storage.save_person(chat(n), language=lang, city=city, consent_at=clock())

    async def ask(n: int, key: str | None, event: str, lang: str, city: str = "prague") -> None:
        await person(n, lang, city)
        await storage.add_turn(chat(n), "user", f"{SECRET} {n}", key)
        if event in ("out_of_scope", "no_content", "clarify"):
            await storage.add_unanswered(city, lang, f"{SECRET} unanswered", key, 0.2)
        await storage.usage.record(chat(n), city, lang, key, event)

    clock.now = WEEK1
    for n in range(101, 107):
        await ask(n, "housing.rent", "answer", "uk")
    for n in (301, 302):
        await ask(n, "housing.rent", "answer", "ru")
    for n in range(201, 205):
        await ask(n, "permit.renewal", "answer", "ar")
    for n in range(401, 406):
        await ask(n, None, "out_of_scope", "fa")
    await ask(101, "greet", "conversation", "uk")  # not a question
    for n in range(101, 107):
        await storage.usage.record(
            chat(n), "prague", "uk", "housing.rent", "helpful" if n <= 104 else "unhelpful"
        )
    clock.now = WEEK2
    for n in range(101, 106):
        await ask(n, "housing.rent", "answer", "uk")
    for n in range(205, 208):
        await ask(n, "permit.renewal", "clarify", "ar")
    # Outside the period or the city.
    clock.now = dt.datetime(2026, 3, 1, 23, 59, tzinfo=UTC)
    await ask(101, "housing.rent", "answer", "uk")
    clock.now = dt.datetime(2026, 3, 16, 0, 0, tzinfo=UTC)
    await ask(101, "health.doctor", "no_content", "uk")
    clock.now = WEEK1
    for n in range(901, 908):
        await ask(n, "work.rights", "no_content", "bg", city="sofia")

    # Handoffs: six to the centre (first replies after 1…6 hours), three to legal aid (1 hour).
    async def case(
        n: int, partner: str, group: int, reply_after: int, rating: int | None, city: str = "prague"
    ) -> None:
        clock.now = CASES_AT
        opened, _ = await storage.cases.open(
            chat(n),
            city=city,
            language="uk",
            key="housing.rent",
            urgent=False,
            group_chat_id=group,
            remind_at=None,
            partner=partner,
        )
        await storage.cases.set_topic(opened.id, thread_id=5000 + n, card_message_id=6000 + n)
        clock.now = CASES_AT + dt.timedelta(hours=reply_after)
        await storage.cases.audit(opened.id, "reply", STAFF)
        if 101 <= n <= 105:  # referred on to legal aid
            clock.now += dt.timedelta(minutes=10)
            current = await storage.cases.get(opened.id)
            assert current is not None
            referred = await storage.referrals.refer(
                current,
                from_partner="centre",
                to_partner="legal",
                group_chat_id=GROUP_B,
                thread_id=7000 + n,
                card_message_id=None,
                remind_at=None,
                actor_id=STAFF,
            )
            assert referred is not None
            referral = referred[1]
            if n <= 104:
                assert await storage.referrals.answer(referral.id, chat(n), consent=n <= 103) is not None
                clock.now += dt.timedelta(minutes=10)
                assert await storage.referrals.claimed(opened.id, "legal")
        clock.now += dt.timedelta(hours=1)
        assert await storage.cases.close(opened.id, STAFF) is not None
        if rating is not None:
            assert await storage.cases.rate(opened.id, chat(n), rating)

    for hours, n in enumerate(range(101, 107), start=1):
        await case(n, "centre", GROUP_A, hours, 5)
    for n in (201, 202, 203):
        await case(n, "legal", GROUP_B, 1, 2 if n <= 202 else None)
    await case(901, "sofia", GROUP_A, 1, 1, city="sofia")  # another city


@pytest.fixture
async def seeded(url: str) -> AsyncIterator[tuple[Storage, str]]:
    clock = Clock()
    storage = Storage(url, clock=clock)
    await storage.open()
    await seed(storage, clock)
    yield storage, url
    await storage.aclose()


@pytest.fixture(scope="module")
def taxonomy() -> Taxonomy:
    return load_taxonomy(ROOT / "content")


def read(folder: Path, name: str) -> list[list[str]]:
    with (folder / f"{name}.csv").open(encoding="utf-8", newline="") as f:
        return list(csv.reader(f))


async def test_the_report_s_figures_with_small_ones_hidden(
    seeded: tuple[Storage, str], settings: Settings, taxonomy: Taxonomy, tmp_path: Path
) -> None:
    storage, _ = seeded
    settings = with_partners(settings)
    insights = await collect(storage, settings, taxonomy, "prague", START, END)
    written = write_report(insights, tmp_path / "report")
    folder = tmp_path / "report"
    assert {p.name for p in written} == {
        "index.html",
        "topics.csv",
        "questions_per_week.csv",
        "languages.csv",
        "handoffs.csv",
        "ratings.csv",
        "referrals.csv",
    }
    few = "fewer than 5"
    # Housing: 13 questions of 8 people, 6 votes of which 2 (of 2 people) 👎: hidden, and so is its
    # rate. Permits: 3 "did you mean" of 3 people. Not placed in a topic ("other"): 5 of 5 people.
    header = ["topic", "questions", "not answered", "not answered %", "did you mean", "did you mean %"]
    assert read(folder, "topics") == [
        [*header, "votes", "thumbs down", "thumbs down %"],
        ["permits", "7", "0", "0.0", few, "withheld", "0", "0", ""],
        ["housing", "13", "0", "0.0", "0", "0.0", "6", few, "withheld"],
        ["other", "5", "5", "100.0", "0", "0.0", "0", "0", ""],
        ["all topics", "25", "5", "20.0", few, "withheld", "6", few, "withheld"],
    ]
    # Permits: 4 people in week 1, 3 in week 2: both hidden; their sum (7 people) is the total.
    assert read(folder, "questions_per_week") == [
        ["week", "permits", "housing", "other"],
        ["2026-03-02", few, "8", "5"],
        ["2026-03-09", few, "5", "0"],
    ]
    # Russian: 2 people, hidden; the total minus the others would give it away, so Farsi (the
    # smallest other) is withheld too.
    assert read(folder, "languages") == [
        ["language", "questions", "share %"],
        ["ar", "7", "28.0"],
        ["fa", "withheld", "withheld"],
        ["ru", few, "withheld"],
        ["uk", "11", "44.0"],
        ["all languages", "25", ""],
    ]
    # Cases count for the partner they were routed to; legal aid's 3 are hidden, so the centre's 6
    # are withheld (the total is shown). Reply times: the centre's 1…6 hours, all nine.
    assert read(folder, "handoffs") == [
        ["partner", "cases", "first reply: median hours", "first reply: 90% within hours"],
        ["Integration Centre", "withheld", "3.5", "6.0"],
        ["Legal Aid", few, few, few],
        ["all partners", "9", "2.0", "6.0"],
    ]
    assert read(folder, "ratings") == [
        ["rating", "cases"],
        ["1", "0"],
        ["2", few],
        ["3", "0"],
        ["4", "0"],
        ["5", "withheld"],
        ["all ratings", "8"],
        ["average", "withheld"],
    ]
    assert read(folder, "referrals") == [
        ["from", "to", "made", "with consent", "claimed"],
        ["Integration Centre", "Legal Aid", "5", few, few],
        ["all", "all", "5", few, few],
    ]
    # No text people wrote, no chat id, pseudonym, group, topic, staff or case id in any file.
    since = dt.datetime.combine(START, dt.time(), UTC)
    pseudonyms = {
        str(row.pseudonym) for row in await storage.usage.rows("prague", since, since + dt.timedelta(days=14))
    }
    assert len(pseudonyms) == 20
    for path in written:
        content = path.read_text(encoding="utf-8")
        assert SECRET not in content
        assert not any(p in content for p in pseudonyms)
        for n in [*range(101, 107), 201, 202, 203, 205, 206, 207, 301, 302, *range(401, 406)]:
            assert str(chat(n)) not in content
            assert str(5000 + n) not in content and str(7000 + n) not in content
        assert str(GROUP_A) not in content and str(STAFF) not in content
        assert "C-000" not in content


async def test_with_a_smaller_k_the_same_figures_are_shown(
    seeded: tuple[Storage, str], settings: Settings, taxonomy: Taxonomy, tmp_path: Path
) -> None:
    storage, _ = seeded
    insights = await collect(storage, settings, taxonomy, "prague", START, END, k=2)
    write_report(insights, tmp_path)
    assert read(tmp_path, "questions_per_week")[1:] == [
        ["2026-03-02", "4", "8", "5"],
        ["2026-03-09", "3", "5", "0"],
    ]
    assert read(tmp_path, "languages")[2:4] == [["fa", "5", "20.0"], ["ru", "2", "8.0"]]
    # Without partners in the configuration, cases show the partner id they were stored with.
    assert [row[:2] for row in read(tmp_path, "handoffs")[1:]] == [
        ["centre", "6"],
        ["legal", "3"],
        ["all partners", "9"],
    ]
    assert read(tmp_path, "ratings")[-1] == ["average", "4.25"]


def test_a_total_never_gives_a_hidden_part_away() -> None:
    def people(*ns: int) -> frozenset[int]:
        return frozenset(ns)

    # One part of 2 people among parts of 9 and 6: the smallest other (6) is withheld with it.
    small, big, middle = (
        Cell(2, people(1, 2)),
        Cell(9, people(*range(10, 19))),
        Cell(6, people(*range(20, 26))),
    )
    total = Cell(17, small.people | big.people | middle.people)
    protect([small, big, middle, total], [Group([small, big, middle], total)], k=5)
    assert [c.state for c in (small, big, middle, total)] == [SMALL, SHOWN, WITHHELD, SHOWN]
    # Two hidden parts of 2 people each: their sum would rest on 4 < 5 people, so a third goes.
    a, b, c, d = (
        Cell(2, people(1, 2)),
        Cell(3, people(3, 4)),
        Cell(7, people(*range(10, 17))),
        Cell(8, people(*range(20, 28))),
    )
    total = Cell(20, a.people | b.people | c.people | d.people)
    protect([a, b, c, d, total], [Group([a, b, c, d], total)], k=5)
    assert [x.state for x in (a, b, c, d, total)] == [SMALL, SMALL, WITHHELD, SHOWN, SHOWN]
    # Only one other part, and it would follow from another table: the total is withheld instead.
    only, other, twin = Cell(1, people(1)), Cell(6, people(*range(10, 16))), Cell(6, people(*range(10, 16)))
    total = Cell(7, only.people | other.people)
    rest = Cell(0)
    protect([only, other, twin, total, rest], [Group([only, other], total), Group([twin, rest], other)], k=5)
    assert [x.state for x in (only, other, total)] == [SMALL, SHOWN, WITHHELD]
    # An unprinted part that follows from the printed ones counts as shown.
    asked, clarified, answered = (
        Cell(9, people(*range(9))),
        Cell(6, people(*range(6))),
        Cell(3, people(6, 7, 8), published=False),
    )
    protect([asked, clarified, answered], [Group([clarified, answered], asked)], k=5)
    assert [x.state for x in (asked, clarified)] == [SHOWN, WITHHELD]


def screenshot(page: Path, shot: Path) -> Path:
    """Open ``page`` in headless Chromium and save what it shows (1000 × 2400 pixels) as ``shot``."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("Chromium is missing: `make test` installs it (scripts/setup-chromium.sh)")
    profile = shot.parent / "chromium-profile"
    subprocess.run(
        [
            found,
            "--headless",
            "--no-sandbox",  # the tests may run as root
            "--disable-gpu",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            "--window-size=1000,2400",
            "--virtual-time-budget=10000",  # the page settles (images decoded) before the picture
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )
    shutil.rmtree(profile, ignore_errors=True)
    assert shot.exists(), "Chromium wrote no screenshot"
    return shot


async def test_the_command_writes_a_page_that_chromium_shows_with_its_charts(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'integra.db'}"
    clock = Clock()
    async with Storage(url, clock=clock) as storage:
        await seed(storage, clock)
    out = ROOT / "var" / "test-insights"
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "DATABASE_URL": url}
    result = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "bot",
            "insights",
            "--city",
            "prague",
            "--from",
            "2026-03-02",
            "--to",
            "2026-03-15",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    page = out / "index.html"
    assert str(page) in result.stdout.splitlines()
    text = page.read_text(encoding="utf-8")
    assert text.count('<img class="chart"') == 5 and "http" not in text.replace("http-equiv", "")

    shot = await asyncio.to_thread(screenshot, page, out / "screenshot.png")
    assert shot.exists(), "Chromium wrote no screenshot"
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)[:, :, :3]
    assert pixels.shape[:2] == (2400, 1000)

    def share(colour: str) -> float:
        rgb = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        close = (abs(pixels - rgb) < 0.03).all(axis=2)
        return float(close.mean())

    # The bars in the charts' colours: the first (languages), the second and third (housing and
    # "other" in the weekly chart), the fourth (not answered, in the gaps chart).
    assert share(PALETTE[0]) > 0.003
    assert share(PALETTE[1]) > 0.003
    assert share(PALETTE[2]) > 0.001
    assert share(PALETTE[3]) > 0.001
    # Without the charts (the same page, the images' data removed) those colours are not on the page.
    bare = out / "bare.html"
    bare.write_text(text.replace('src="data:image/png', 'data-src="data:image/png'), encoding="utf-8")
    bare_shot = await asyncio.to_thread(screenshot, bare, out / "bare.png")
    pixels = matplotlib.image.imread(bare_shot)[:, :, :3]
    assert share(PALETTE[0]) < 0.0005 and share(PALETTE[1]) < 0.0005


async def test_the_coverage_report_shows_the_same_gaps(
    seeded: tuple[Storage, str], settings: Settings, taxonomy: Taxonomy
) -> None:
    from bot.tools.content.command import _gaps

    _, url = seeded
    text = await gaps_markdown(seeded[0], settings, taxonomy, START, END)
    prague = text.split("## prague\n")[1].split("\n## ")[0]
    assert prague.strip().splitlines() == [
        "| topic | questions | not answered | not answered % | did you mean % |",
        "|---|---:|---:|---:|---:|",
        "| permits | 7 | 0 | 0.0 | withheld |",
        "| housing | 13 | 0 | 0.0 | 0.0 |",
        "| other | 5 | 5 | 100.0 | 0.0 |",
        "| all topics | 25 | 5 | 20.0 | withheld |",
    ]
    sofia = text.split("## sofia\n")[1].split("\n## ")[0]
    assert "| work | 7 | 7 | 100.0 | 0.0 |" in sofia.splitlines()
    assert "## kosice\n\nNo questions in this period." in text
    assert SECRET not in text and str(chat(901)) not in text
    # `content coverage` adds the section for the configured database (the last 90 days to today:
    # none of the seeded questions, which are from March 2026, unless today is close to them).
    section = await asyncio.to_thread(_gaps, settings.model_copy(update={"database_url": url}), taxonomy, 90)
    assert section.startswith("\n# Gaps people met, ") and "## prague" in section


async def test_usage_outlives_the_person_untied_and_goes_after_the_retention(
    seeded: tuple[Storage, str],
) -> None:
    from sqlalchemy import func, select

    from bot.storage._models import Usage, UsagePerson

    storage, _ = seeded
    since, until = dt.datetime(2026, 1, 1, tzinfo=UTC), dt.datetime(2027, 1, 1, tzinfo=UTC)
    before = await storage.usage.rows("prague", since, until)
    # Questions and votes only: the greeting was not kept.
    assert {r.event for r in before} == {
        "answer",
        "clarify",
        "out_of_scope",
        "no_content",
        "helpful",
        "unhelpful",
    }
    async with storage.engine.connect() as connection:
        pseudonyms = await connection.scalar(select(func.count()).select_from(UsagePerson))
    assert pseudonyms == 27  # one per person who asked or voted (20 in Prague, 7 in Sofia)
    assert await storage.forget(chat(101))
    async with storage.engine.connect() as connection:
        assert await connection.scalar(select(func.count()).select_from(UsagePerson)) == 26
        columns = await connection.run_sync(lambda sync: set(Usage.__table__.columns.keys()))
    assert columns == {"id", "city", "language", "key", "event", "pseudonym", "created_at"}
    # Their questions still count, but nothing says any more whose they were.
    assert await storage.usage.rows("prague", since, until) == before
    # The retention limit: rows from before it go.
    assert await storage.usage.purge(dt.datetime(2026, 3, 2, tzinfo=UTC)) == 1
    limit = dt.datetime(2026, 3, 2, tzinfo=UTC)
    assert await storage.usage.rows("prague", since, until) == [r for r in before if r.created_at >= limit]


def _known_cells(cells: list[Cell], groups: list[Group]) -> set[int]:
    """What a reader can work out: the shown cells, and any cell that is the one unknown of a sum."""
    known = {id(c) for c in cells if c.shown}
    while True:
        new = [
            unknown[0]
            for g in groups
            if len(unknown := [c for c in [*g.parts, g.total] if id(c) not in known]) == 1
        ]
        if not new:
            return known
        known |= {id(c) for c in new}


@settings_hypothesis(max_examples=150, deadline=None)
@given(
    table=st.lists(
        st.lists(
            st.tuples(st.frozensets(st.integers(0, 40), max_size=9), st.booleans()), min_size=1, max_size=5
        ),
        min_size=1,
        max_size=5,
    ).filter(lambda rows: len({len(r) for r in rows}) == 1),
    k=st.integers(2, 6),
)
def test_whatever_the_table_no_small_figure_can_be_worked_out(
    table: list[list[tuple[frozenset[int], bool]]], k: int
) -> None:
    # A table with row totals, column totals and a grand total, as the weekly table has; some cells
    # are not printed (like "answered"), but may still be worked out.
    grid = [[Cell(len(p), p, published=shown or not p) for p, shown in row] for row in table]
    rows = [Cell(sum(c.value for c in r), frozenset().union(*(c.people for c in r))) for r in grid]
    columns = [
        Cell(sum(r[j].value for r in grid), frozenset().union(*(r[j].people for r in grid)))
        for j in range(len(grid[0]))
    ]
    grand = Cell(sum(c.value for c in rows), frozenset().union(*(c.people for c in rows)))
    groups = [Group(r, t) for r, t in zip(grid, rows, strict=True)]
    groups += [Group([r[j] for r in grid], columns[j]) for j in range(len(columns))]
    groups += [Group(rows, grand), Group(columns, grand)]
    cells = [*(c for r in grid for c in r), *rows, *columns, grand]
    protect(cells, groups, k)
    known = _known_cells(cells, groups)
    for cell in cells:
        if id(cell) in known:
            assert not 0 < len(cell.people) < k
    for group in groups:
        if id(group.total) in known:
            hidden = frozenset().union(*(c.people for c in group.parts if id(c) not in known))
            assert not 0 < len(hidden) < k
    for cell in cells:
        if cell.published and 0 < len(cell.people) < k:
            assert cell.state == SMALL
