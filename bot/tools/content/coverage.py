"""``content coverage``: city × key × language, missing / unchecked / stale / checked, as Markdown
and a PNG heat map; and, from the database, the gaps people met (unanswered rates per topic)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from pathlib import Path

from ...knowledge import Entry, KnowledgeBase, Taxonomy
from ...settings import Settings
from ...storage import Storage
from .checks import age_in_words

__all__ = [
    "CHECKED",
    "MISSING",
    "STALE",
    "UNCHECKED",
    "coverage_markdown",
    "coverage_matrix",
    "coverage_png",
    "gaps_markdown",
]

# --- coverage --------------------------------------------------------------------------------------

MISSING, UNCHECKED, STALE, CHECKED = "missing", "unchecked", "stale", "checked"


def _review_state(entry: Entry, max_age: dt.timedelta, today: dt.date) -> str:
    if entry.checked is None:
        return UNCHECKED
    return STALE if today - entry.checked.on > max_age else CHECKED


def coverage_matrix(
    settings: Settings, kb: KnowledgeBase, today: dt.date | None = None
) -> dict[tuple[str, str, str], str]:
    """(city, key, language) → missing | unchecked | stale (checked too long ago) | checked."""
    today = today or dt.date.today()
    max_age = dt.timedelta(days=settings.content.max_review_age_days)
    matrix = {}
    for city in settings.cities:
        for key in kb.taxonomy.content_keys:
            found = kb.entry(city, key)
            for lang in settings.languages:
                if found is None or lang not in found[0].answer:
                    matrix[(city, key, lang)] = MISSING
                else:
                    matrix[(city, key, lang)] = _review_state(found[0], max_age, today)
    return matrix


def coverage_markdown(settings: Settings, kb: KnowledgeBase, today: dt.date | None = None) -> str:
    matrix = coverage_matrix(settings, kb, today)
    mark = {CHECKED: "✅", UNCHECKED: "📝", STALE: "⏰", MISSING: "❌"}
    age = age_in_words(settings.content.max_review_age_days)
    lines = [
        "# Knowledge base coverage",
        "",
        f"✅ checked by a partner · 📝 not yet checked · ⏰ check older than {age} · ❌ missing",
        "",
    ]
    totals: dict[str, int] = defaultdict(int)
    for value in matrix.values():
        totals[value] += 1
    n = len(matrix)
    lines.append(
        f"{n} answers needed ({len(settings.cities)} cities × {len(kb.taxonomy.content_keys)} keys × "
        f"{len(settings.languages)} languages): {totals[CHECKED]} checked by a partner, "
        f"{totals[UNCHECKED]} not yet checked, {totals[STALE]} checked more than {age} ago, "
        f"{totals[MISSING]} missing."
    )
    for city in settings.cities:
        done = sum(1 for (c, _, _), v in matrix.items() if c == city and v != MISSING)
        checked = sum(1 for (c, _, _), v in matrix.items() if c == city and v == CHECKED)
        per_city = len(kb.taxonomy.content_keys) * len(settings.languages)
        lines += ["", f"## {city} ({done}/{per_city} written, {checked}/{per_city} checked)", ""]
        lines.append("| key | " + " | ".join(settings.languages) + " |")
        lines.append("|---|" + "---|" * len(settings.languages))
        for key in kb.taxonomy.content_keys:
            cells = [mark[matrix[(city, key, lang)]] for lang in settings.languages]
            lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def coverage_png(settings: Settings, kb: KnowledgeBase, path: Path, today: dt.date | None = None) -> Path:
    """A heat map: keys down, city × language across; coloured by missing / unchecked / stale / checked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    matrix = coverage_matrix(settings, kb, today)
    keys = kb.taxonomy.content_keys
    columns = [(city, lang) for city in settings.cities for lang in settings.languages]
    value = {MISSING: 0, UNCHECKED: 1, STALE: 2, CHECKED: 3}
    grid = [[value[matrix[(city, key, lang)]] for city, lang in columns] for key in keys]
    fig, ax = plt.subplots(figsize=(max(8, len(columns) * 0.28 + 3), len(keys) * 0.3 + 2.5))
    colours = ListedColormap(["#d73027", "#fee08b", "#fc8d59", "#1a9850"])
    ax.imshow(grid, cmap=colours, vmin=0, vmax=3, aspect="auto")
    ax.set_yticks(range(len(keys)), keys, fontsize=8)
    ax.set_xticks(range(len(columns)), [lang for _, lang in columns], fontsize=7, rotation=90)
    for i, city in enumerate(settings.cities):
        start = i * len(settings.languages)
        ax.axvline(start - 0.5, color="white", linewidth=3)
        ax.text(start + len(settings.languages) / 2 - 0.5, -1.2, city, ha="center", fontsize=9, weight="bold")
    age = age_in_words(settings.content.max_review_age_days)
    ax.set_title(
        "Knowledge base coverage\ngreen: checked by a partner · yellow: not yet checked · "
        f"orange: check older than {age} · red: missing",
        pad=30,
        fontsize=10,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# --- gaps people met (from the database) -----------------------------------------------------------


async def gaps_markdown(
    storage: Storage, settings: Settings, taxonomy: Taxonomy, start: dt.date, end: dt.date, k: int = 5
) -> str:
    """What people asked that the content could not answer, per city and topic, as the insights report
    counts it (rates only, no text; figures resting on fewer than ``k`` people hidden)."""
    from ..insights import collect
    from ..insights.figures import render_value

    lines = [
        "",
        f"# Gaps people met, {start.isoformat()} to {end.isoformat()}",
        "",
        "Questions the content could not answer (not answered: no answer for the city, or not understood) "
        "and “did you mean” replies, per topic, from the database. A figure resting on fewer than "
        f"{k} people is hidden, as in `python -m bot insights`.",
    ]
    for city in settings.cities:
        insights = await collect(storage, settings, taxonomy, city, start, end, k)
        table = insights.tables["topics"]
        lines += ["", f"## {city}", ""]
        if len(table.rows) == 1:
            lines.append("No questions in this period.")
            continue
        columns = ["topic", "questions", "not answered", "not answered %", "did you mean %"]
        at = [table.columns.index(c) for c in columns]
        lines.append("| " + " | ".join(columns) + " |")
        lines.append("|---|" + "---:|" * (len(columns) - 1))
        for row in table.rows:
            lines.append("| " + " | ".join(render_value(row[i], k) for i in at) + " |")
    return "\n".join(lines) + "\n"
