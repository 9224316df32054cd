"""The insights report as files: one CSV per table and a self-contained HTML page (charts embedded as
PNG data, no links to anything outside the file)."""

from __future__ import annotations

import base64
import csv
import html
import io
from pathlib import Path
from typing import Any

from .figures import OTHER, Cell, Insights, Rate, Table, Time, render_value

__all__ = ["PALETTE", "write_csv", "write_html", "write_report"]

# The charts' colours (one per topic, in order; the first also for single-series charts).
PALETTE = ["#1b6ca8", "#e07b00", "#2a9d4b", "#c2262e", "#7b4fa8", "#8c564b", "#d4459c", "#5f6b73"]


def write_csv(table: Table, folder: Path, k: int) -> Path:
    path = folder / f"{table.name}.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(table.columns)
        for row in table.rows:
            writer.writerow([render_value(value, k) for value in row])
    return path


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _shown(value: Any) -> float | None:
    if isinstance(value, Cell | Rate | Time) and value.shown:
        return value.percent if isinstance(value, Rate) else float(value.value)
    return None


def _charts(insights: Insights) -> list[tuple[str, str]]:
    """(title, base64 PNG) of each chart. Hidden figures are left out of the charts, never drawn as 0."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "axes.spines.top": False, "axes.spines.right": False})
    charts = []
    tables = insights.tables

    def empty(ax: Any) -> None:
        ax.text(
            0.5,
            0.5,
            "Nothing to show: no such figure, or all are hidden to protect people",
            ha="center",
            va="center",
            transform=ax.transAxes,
        )
        ax.set_axis_off()

    # Questions per week, stacked by topic.
    fig, ax = plt.subplots(figsize=(9, 3.6))
    weekly = tables["questions_per_week"]
    labels = [str(row[0]) for row in weekly.rows]
    bottom = [0.0] * len(labels)
    drawn = False
    for i, topic in enumerate(insights.topics):
        heights = [_shown(row[1 + i]) or 0.0 for row in weekly.rows]
        if any(heights):
            ax.bar(labels, heights, bottom=bottom, color=PALETTE[i % len(PALETTE)], label=topic)
            bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
            drawn = True
    if drawn:
        ax.set_ylabel("questions")
        ax.legend(ncol=4, fontsize=8, frameon=False)
        ax.tick_params(axis="x", rotation=45)
        if any(isinstance(v, Cell) and v.value and not v.shown for row in weekly.rows for v in row):
            note = "Hidden figures are left out: some weeks' bars are lower than all their questions."
            fig.text(0.01, 0.01, note, fontsize=8, color="#4a5258")
    else:
        empty(ax)
    fig.tight_layout()
    charts.append(("Questions per topic per week", _png(fig)))
    plt.close(fig)

    # Not answered, "did you mean" and 👎, as % per topic.
    topics_table = tables["topics"]
    fig, ax = plt.subplots(figsize=(9, 3.6))
    names = [str(row[0]) for row in topics_table.rows]
    series = [("not answered", 3), ("did you mean", 5), ("unhelpful (thumbs down)", 8)]
    width = 0.27
    drawn = False
    for j, (label, column) in enumerate(series):
        values = [_shown(row[column]) for row in topics_table.rows]
        xs = [i + (j - 1) * width for i, v in enumerate(values) if v is not None]
        ys = [v for v in values if v is not None]
        if ys:
            ax.bar(xs, ys, width=width, color=PALETTE[j + 3], label=label)
            drawn = True
    if drawn:
        ax.set_xticks(range(len(names)), names, rotation=30)
        ax.set_ylabel("% of questions / of votes")
        ax.legend(fontsize=8, frameon=False)
    else:
        empty(ax)
    fig.tight_layout()
    charts.append(("Gaps: not answered, “did you mean” and thumbs down per topic (%)", _png(fig)))
    plt.close(fig)

    # Languages, handoffs per partner, ratings: one bar chart each.
    for title, name, label_column, value_column in (
        ("Questions per language", "languages", 0, 1),
        ("Conversations handed to a person, per partner", "handoffs", 0, 1),
        ("Ratings (1 to 5)", "ratings", 0, 1),
    ):
        table = tables[name]
        rows = [row for row in table.rows if not str(row[label_column]).startswith(("all", "average"))]
        found = [(str(row[label_column]), _shown(row[value_column])) for row in rows]
        pairs = [(label, value) for label, value in found if value is not None]
        fig, ax = plt.subplots(figsize=(9, 2.6))
        if any(p[1] for p in pairs):
            ax.bar([p[0] for p in pairs], [p[1] for p in pairs], color=PALETTE[0])
            ax.set_ylim(bottom=0)
        else:
            empty(ax)
        fig.tight_layout()
        charts.append((title, _png(fig)))
        plt.close(fig)
    return charts


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #1d2327; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; margin-top: 2em; }
table { border-collapse: collapse; margin: .5em 0 1.5em; font-size: .9em; }
th, td { border: 1px solid #c9cfd4; padding: .25em .6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
td.hidden { color: #6b747c; font-style: italic; }
img { max-width: 100%; display: block; margin: .5em 0 1em; }
.note { background: #f2f5f7; padding: .8em 1em; border-left: 4px solid #9aa5ad; }
"""


def _table_html(table: Table, k: int) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    rows = []
    for row in table.rows:
        cells = []
        for value in row:
            text = render_value(value, k)
            hidden = text in (f"fewer than {k}", "withheld")
            cells.append(
                f'<td class="hidden">{html.escape(text)}</td>' if hidden else f"<td>{html.escape(text)}</td>"
            )
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def write_html(insights: Insights, path: Path) -> Path:
    k = insights.k
    period = f"{insights.start.isoformat()} to {insights.end.isoformat()}"
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>City insights: {html.escape(insights.city)}, {period}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>City insights: {html.escape(insights.city.capitalize())}</h1>",
        f"<p>Questions people asked the assistant and conversations handed to partner organisations, "
        f"{period} (UTC). Weeks start on Monday.</p>",
        f'<p class="note">To protect the people behind the figures, a figure that rests on fewer than {k} '
        f"different people is not shown (“fewer than {k}”), and where such a figure could be worked out "
        f"from the others (for example a total minus the parts shown), one more figure is held back too "
        f"(“withheld”). Charts leave hidden figures out. The report holds no messages, names or ids.</p>",
    ]
    for title, data in _charts(insights):
        parts.append(f"<h2>{html.escape(title)}</h2>")
        parts.append(f'<img class="chart" alt="{html.escape(title)}" src="data:image/png;base64,{data}">')
    parts.append("<h2>Tables</h2>")
    parts.append(
        f"<p>The same tables are in the CSV files next to this page. “{OTHER}”: questions the "
        "assistant could not place in any topic.</p>"
    )
    for table in insights.tables.values():
        parts.append(f"<h3>{html.escape(table.title)}</h3>")
        parts.append(_table_html(table, k))
    parts.append("</body></html>")
    path.write_text("\n".join(parts) + "\n", encoding="utf-8")
    return path


def write_report(insights: Insights, folder: Path) -> list[Path]:
    """``index.html`` and one CSV per table in ``folder``; the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = [write_csv(table, folder, insights.k) for table in insights.tables.values()]
    return [write_html(insights, folder / "index.html"), *written]
