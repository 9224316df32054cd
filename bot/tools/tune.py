"""``python -m bot tune``: choose the emergency thresholds on the development set, not the evaluation set.

``content/dev/`` holds messages written apart from both the training examples and the realistic
evaluation set (``content/realistic/``), in the same styles, for one purpose: choosing the
thresholds in ``config.yml`` that decide when the emergency numbers are shown first. Choosing them
on the evaluation set would make its figures say little; choosing them on the training examples
would pick thresholds the model is over-sure about.

The tool asks the model once per message and replays the engine's own rule
(:meth:`bot.engine.Engine.urgency`) for every combination of thresholds. It chooses **recall
first**: among the combinations that flag the most development emergencies, the lowest thresholds
(the most room for emergencies worded unlike any seen) among those within ``FALSE_ALARM_TOLERANCE``
of the fewest false alarms. It prints the figures and the lines to put in ``config.yml``; it
changes nothing itself.

It also chooses the two settings used while the model cannot be asked (``bot/lexical.py``): how many
nearest examples by their words, and which share of them must be emergency situations — the most
development emergencies with no more false alarms than the model's own chosen thresholds raise.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from nlu import Classification

from ..engine import EMERGENCY, Reply
from ..lexical import Nearest
from ..runtime import Services
from ..settings import NLUSettings, load_settings
from .realistic import Item, load_realistic

__all__ = [
    "Caution",
    "Choice",
    "Scored",
    "add_parser",
    "choose",
    "choose_caution",
    "choose_words",
    "evaluate_words",
    "grid",
]

# The thresholds the tool moves, and the values it tries for each.
GRID: dict[str, tuple[float, ...]] = {
    "emergency_detector_threshold": tuple(round(0.25 + 0.05 * i, 2) for i in range(14)),  # 0.25-0.90
    "emergency_threshold": (0.2, 0.3, 0.4, 0.5, 0.6),
    "emergency_sentence_confidence": (0.5, 0.6, 0.7, 0.8, 0.9),
}


# Without the model (bot/lexical.py): how many nearest examples by their words, and which share of
# their similarity must be emergency situations'.
WORDS_GRID: dict[str, tuple[float, ...]] = {
    "degraded_emergency_neighbours": (3, 5, 7, 10, 15, 20),
    "degraded_emergency_share": (0.1, 0.2, 0.3, 0.4, 0.5),
}


# Below the alarm: the caution line (the emergency number and a person) ends a reply that is not an
# answer when the message comes this near an alarm (``Engine.concern``). The lowest value whose line
# reaches at most CAUTION_BUDGET of the other development messages the alarm left alone (a line on
# a distressing one is no harm: most of those that get it are). The lines a "danger over" phrase
# gives (an alarm it held back) come at every value, so they are reported but not counted against
# the budget: the budget is what the threshold adds.
CAUTION_GRID: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(1, 20))  # 0.05-0.95
CAUTION_BUDGET = 0.10


@dataclass(frozen=True)
class Scored:
    """One development message and what the model said about it."""

    item: Item
    result: Classification
    signal: bool
    over: bool = False  # a "danger over" phrase in the text (Engine.urgency)

    @property
    def is_emergency(self) -> bool:
        return self.item.style == "emergency"

    @property
    def counts_for_false_alarms(self) -> bool:
        # Questions *about* emergency help ("what is the ambulance number") are neither.
        return not self.is_emergency and self.item.key != EMERGENCY


@dataclass(frozen=True)
class Choice:
    thresholds: dict[str, float]
    caught: int
    emergencies: int
    false_alarms: int
    others: int
    missed: tuple[Item, ...] = ()
    alarms: tuple[tuple[Item, str], ...] = ()  # and what raised each

    @property
    def recall(self) -> float:
        return self.caught / self.emergencies if self.emergencies else 1.0

    @property
    def false_alarm_rate(self) -> float:
        return self.false_alarms / self.others if self.others else 0.0


def grid(base: NLUSettings, values: dict[str, Sequence[float]] | None = None) -> list[NLUSettings]:
    """Every combination of the thresholds in ``values`` (default ``GRID``), other settings as ``base``."""
    chosen: dict[str, Sequence[float]] = dict(values or GRID)
    names = list(chosen)
    return [
        base.model_copy(update=dict(zip(names, combination, strict=True)))
        for combination in itertools.product(*(chosen[name] for name in names))
    ]


def _count(
    scored: Sequence[Scored], thresholds: dict[str, float], flagged: Callable[[Scored], str | None]
) -> Choice:
    """Recall and false alarms of one rule: ``flagged`` says why a message raises the alarm (or None)."""
    missed = tuple(s.item for s in scored if s.is_emergency and flagged(s) is None)
    raised = ((s.item, flagged(s)) for s in scored if s.counts_for_false_alarms)
    alarms = tuple((item, reason) for item, reason in raised if reason is not None)
    emergencies = sum(s.is_emergency for s in scored)
    return Choice(
        thresholds=thresholds,
        caught=emergencies - len(missed),
        emergencies=emergencies,
        false_alarms=len(alarms),
        others=sum(s.counts_for_false_alarms for s in scored),
        missed=missed,
        alarms=alarms,
    )


def evaluate(
    scored: Sequence[Scored], nlu: NLUSettings, urgency: Any, names: Sequence[str] = tuple(GRID)
) -> Choice:
    """Recall and false alarms of one combination; ``urgency(result, signal, nlu, over)`` is the
    engine's rule."""
    thresholds = {name: getattr(nlu, name) for name in names}
    return _count(scored, thresholds, lambda s: urgency(s.result, s.signal, nlu, s.over))


def evaluate_words(
    scored: Sequence[Scored], nearest: dict[str, Nearest], neighbours: int, share: float
) -> Choice:
    """Recall and false alarms without the model: a danger signal, or at least ``share`` of the
    similarity of the ``neighbours`` nearest examples (``nearest``: per text, closest first) is
    emergency situations'."""

    def flagged(s: Scored) -> str | None:
        if s.signal:
            return "signal"
        return "words" if nearest[s.item.text].share(EMERGENCY, neighbours) >= share else None

    thresholds = {"degraded_emergency_neighbours": neighbours, "degraded_emergency_share": share}
    return _count(scored, thresholds, flagged)


def choose_words(choices: Sequence[Choice], budget: int) -> Choice:
    """Without the model: the most emergencies with no more than ``budget`` false alarms (the model's
    own on the same messages), then the fewest false alarms, then the higher share and fewer
    neighbours."""
    if not choices:
        raise ValueError("nothing to choose from")
    within = [c for c in choices if c.false_alarms <= budget] or [min(choices, key=lambda c: c.false_alarms)]
    return min(
        within,
        key=lambda c: (
            -c.caught,
            c.false_alarms,
            -c.thresholds["degraded_emergency_share"],
            c.thresholds["degraded_emergency_neighbours"],
        ),
    )


@dataclass(frozen=True)
class Caution:
    threshold: float
    covered: int  # emergencies the alarm missed that get the caution line
    missed: int
    cautioned: int  # other messages, not alarmed, that get it
    quiet: int
    held_back: int = 0  # of ``cautioned``, those that get it at any threshold (a "danger over" phrase)

    @property
    def rate(self) -> float:
        """The share of the other messages that get the line from this threshold."""
        return (self.cautioned - self.held_back) / self.quiet if self.quiet else 0.0


def choose_caution(
    scored: Sequence[Scored],
    nlu: NLUSettings,
    decide: Callable[..., Reply],
    city: str,
    budget: float = CAUTION_BUDGET,
) -> tuple[Caution, list[Caution]]:
    """With the alarm thresholds of ``nlu``: the lowest caution threshold whose line reaches at most
    ``budget`` of the other messages the alarm leaves alone (and every threshold tried).
    ``decide(result, city, language, None, signal, nlu=…, over=…)`` is the engine's own rule."""

    def replies(threshold: float) -> list[tuple[Scored, Reply]]:
        trial = nlu.model_copy(update={"emergency_caution_threshold": threshold})
        return [
            (s, decide(s.result, city, s.item.language, None, s.signal, nlu=trial, over=s.over))
            for s in scored
        ]

    # Lines at a threshold no message reaches: those a "danger over" phrase gives.
    held_back = sum(r.caution for s, r in replies(1.0) if s.counts_for_false_alarms and not r.urgent)
    tried = []
    for threshold in CAUTION_GRID:
        answered = replies(threshold)
        missed = [r for s, r in answered if s.is_emergency and not r.urgent]
        quiet = [r for s, r in answered if s.counts_for_false_alarms and not r.urgent]
        tried.append(
            Caution(
                threshold,
                sum(r.caution for r in missed),
                len(missed),
                sum(r.caution for r in quiet),
                len(quiet),
                held_back,
            )
        )
    within = [c for c in tried if c.rate <= budget] or [tried[-1]]
    return min(within, key=lambda c: c.threshold), tried


# Two settings whose false alarms on the development set differ by at most this share of its other
# messages (0.5 %: three of 673) are not told apart: that is one writer's wording more or less, not a
# property of the thresholds. Among such, the lowest thresholds win, as they leave the most room for
# emergencies worded unlike any seen. (With the seventh safety round a detector threshold of 0.45 won
# over 0.25 by one development message; docs/nlu.md.)
FALSE_ALARM_TOLERANCE = 0.005


def choose(choices: Sequence[Choice], tolerance: float = FALSE_ALARM_TOLERANCE) -> Choice:
    """Recall first; then, among the settings within ``tolerance`` (a share of the other messages) of
    the fewest false alarms, the lowest thresholds; then the fewest false alarms."""
    if not choices:
        raise ValueError("nothing to choose from")
    most = max(c.caught for c in choices)
    best = [c for c in choices if c.caught == most]
    fewest = min(c.false_alarms for c in best)
    slack = int(tolerance * max(c.others for c in best) + 1e-9)
    near = [c for c in best if c.false_alarms <= fewest + slack]
    return min(near, key=lambda c: (sum(c.thresholds.values()), c.false_alarms))


async def score(services: Services, items: Sequence[Item], concurrency: int = 4) -> list[Scored]:
    limit = asyncio.Semaphore(concurrency)
    signals = services.kb.safety.signals

    async def one(item: Item) -> Scored:
        async with limit:
            result = await services.nlu.classify(item.text)
        return Scored(item, result, signals.find(item.text) is not None, signals.over(item.text) is not None)

    return list(await asyncio.gather(*(one(item) for item in items)))


def _row(label: str, choice: Choice, values: str | None = None) -> str:
    if values is None:
        values = " | ".join(
            f"{v:.2f}" if isinstance(v, float) else str(v) for v in choice.thresholds.values()
        )
    return (
        f"| {label} | {values} | {choice.caught}/{choice.emergencies} ({choice.recall:.1%}) "
        f"| {choice.false_alarms}/{choice.others} ({choice.false_alarm_rate:.1%}) |"
    )


def frontier(choices: Sequence[Choice], levels: int = 4) -> list[Choice]:
    """The fewest false alarms at each of the highest recall levels: what one emergency more costs."""
    best: dict[int, Choice] = {}
    for choice in sorted(choices, key=lambda c: (c.false_alarms, sum(c.thresholds.values()))):
        best.setdefault(choice.caught, choice)
    return [best[caught] for caught in sorted(best, reverse=True)[:levels]]


def markdown(current: Choice, chosen: Choice, sweep: Sequence[Choice], trade: Sequence[Choice] = ()) -> str:
    names = list(chosen.thresholds)
    lines = [
        f"| | {' | '.join(names)} | emergencies flagged | false alarms |",
        "|---|" + "---:|" * len(names) + "---:|---:|",
        _row("config.yml now", current),
        _row("**chosen**", chosen),
        "",
        "The emergency detector's threshold alone, the others as chosen:",
        "",
        f"| | {' | '.join(names)} | emergencies flagged | false alarms |",
        "|---|" + "---:|" * len(names) + "---:|---:|",
        *(_row("", choice) for choice in sweep),
    ]
    if trade:
        lines += ["", "Fewest false alarms at each recall level:", ""]
        lines += [f"| {' | '.join(names)} | emergencies flagged | false alarms |"]
        lines += ["|" + "---:|" * (len(names) + 2)]
        lines += [_row("", choice).removeprefix("|  ") for choice in trade]
    if chosen.alarms:
        reasons = Counter(reason for _item, reason in chosen.alarms)
        lines += [
            "",
            "False alarms by what raised them: " + ", ".join(f"{r} {n}" for r, n in reasons.most_common()),
        ]
        styles = Counter(item.style for item, _reason in chosen.alarms)
        lines += ["By style: " + ", ".join(f"{s} {n}" for s, n in styles.most_common())]
    if chosen.missed:
        lines += ["", "Development emergencies still missed:", ""]
        lines += [f"- [{item.language}] {item.text}" for item in chosen.missed]
    lines += ["", "In config.yml (nlu:):", ""]
    lines += [f"    {name}: {value}" for name, value in chosen.thresholds.items()]
    return "\n".join(lines)


async def _tune(args: argparse.Namespace) -> int:
    settings = load_settings()
    folder = settings.path(settings.content_dir) / "dev"
    items = load_realistic(folder, args.lang or settings.languages)
    if not items:
        print(f"No development messages in {folder}.", file=sys.stderr)
        return 1
    async with Services(settings) as services:
        scored = await score(services, items)
        urgency = services.engine.urgency
        decide = services.engine.decide
        lexical = services.engine.lexical
    current = evaluate(scored, settings.nlu, urgency)
    choices = [evaluate(scored, nlu, urgency) for nlu in grid(settings.nlu)]
    chosen = choose(choices)
    others = {k: v for k, v in chosen.thresholds.items() if k != "emergency_detector_threshold"}
    sweep = [c for c in choices if {k: c.thresholds[k] for k in others} == others]
    print(f"## Emergency thresholds on the development set ({len(items)} messages, content/dev/)\n")
    print(markdown(current, chosen, sweep, frontier(choices)))
    if args.alarms:
        print("\nFalse alarms (chosen thresholds):\n")
        print("\n".join(f"- [{i.language} {i.style} {reason}] {i.text}" for i, reason in chosen.alarms))
    alarm = settings.nlu.model_copy(update=chosen.thresholds)
    caution, tried = choose_caution(scored, alarm, decide, settings.cities[0])
    print(
        f"\n## Below the alarm: the caution line\n\nWith the chosen thresholds, the lowest "
        f"`emergency_caution_threshold` whose line (on replies that are not an answer) reaches at most "
        f"{CAUTION_BUDGET:.0%} of the other messages the alarm leaves alone. The {caution.held_back} "
        f"lines a 'danger over' phrase gives (an alarm it held back) come at every threshold and do "
        f"not count against that share.\n"
    )
    print(
        "| emergency_caution_threshold | missed emergencies with the line "
        "| other messages with it | from the threshold |"
    )
    print("|---:|---:|---:|---:|")
    for c in tried:
        mark = "**" if c == caution else ""
        print(
            f"| {mark}{c.threshold}{mark} | {c.covered}/{c.missed} | {c.cautioned}/{c.quiet} "
            f"| {c.cautioned - c.held_back} ({c.rate:.1%}) |"
        )
    print(f"\nIn config.yml (nlu:):\n\n    emergency_caution_threshold: {caution.threshold}")
    # Without the model: its false alarms on these messages are the budget.
    most = int(max(WORDS_GRID["degraded_emergency_neighbours"]))
    nearest = {s.item.text: lexical.neighbours(s.item.text, most) for s in scored}
    words = [
        evaluate_words(scored, nearest, int(k), share) for k, share in itertools.product(*WORDS_GRID.values())
    ]
    now = evaluate_words(
        scored, nearest, settings.nlu.degraded_emergency_neighbours, settings.nlu.degraded_emergency_share
    )
    picked = choose_words(words, chosen.false_alarms)
    signals = evaluate_words(scored, nearest, 1, 2.0)  # no share reaches 2: the danger signals alone
    names = list(WORDS_GRID)
    print("\n## Without the model (NLU server down): danger signals and the nearest examples\n")
    print(f"The most emergencies with at most the model's own {chosen.false_alarms} false alarms.\n")
    print(f"| | {' | '.join(names)} | emergencies flagged | false alarms |")
    print("|---|" + "---:|" * len(names) + "---:|---:|")
    print(_row("danger signals alone", signals, " | ".join("–" for _ in names)))
    print(_row("config.yml now", now))
    print(_row("**chosen**", picked))
    print("\nIn config.yml (nlu:):\n")
    print("\n".join(f"    {name}: {value}" for name, value in picked.thresholds.items()))
    return 0


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "tune", help="choose the emergency thresholds on the development set (content/dev/)"
    )
    parser.add_argument("--lang", action="append", help="only this language (repeatable)")
    parser.add_argument("--alarms", action="store_true", help="also list every false alarm")
    parser.set_defaults(func=_tune)
