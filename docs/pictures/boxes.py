"""Boxes and arrows on a matplotlib canvas: what the architecture and DLQ diagrams share."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt  # after the backend is chosen
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

# One colour per kind of part, the same in every diagram.
COLOURS = {
    "auth0": "#eb5424",
    "aws": "#ff9900",
    "lambda": "#e07b00",
    "store": "#3b48cc",
    "queue": "#c7254e",
    "crm": "#2e7d32",
    "person": "#546e7a",
    "state": "#455a64",
}


@dataclass(frozen=True)
class Box:
    """A labelled box: centre (x, y), size (w, h), in the canvas' units."""

    x: float
    y: float
    w: float
    h: float
    text: str
    kind: str = "aws"

    def edge(self, side: str) -> tuple[float, float]:
        """The middle of one side: left, right, top or bottom."""
        return {
            "left": (self.x - self.w / 2, self.y),
            "right": (self.x + self.w / 2, self.y),
            "top": (self.x, self.y + self.h / 2),
            "bottom": (self.x, self.y - self.h / 2),
        }[side]


def canvas(width: float, height: float, scale: float = 1.0) -> tuple[Figure, Axes]:
    """A blank canvas `width` x `height` units, no axes drawn."""
    figure, axes = plt.subplots(figsize=(width * scale, height * scale))
    axes.set_xlim(0, width)
    axes.set_ylim(0, height)
    axes.set_aspect("equal")
    axes.axis("off")
    return figure, axes


def box(axes: Axes, item: Box, *, fontsize: float = 9) -> Box:
    colour = COLOURS.get(item.kind, "#607d8b")
    axes.add_patch(
        FancyBboxPatch(
            (item.x - item.w / 2, item.y - item.h / 2),
            item.w,
            item.h,
            boxstyle="round,pad=0.02,rounding_size=0.12",
            facecolor=colour + "22",
            edgecolor=colour,
            linewidth=1.6,
        )
    )
    axes.text(item.x, item.y, item.text, ha="center", va="center", fontsize=fontsize, wrap=True)
    return item


def arrow(
    axes: Axes,
    start: tuple[float, float],
    end: tuple[float, float],
    label: str = "",
    *,
    colour: str = "#37474f",
    dashed: bool = False,
    bend: float = 0.0,
    fontsize: float = 8,
    label_at: float = 0.5,
    linewidth: float = 1.3,
    linestyle: str | None = None,
) -> None:
    axes.add_patch(
        FancyArrowPatch(
            start,
            end,
            arrowstyle="-|>",
            mutation_scale=12,
            color=colour,
            linewidth=linewidth,
            linestyle=linestyle or ("--" if dashed else "-"),
            connectionstyle=f"arc3,rad={bend}",
            shrinkA=2,
            shrinkB=2,
        )
    )
    if label:
        x = start[0] + (end[0] - start[0]) * label_at
        y = start[1] + (end[1] - start[1]) * label_at
        axes.text(
            x,
            y,
            label,
            ha="center",
            va="center",
            fontsize=fontsize,
            color=colour,
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 1.0},
        )


def save(figure: Figure, path: str | Path) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        figure.savefig(target, dpi=120, bbox_inches="tight", facecolor="white")
    finally:
        plt.close(figure)
    return target


def text_overlaps(figure: Figure, tolerance: float = 1.0) -> list[tuple[str, str]]:
    """Pairs of texts (and legends) whose drawn extents overlap, in pixels, as the saved
    picture lays them out: each pair by its texts."""
    figure.canvas.draw()  # lays the texts out (Agg renderer)
    renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
    items: list[tuple[str, Any]] = []
    for axes in figure.axes:
        for text in [*axes.texts, axes.title]:
            if text.get_visible() and text.get_text().strip():
                items.append((text.get_text(), text.get_window_extent(renderer)))
        legend = axes.get_legend()
        if legend is not None:
            items.append(("(legend)", legend.get_window_extent(renderer)))
    found = []
    for n, (name_a, a) in enumerate(items):
        for name_b, b in items[n + 1 :]:
            width = min(a.x1, b.x1) - max(a.x0, b.x0)
            height = min(a.y1, b.y1) - max(a.y0, b.y0)
            if width > tolerance and height > tolerance:
                found.append((name_a, name_b))
    return found
