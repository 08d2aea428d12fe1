"""The tables of docs/benchmarks.md as charts: docs/benchmarks/*.png and a "Charts" section.

Rerunnable after `make bench`: it reads whatever tables the file holds now, draws each
numeric column (a number with a unit: ms, s, MB, %, or a ratio like 0.17x) as horizontal
bars labelled by the first column, and rewrites the section between the CHARTS markers at
the end of the file (added the first time), leaving the rest of the file as it was.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure

from docs.pictures.boxes import save

import matplotlib.pyplot as plt  # isort: skip (boxes chose the backend)

DOCS = Path(__file__).resolve().parents[1]
DEFAULT_MARKDOWN = DOCS / "benchmarks.md"
CHARTS_BEGIN = "<!-- charts: drawn by `make pictures` (docs/pictures/benchmarks.py) -->"
CHARTS_END = "<!-- end of charts -->"
_VALUE = re.compile(r"^([0-9][0-9,]*(?:\.[0-9]+)?)\s*(ms|s|MB|GB|%|x)?$")
_COLOURS = ("#1565c0", "#ef6c00", "#2e7d32", "#6a1b9a")


@dataclass
class Table:
    section: str
    header: list[str]
    rows: list[list[str]]
    caption: str = ""  # the line above the table that introduces it ("Ours by ...:")


def _clean(cell: str) -> str:
    text = cell.replace("&nbsp;", " ").replace("`", "").replace("**", "").strip()
    return re.sub(r"\s+", " ", text)


def read_tables(markdown: str) -> list[Table]:
    """Every pipe table, with the `## ` heading above it (Summary before the first)."""
    tables: list[Table] = []
    section = "Summary"
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("## "):
            section = line[3:].strip()
        if line.startswith("|") and i + 1 < len(lines) and re.match(r"^\|[-| :]+\|$", lines[i + 1]):
            start = i
            header = [_clean(c) for c in line.strip("|").split("|")]
            rows = []
            i += 2
            while i < len(lines) and lines[i].startswith("|"):
                rows.append(lines[i].strip().strip("|").split("|"))
                i += 1
            above = [x.strip() for x in lines[max(0, start - 2) : start] if x.strip()]
            caption = above[-1].rstrip(":") if above and above[-1].endswith(":") else ""
            tables.append(Table(section, header, rows, _clean(caption)))
            continue
        i += 1
    return tables


def parse_value(cell: str) -> tuple[float, str] | None:
    """`32.1 ms` -> (32.1, "ms"), `0.17x` -> (0.17, "x"), `1,000` -> (1000, ""); else None."""
    found = _VALUE.match(_clean(cell))
    if found is None:
        return None
    return float(found.group(1).replace(",", "")), found.group(2) or ""


def numeric_columns(table: Table) -> tuple[str, list[int]]:
    """The unit shared by the most columns with at least two values in it, and those columns."""
    units: dict[int, str] = {}
    for column in range(1, len(table.header)):
        values = [parse_value(r[column]) for r in table.rows if column < len(r)]
        found = Counter(v[1] for v in values if v is not None)
        if found and found.most_common(1)[0][1] >= 2 and len(found) == 1:
            units[column] = found.most_common(1)[0][0]
    if not units:
        return "", []
    # A unit beats bare numbers (counts): 66 MB is the figure, 1,000 events its condition.
    ranked = Counter(units.values()).most_common()
    unit = next((u for u, _ in ranked if u), ranked[0][0])
    return unit, [c for c, u in units.items() if u == unit]


def title(table: Table) -> str:
    """The chart's title: its section, what it shows, and by what (two tables of one section
    showing the same figure differ by their first column)."""
    _, columns = numeric_columns(table)
    if table.caption:
        return f"{table.section}: {table.caption}"
    shown = ", ".join(table.header[c] for c in columns)
    return f"{table.section}: {shown} by {table.header[0] or 'row'}"


def x_scale(values: list[float]) -> str:
    """Log only when every value is above zero and they span more than 50x: a log axis
    cannot show a zero, and its row would look empty."""
    finite = [v for v in values if not math.isnan(v)]
    if not finite or min(finite) <= 0:
        return "linear"
    return "log" if max(finite) / min(finite) > 50 else "linear"


def chart(table: Table, heading: str | None = None) -> Figure | None:
    """One horizontal bar chart of the table's numeric columns; None if it has none."""
    unit, columns = numeric_columns(table)
    rows = []
    for row in table.rows:
        values = [parse_value(row[c]) if c < len(row) else None for c in columns]
        if any(v is not None for v in values):
            rows.append((_clean(row[0]) or "(all)", [v[0] if v else math.nan for v in values]))
    if len(rows) < 2:
        return None
    names = [name for name, _ in rows]
    if len(set(names)) < len(names):  # e.g. "process" at 1,000 and at 10,000 events
        others = [c for c in range(1, len(table.header)) if c not in columns]
        kept = [r for r in table.rows if any(parse_value(r[c]) for c in columns if c < len(r))]
        rows = [
            (f"{name}, {_clean(row[others[0]])} {table.header[others[0]]}" if others else name, v)
            for (name, v), row in zip(rows, kept, strict=True)
        ]
    figure, axes = plt.subplots(figsize=(9, 0.45 * len(rows) * max(1, len(columns) * 0.7) + 1.6))
    height = 0.8 / len(columns)
    for n, column in enumerate(columns):
        ys = [i + n * height for i in range(len(rows))]
        heights = [r[1][n] for r in rows]
        bars = axes.barh(
            ys,
            heights,
            height=height,
            color=_COLOURS[n % len(_COLOURS)],
            label=table.header[column],
        )
        axes.bar_label(bars, labels=[_label(v, unit) for v in heights], fontsize=7, padding=2)
    axes.set_yticks([i + height * (len(columns) - 1) / 2 for i in range(len(rows))])
    axes.set_yticklabels([name[:60] for name, _ in rows], fontsize=8)
    axes.invert_yaxis()
    scale = x_scale([v for _, vs in rows for v in vs])
    axes.set_xscale(scale)
    if scale == "linear":
        axes.set_xlim(0, max(v for _, vs in rows for v in vs if not math.isnan(v)) * 1.18 or 1)
    else:
        low, high = axes.get_xlim()
        axes.set_xlim(low, high * 3)  # room for the bars' labels
    if unit == "x":
        axes.axvline(1.0, color="#37474f", linewidth=0.8, linestyle="--")
    axes.set_xlabel({"x": "ours / baseline (lower is better)", "%": "share (%)"}.get(unit, unit))
    if len(columns) > 1:  # above the bars, never over them
        axes.legend(
            fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=4, frameon=False
        )
    axes.set_title(heading or title(table), fontsize=10, pad=22 if len(columns) > 1 else 6)
    figure.tight_layout()
    return figure


def draw_table(table: Table, path: Path, heading: str | None = None) -> Path | None:
    figure = chart(table, heading)
    if figure is None:
        return None
    try:
        return save(figure, path)
    finally:
        plt.close(figure)


def _label(value: float, unit: str) -> str:
    if math.isnan(value):
        return ""
    text = f"{value:g}"
    return f"{text}{unit}" if unit in ("x", "%") else f"{text} {unit}".strip()


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40]


def draw(markdown: Path = DEFAULT_MARKDOWN, out_dir: Path | None = None) -> list[Path]:
    """Draw every chartable table of `markdown` and point to them from its Charts section."""
    out_dir = out_dir or markdown.parent / "benchmarks"
    text = markdown.read_text(encoding="utf-8")
    before = text.split(CHARTS_BEGIN)[0].rstrip() + "\n"
    drawn: list[tuple[str, Path]] = []
    seen: Counter[str] = Counter()
    for n, table in enumerate(read_tables(before), start=1):
        heading = title(table)
        seen[heading] += 1
        if seen[heading] > 1:  # the same figure by the same rows: say which table
            heading += f" (table {seen[heading]} of its section)"
        path = draw_table(table, out_dir / f"{n:02d}-{_slug(table.section)}.png", heading)
        if path is not None:
            drawn.append((heading, path))
    links = [f"![{h}]({p.relative_to(markdown.parent).as_posix()})" for h, p in drawn]
    section = [
        "",
        CHARTS_BEGIN,
        "## Charts",
        "",
        "The tables above as bars (`make pictures` draws them again from the tables).",
        "",
        *[f"{link}\n" for link in links],
        CHARTS_END,
        "",
    ]
    markdown.write_text(before + "\n".join(section), encoding="utf-8")
    return [p for _, p in drawn]


if __name__ == "__main__":
    for written in draw():
        print(written)
