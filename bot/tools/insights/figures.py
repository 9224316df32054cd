"""The figures of a city's insights report, from what the storage holds, with k-anonymity applied.

Every figure is a ``Cell`` (see ``suppress``); tables hold cells, rates (a share of two cells) and
times (a median or 90th percentile). Nothing here holds a text, a chat id or a case number: the only
link to people is the set of internal numbers each cell rests on, used to count them and then dropped.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ...storage import QUESTION_EVENTS, HandoffRow, ReferralRow, UsageRow
from .suppress import SMALL, Cell, Group, count, protect

__all__ = ["OTHER", "Insights", "Rate", "Table", "Time", "build", "render_value", "week_of"]

# The topic of a question the model could not place in any topic.
OTHER = "other"
NOT_ANSWERED = ("out_of_scope", "no_content")


@dataclass(eq=False)
class Rate:
    """``part`` as a share of ``whole``: shown only when both are (else it would give them away)."""

    part: Cell
    whole: Cell

    @property
    def shown(self) -> bool:
        return self.part.shown and self.whole.shown and self.whole.value > 0

    @property
    def percent(self) -> float:
        return 100 * self.part.value / self.whole.value


@dataclass(eq=False)
class Time:
    """Hours from one event to another, as a median or 90th percentile over several cases; shown when
    those cases are of k people or more."""

    hours: list[float]
    people: frozenset[int]
    quantile: float
    k: int

    @property
    def shown(self) -> bool:
        return bool(self.hours) and len(self.people) >= self.k

    @property
    def small(self) -> bool:
        return bool(self.hours) and len(self.people) < self.k

    @property
    def value(self) -> float:
        if self.quantile == 0.5:
            return statistics.median(self.hours)
        # Nearest rank: the smallest time that at least this share of the cases did not exceed.
        ordered = sorted(self.hours)
        return ordered[max(0, math.ceil(self.quantile * len(ordered)) - 1)]


Value = Cell | Rate | Time | str


@dataclass
class Table:
    """One table of the report, written as one CSV file."""

    name: str
    title: str
    columns: list[str]
    rows: list[list[Value]] = field(default_factory=list)


@dataclass
class Insights:
    """All tables of a report, and what the charts need."""

    city: str
    start: dt.date
    end: dt.date  # inclusive
    k: int
    tables: dict[str, Table]
    topics: list[str]
    weeks: list[dt.date]


def render_value(value: Value, k: int) -> str:
    """How a figure is written in the CSV files and the HTML: hidden ones in words, never as 0."""
    if isinstance(value, str):
        return value
    if isinstance(value, Cell):
        if value.state == SMALL:
            return f"fewer than {k}"
        if not value.shown:
            return "withheld"
        return f"{value.value:g}" if value.value != int(value.value) else str(int(value.value))
    if isinstance(value, Rate):
        if value.whole.shown and value.whole.value == 0:
            return ""
        return f"{value.percent:.1f}" if value.shown else "withheld"
    if value.small:
        return f"fewer than {k}"
    return f"{value.value:.1f}" if value.shown else ""


def week_of(day: dt.date) -> dt.date:
    """The Monday of ``day``'s week."""
    return day - dt.timedelta(days=day.weekday())


def _cells(rows: Sequence[UsageRow], name: str, *, published: bool = True) -> Cell:
    return count((r.pseudonym for r in rows), name, published=published)


def build(
    city: str,
    start: dt.date,
    end: dt.date,
    *,
    usage: Sequence[UsageRow],
    handoffs: Sequence[HandoffRow],
    referrals: Sequence[ReferralRow],
    topic_of: Callable[[str | None], str | None],
    topic_order: Sequence[str],
    partner_name: Callable[[str | None], str],
    k: int = 5,
) -> Insights:
    """The report's tables for ``city`` from ``start`` to ``end`` (both days included)."""
    questions = [r for r in usage if r.event in QUESTION_EVENTS]
    votes = [r for r in usage if r.event in ("helpful", "unhelpful")]
    cells: list[Cell] = []
    groups: list[Group] = []

    def topic(row: UsageRow) -> str:
        return topic_of(row.key) or OTHER

    topics = [t for t in [*topic_order, OTHER] if any(topic(r) == t for r in [*questions, *votes])]
    weeks = []
    week = week_of(start)
    while week <= end:
        weeks.append(week)
        week += dt.timedelta(days=7)

    # Per topic: questions, not answered, "did you mean", votes and 👎 (thumbs down).
    columns = {
        "questions": lambda r: r.event in QUESTION_EVENTS,
        "not answered": lambda r: r.event in NOT_ANSWERED,
        "did you mean": lambda r: r.event == "clarify",
        "answered": lambda r: r.event in ("answer", "unavailable"),
        "votes": lambda r: r.event in ("helpful", "unhelpful"),
        "👍": lambda r: r.event == "helpful",
        "👎": lambda r: r.event == "unhelpful",
    }
    printed = {"questions", "not answered", "did you mean", "votes", "👎"}
    grid: dict[tuple[str, str], Cell] = {}
    for row_name in [*topics, "all topics"]:
        rows = [r for r in usage if row_name == "all topics" or topic(r) == row_name]
        for column, test in columns.items():
            cell = _cells([r for r in rows if test(r)], f"{row_name}/{column}", published=column in printed)
            grid[(row_name, column)] = cell
            cells.append(cell)
    for row_name in [*topics, "all topics"]:
        parts = ("not answered", "did you mean", "answered")
        groups.append(Group([grid[(row_name, c)] for c in parts], grid[(row_name, "questions")]))
        groups.append(Group([grid[(row_name, c)] for c in ("👍", "👎")], grid[(row_name, "votes")]))
    for column in columns:
        groups.append(Group([grid[(t, column)] for t in topics], grid[("all topics", column)]))
    topic_table = Table(
        "topics",
        "Questions, answers and votes per topic",
        [
            "topic",
            "questions",
            "not answered",
            "not answered %",
            "did you mean",
            "did you mean %",
            "votes",
            "thumbs down",
            "thumbs down %",
        ],
    )
    for row_name in [*topics, "all topics"]:
        g = {c: grid[(row_name, c)] for c in columns}
        topic_table.rows.append(
            [
                row_name,
                g["questions"],
                g["not answered"],
                Rate(g["not answered"], g["questions"]),
                g["did you mean"],
                Rate(g["did you mean"], g["questions"]),
                g["votes"],
                g["👎"],
                Rate(g["👎"], g["votes"]),
            ]
        )

    # Questions per topic per week: each topic's weeks add up to its total. A week's total is not
    # printed (with the topics' totals it would make every small cell need a whole rectangle hidden),
    # but a reader could add up a week whose cells are all shown: it is a cell too.
    weekly = Table("questions_per_week", "Questions per topic per week", ["week", *topics])
    week_totals = []
    by_cell: dict[tuple[dt.date, str], Cell] = {}
    for week in weeks:
        in_week = [r for r in questions if week_of(r.created_at.date()) == week]
        row: list[Value] = [week.isoformat()]
        for t in topics:
            cell = _cells([r for r in in_week if topic(r) == t], f"{week}/{t}")
            by_cell[(week, t)] = cell
            cells.append(cell)
            row.append(cell)
        total = _cells(in_week, f"{week}/all", published=False)
        cells.append(total)
        week_totals.append(total)
        groups.append(Group([by_cell[(week, t)] for t in topics], total))
        weekly.rows.append(row)
    for t in topics:
        groups.append(Group([by_cell[(w, t)] for w in weeks], grid[(t, "questions")]))
    groups.append(Group(week_totals, grid[("all topics", "questions")]))

    # Languages of the questions.
    languages = Table("languages", "Questions per language", ["language", "questions", "share %"])
    lang_cells = []
    for lang in sorted({r.language for r in questions}):
        cell = _cells([r for r in questions if r.language == lang], f"lang/{lang}")
        cells.append(cell)
        lang_cells.append(cell)
        languages.rows.append([lang, cell, Rate(cell, grid[("all topics", "questions")])])
    groups.append(Group(lang_cells, grid[("all topics", "questions")]))
    languages.rows.append(["all languages", grid[("all topics", "questions")], ""])

    # Handoffs to a person, per partner organisation; time to the first staff reply.
    handoff_table = Table(
        "handoffs",
        "Conversations handed to a person, per partner organisation",
        ["partner", "cases", "first reply: median hours", "first reply: 90% within hours"],
    )
    partner_cells = []
    partners = sorted({partner_name(h.partner) for h in handoffs})

    def times(rows: Sequence[HandoffRow], quantile: float) -> Time:
        answered = [h for h in rows if h.first_reply_at is not None]
        hours = [(h.first_reply_at - h.created_at).total_seconds() / 3600 for h in answered]  # type: ignore[operator]
        return Time(hours, frozenset(h.person for h in answered), quantile, k)

    for name in [*partners, "all partners"]:
        rows_h = [h for h in handoffs if name == "all partners" or partner_name(h.partner) == name]
        cell = count((h.person for h in rows_h), f"handoffs/{name}")
        cells.append(cell)
        if name != "all partners":
            partner_cells.append(cell)
        handoff_table.rows.append([name, cell, times(rows_h, 0.5), times(rows_h, 0.9)])
    groups.append(Group(partner_cells, handoff_table.rows[-1][1]))  # type: ignore[arg-type]

    # Ratings people gave at the end of a case.
    rated = [h for h in handoffs if h.rating is not None]
    rating_table = Table("ratings", "Ratings at the end of a conversation with a person", ["rating", "cases"])
    rating_cells = []
    for stars in range(1, 6):
        cell = count((h.person for h in rated if h.rating == stars), f"rating/{stars}")
        cells.append(cell)
        rating_cells.append(cell)
        rating_table.rows.append([str(stars), cell])
    rated_total = count((h.person for h in rated), "rating/all")
    cells.append(rated_total)
    groups.append(Group(rating_cells, rated_total))
    rating_table.rows.append(["all ratings", rated_total])

    # Referrals between partners: made, with the person's consent, claimed by the other partner.
    referral_table = Table(
        "referrals",
        "Referrals between partner organisations",
        ["from", "to", "made", "with consent", "claimed"],
    )
    pairs = sorted({(partner_name(r.from_partner), partner_name(r.to_partner)) for r in referrals})
    referral_columns = {
        "made": lambda r: True,
        "with consent": lambda r: r.consent is True,
        "no consent": lambda r: r.consent is not True,
        "claimed": lambda r: r.claimed_at is not None,
        "unclaimed": lambda r: r.claimed_at is None,
    }
    by_pair: dict[tuple[str, str] | None, dict[str, Cell]] = defaultdict(dict)
    for pair in [*pairs, None]:
        rows_r = [
            r
            for r in referrals
            if pair is None or (partner_name(r.from_partner), partner_name(r.to_partner)) == pair
        ]
        for column, test in referral_columns.items():
            published = column in ("made", "with consent", "claimed")
            cell = count(
                (r.person for r in rows_r if test(r)), f"referral/{pair}/{column}", published=published
            )
            cells.append(cell)
            by_pair[pair][column] = cell
        c = by_pair[pair]
        groups.append(Group([c["with consent"], c["no consent"]], c["made"]))
        groups.append(Group([c["claimed"], c["unclaimed"]], c["made"]))
        label = ["all", "all"] if pair is None else list(pair)
        referral_table.rows.append([*label, c["made"], c["with consent"], c["claimed"]])
    for column in referral_columns:
        groups.append(Group([by_pair[p][column] for p in pairs], by_pair[None][column]))

    protect(cells, groups, k)
    # The average rating is shown only when every rating's count is: with it and the total, a hidden
    # count could be worked out.
    if all(c.shown for c in [*rating_cells, rated_total]) and rated:
        average = sum(h.rating or 0 for h in rated) / len(rated)
        rating_table.rows.append(["average", f"{average:.2f}"])
    else:
        rating_table.rows.append(["average", "withheld" if rated else ""])
    tables = [topic_table, weekly, languages, handoff_table, rating_table, referral_table]
    return Insights(city, start, end, k, {t.name: t for t in tables}, topics, weeks)
