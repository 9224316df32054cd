"""k-anonymity for the insights report: hide every figure that rests on fewer than k people, and
whatever would let someone work a hidden figure out from the ones shown.

A figure is a ``Cell``: a value and the set of people (internal numbers, never shown) it rests on. Cells
that add up are tied by a ``Group``: ``parts`` add up to ``total`` (the topics add up to all
questions, the weeks to a topic's total, answered plus not answered to the questions…). A part that is
not printed but follows from the others (``published=False``) is a cell too: a reader could compute it.

``protect`` hides (``SMALL``) each printed cell resting on 1 to k-1 people, then, until nothing more can
be learnt, withholds further cells (``WITHHELD``, the smallest first, else the total):

- a cell that a reader can compute from a group whose other cells are known counts as shown;
- in a group whose total is known, the hidden parts' sum is known: it must rest on at least k people.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = ["SHOWN", "SMALL", "WITHHELD", "Cell", "Group", "protect"]

SHOWN, SMALL, WITHHELD = "shown", "small", "withheld"


@dataclass(eq=False)
class Cell:
    """One figure: ``value``, the people it rests on, and whether it may be shown."""

    value: float
    people: frozenset[int] = frozenset()
    published: bool = True
    state: str = SHOWN
    name: str = field(default="", repr=True)

    @property
    def shown(self) -> bool:
        return self.published and self.state == SHOWN


@dataclass(frozen=True)
class Group:
    """``parts`` add up to ``total``."""

    parts: Sequence[Cell]
    total: Cell

    @property
    def cells(self) -> list[Cell]:
        return [*self.parts, self.total]


def count(items: Iterable[int], name: str = "", *, published: bool = True) -> Cell:
    """A count cell: how many items (one per row), resting on the distinct people given."""
    people = list(items)
    return Cell(len(people), frozenset(people), published, name=name)


def _known(
    cells: Iterable[Cell], groups: Sequence[Group], k: int
) -> tuple[set[int], list[tuple[Cell, Group]]]:
    """The cells a reader knows (by ``id``): the shown ones and what follows from them; and each cell
    resting on 1 to k-1 people that follows, with the group it follows from."""
    known = {id(c) for c in cells if c.shown}
    leaks = []
    grew = True
    while grew:
        grew = False
        for group in groups:
            unknown = [c for c in group.cells if id(c) not in known]
            if len(unknown) == 1:
                known.add(id(unknown[0]))
                grew = True
                if 0 < len(unknown[0].people) < k:
                    leaks.append((unknown[0], group))
    return known, leaks


def _withhold_in(
    group: Group, every: Sequence[Cell], groups: Sequence[Group], k: int, spare: Cell | None = None
) -> None:
    """Withhold one more shown cell of ``group``: of its parts resting on someone, the smallest that
    then cannot be worked out from other figures, else the total, else the smallest part; when the
    group has no shown cell left, the smallest shown cell of the whole report."""
    shown = [c for c in group.parts if c.shown and c is not spare and c.people]
    shown.sort(key=lambda c: (c.value, len(c.people)))
    for pick in [*shown, group.total]:
        if not pick.shown:
            continue
        pick.state = WITHHELD
        if id(pick) not in _known(every, groups, k)[0]:
            return
        pick.state = SHOWN
    fallback = shown or [c for c in group.cells if c.shown]
    if not fallback:
        fallback = sorted((c for c in every if c.shown and c.people), key=lambda c: (c.value, len(c.people)))
    if not fallback:
        raise AssertionError("a hidden figure follows from others, and nothing is left to withhold")
    fallback[0].state = WITHHELD


def protect(cells: Sequence[Cell], groups: Sequence[Group], k: int) -> None:
    """Mark cells ``SMALL`` (fewer than ``k`` people) or ``WITHHELD`` (would give a small one away)."""
    for cell in cells:
        if cell.published and 0 < len(cell.people) < k:
            cell.state = SMALL
    every = list({id(c): c for c in [*cells, *(c for g in groups for c in g.cells)]}.values())
    for _ in range(len(every) + 1):
        known, leaks = _known(every, groups, k)
        if leaks:
            leaked, via = leaks[0]
            _withhold_in(via, every, groups, k, spare=leaked)
            continue
        for group in groups:
            if id(group.total) not in known:
                continue
            hidden = [c for c in group.parts if id(c) not in known and c.people]
            people = frozenset().union(*(c.people for c in hidden))
            if 0 < len(people) < k:
                _withhold_in(group, every, groups, k)
                break
        else:
            return
    raise AssertionError("suppression did not settle")
