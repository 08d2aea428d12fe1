"""`auth0-sync demo --plot FILE`: the demo's timeline as a PNG (matplotlib, optional).

Imported only when --plot is given, so the demo itself needs no plotting library. The input
is `demo.Timeline.to_dict()`: plain lists, so a test can draw a small made-up timeline.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt  # after the backend is chosen

# Outcome statuses in the order they are stacked, with their colour and legend.
STATUSES = (
    ("applied", "#2e7d32", "applied"),
    ("skipped", "#9e9e9e", "skipped"),
    ("failed", "#c62828", "dead-lettered"),
)
# The replay blue, the outage amber, any other fault window (the 429s) magenta: the 429s were
# orange, which at this transparency read as the outage's yellow (teal as the replay's blue).
WINDOW_COLOURS = {"replay": "#1565c0", "503 outage": "#f9a825"}
FAULT_COLOUR = "#ad1457"
DLQ_COLOUR = "#6a1b9a"
WINDOW_ALPHA = 0.3


def _per_second(deliveries: list[list[Any]], end: float) -> dict[str, list[int]]:
    """Events per one-second bin, by status."""
    bins = max(1, math.ceil(end))
    counts: dict[str, list[int]] = {status: [0] * bins for status, _, _ in STATUSES}
    for seconds, status, *_ in deliveries:
        row = counts.get("failed" if status not in counts else status)
        if row is not None:
            row[min(int(seconds), bins - 1)] += 1
    return counts


def time_axis_end(timeline: dict[str, Any]) -> float:
    """Where the shared time axis ends: after the last delivery, window (the replay comes
    last) and DLQ sample."""
    return max(
        [1.0]
        + [float(t) for t, *_ in timeline.get("deliveries", [])]
        + [float(b) for _, _, b in timeline.get("windows", [])]
        + [float(t) for t, _ in timeline.get("dlq_depth", [])]
    )


def draw_timeline(timeline: dict[str, Any], path: str | Path) -> Path:
    """Two panels sharing the time axis: events per second (stacked by outcome) and the
    DLQ's depth; the rate-limit, outage and replay windows shaded on both."""
    deliveries = timeline.get("deliveries", [])
    windows = timeline.get("windows", [])
    depth = timeline.get("dlq_depth", [])
    end = time_axis_end(timeline)
    counts = _per_second(deliveries, end)
    figure, (events, dlq) = plt.subplots(
        2, 1, sharex=True, figsize=(10, 5.5), height_ratios=(3, 2), layout="constrained"
    )
    try:
        seconds = list(range(len(counts["applied"])))
        bottom = [0] * len(seconds)
        for status, colour, label in STATUSES:
            values = counts[status]
            events.bar(
                seconds, values, width=1.0, align="edge", bottom=bottom, color=colour, label=label
            )
            bottom = [a + b for a, b in zip(bottom, values, strict=True)]
        if depth:
            dlq.step([t for t, _ in depth], [n for _, n in depth], where="post", color=DLQ_COLOUR)
            dlq.fill_between(
                [t for t, _ in depth],
                [n for _, n in depth],
                step="post",
                alpha=0.2,
                color=DLQ_COLOUR,
            )
        labelled: set[str] = set()
        for label, start, stop in windows:
            colour = WINDOW_COLOURS.get(label, FAULT_COLOUR)
            # Each window once in the legend (narrow windows' own labels would overlap).
            legend = None if label in labelled else label
            labelled.add(label)
            events.axvspan(start, stop, color=colour, alpha=WINDOW_ALPHA, linewidth=0, label=legend)
            dlq.axvspan(start, stop, color=colour, alpha=WINDOW_ALPHA, linewidth=0)
        events.set_ylabel("events per second")
        # Above the plot, in one row: inside it would cover the busiest seconds.
        events.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=6, fontsize=8)
        events.set_title("auth0-sync demo: delivery, CRM faults, DLQ and replay", pad=24)
        dlq.set_ylabel("messages in the DLQ")
        dlq.set_xlabel("seconds since the demo started")
        dlq.set_xlim(0, end)
        dlq.set_ylim(bottom=0)
        target = Path(path)
        figure.savefig(target, dpi=110)
    finally:
        plt.close(figure)
    return target
