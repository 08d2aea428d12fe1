"""docs/dashboard.png: the CloudWatch dashboard the stack deploys, as an operator sees it
during the demo's story.

It reads the `AWS::CloudWatch::Dashboard` resource of the synthesized template (the stack
built in this process, bundling and cdk-nag skipped: only the template's dashboard body is
used), lays its widgets out by their x, y, width and height on CloudWatch's 24-column grid,
and draws each metric widget's graph from a demo run (`auth0-sync demo`, a smaller stream):
the handlers' own metrics (applied, skipped and dead-lettered by reason, CRM calls) counted
from the demo's outcomes with the handlers' mapping (`lambda_app.publish`), the DLQ's depth
as the demo sampled it, events and invocations per event type. What only AWS measures
(durations, throttles, concurrency, the redrive's metrics) is marked so, not invented.
"""

from __future__ import annotations

import io
import json
import math
import re
import textwrap
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.patches import Rectangle

from auth0_sync.names import METRIC_REASON_DIMENSION, METRICS_NAMESPACE, Metric
from docs.pictures.boxes import save

import matplotlib.pyplot as plt  # isort: skip (boxes chose the backend)

DEFAULT_PATH = Path(__file__).resolve().parents[1] / "dashboard.png"
GRID_COLUMNS = 24  # CloudWatch's dashboard grid
ROW_UNITS = 0.5  # a grid row is about half a column tall on screen
MAX_LINES = 6
# The demo's stream for the picture: smaller than `make demo`'s, the same story.
DEMO_USERS = 60
# One point per this many seconds of the demo (its retries run on a minute-per-second clock,
# so a bin is CloudWatch's usual period, compressed).
BIN_SECONDS = 2.0
SCALE = 0.7  # inches per grid column
TITLE_UNITS = 0.9
NOT_MEASURED = "measured by AWS only: no data in a local run"
Series = list[tuple[str, list[float], list[float]]]  # (label, x, y)
# A CDK logical id ends in 8 hex digits of hash.
_HASH = re.compile(r"[0-9A-F]{8}$")


def _placeholder(token: Any) -> str:
    """A CloudFormation function inside the body as readable text (no quotes in it)."""
    if isinstance(token, dict):
        if "Ref" in token:
            return f"${{{token['Ref']}}}"
        if "Fn::GetAtt" in token:
            resource, attribute = token["Fn::GetAtt"]
            return f"${{{resource}.{attribute}}}"
    return "${?}"


def dashboard_body(template: dict[str, Any]) -> dict[str, Any]:
    """The dashboard's JSON body from a template: `Fn::Join` resolved, tokens as ${...}."""
    dashboards = [
        r
        for r in template.get("Resources", {}).values()
        if r["Type"] == "AWS::CloudWatch::Dashboard"
    ]
    if len(dashboards) != 1:
        raise ValueError(f"expected one AWS::CloudWatch::Dashboard, found {len(dashboards)}")
    body = dashboards[0]["Properties"]["DashboardBody"]
    if isinstance(body, dict) and "Fn::Join" in body:
        separator, parts = body["Fn::Join"]
        body = separator.join(p if isinstance(p, str) else _placeholder(p) for p in parts)
    result: dict[str, Any] = json.loads(body)
    return result


def _alarm_name(arn: str) -> str:
    """`${ObservabilityDeadLetterQueueNotEmpty2F3C9311.Arn}` -> DeadLetterQueueNotEmpty."""
    name = arn.removeprefix("${").split(".")[0]
    name = _HASH.sub("", name)
    for prefix in ("Observability", "Redrive", "StreamHealth"):
        name = name.removeprefix(prefix) or name
    return name


def _metric_line(metric: list[Any]) -> str:
    options = metric[-1] if metric and isinstance(metric[-1], dict) else {}
    if "expression" in options:
        return options.get("label") or str(options["expression"])
    names = [m for m in metric if isinstance(m, str)]
    what = f"{names[0]} {names[1]}" if len(names) >= 2 else " ".join(names)
    label = options.get("label")
    stat = options.get("stat")
    return f"{label or what}" + (f" ({stat})" if stat and not label else "")


def widget_lines(widget: dict[str, Any], *, wide: bool = False) -> list[str]:
    """What a widget shows, one line each (the metrics' labels, the alarms' names...); a
    wide widget packs several to a line."""
    properties = widget.get("properties", {})
    kind = widget.get("type")
    if kind == "alarm":
        lines = [_alarm_name(a) for a in properties.get("alarms", [])]
    elif kind == "metric":
        lines = list(dict.fromkeys(_metric_line(m) for m in properties.get("metrics", [])))
    elif kind == "text":
        lines = [line for line in str(properties.get("markdown", "")).splitlines() if line]
    elif kind == "log":
        lines = [str(properties.get("query", "")).split("|")[0].strip()]
    else:
        lines = [str(kind)]
    if wide and len(lines) > MAX_LINES:
        width = int(widget.get("width", GRID_COLUMNS) * 8)
        lines = textwrap.wrap("  ·  ".join(lines), width)
    if len(lines) > MAX_LINES:
        lines = [*lines[: MAX_LINES - 1], f"... and {len(lines) - MAX_LINES + 1} more"]
    return lines


def _binned(points: list[tuple[float, float]], end: float, *, peak: bool = False) -> Any:
    """Points (seconds, value) summed (or their peak) per BIN_SECONDS, every bin present."""
    bins = max(1, math.ceil(end / BIN_SECONDS))
    values = [0.0] * bins
    for t, v in points:
        n = min(int(t / BIN_SECONDS), bins - 1)
        values[n] = max(values[n], v) if peak else values[n] + v
    return [n * BIN_SECONDS for n in range(bins)], values


def _applied_metric(reason: str) -> str | None:
    from auth0_sync.lambda_app import APPLIED_METRICS
    from auth0_sync.outcome import Applied

    try:
        return str(APPLIED_METRICS[Applied(reason)])
    except ValueError:
        return None


def metric_points(metric: list[Any], timeline: dict[str, Any]) -> list[tuple[float, float]] | None:
    """The data points a demo run gives one metric of a widget; None: not measured locally."""
    options = metric[-1] if metric and isinstance(metric[-1], dict) else {}
    names = [m for m in metric if isinstance(m, str)]
    if len(names) < 2:
        return None
    namespace, name = names[0], names[1]
    dimensions = dict(zip(names[2::2], names[3::2], strict=False))
    deliveries = [tuple(d) + (None,) * (5 - len(d)) for d in timeline.get("deliveries", [])]
    if namespace == METRICS_NAMESPACE:
        reason = dimensions.get(METRIC_REASON_DIMENSION)
        if name == Metric.CRM_CALLS:
            return [(t, float(calls or 0)) for t, _, _, _, calls in deliveries]
        if name in (Metric.EVENT_SKIPPED, Metric.EVENT_DEAD_LETTERED):
            status = "skipped" if name == Metric.EVENT_SKIPPED else "dead_lettered"
            return [(t, 1.0) for t, st, why, _, _ in deliveries if st == status and why == reason]
        applied = [(t, why) for t, st, why, _, _ in deliveries if st == "applied"]
        if name in {str(m) for m in Metric}:
            return [(t, 1.0) for t, why in applied if _applied_metric(str(why)) == name]
        return None
    label = options.get("label")
    if (namespace, name) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible"):
        return [(float(t), float(n)) for t, n in timeline.get("dlq_depth", [])]
    if (namespace, name) == ("AWS/Events", "Events"):
        return [(t, 1.0) for t, *_ in deliveries]
    if (namespace, name) in (("AWS/Lambda", "Invocations"), ("AWS/Events", "MatchedEvents")):
        return [(t, 1.0) for t, _, _, kind, _ in deliveries if kind == label]
    return None


def _search_series(expression: str, timeline: dict[str, Any], end: float) -> Series | None:
    """A SEARCH over the reason dimension: one line per reason the demo counted."""
    for name, status in (
        (Metric.EVENT_DEAD_LETTERED, "dead_lettered"),
        (Metric.EVENT_SKIPPED, "skipped"),
    ):
        if f'MetricName="{name}"' in expression:
            reasons: dict[str, list[tuple[float, float]]] = {}
            for t, st, why, *_ in timeline.get("deliveries", []):
                if st == status:
                    reasons.setdefault(str(why), []).append((t, 1.0))
            return [(why, *_binned(points, end)) for why, points in sorted(reasons.items())]
    return None


def widget_series(widget: dict[str, Any], timeline: dict[str, Any], end: float) -> Series | None:
    """The lines a metric widget shows for the demo run; None when AWS alone measures them."""
    found: Series = []
    measured = False
    for metric in widget.get("properties", {}).get("metrics", []):
        options = metric[-1] if metric and isinstance(metric[-1], dict) else {}
        if "expression" in options:
            lines = _search_series(str(options["expression"]), timeline, end)
            if lines is not None:
                measured = True
                found.extend(lines)
            continue
        points = metric_points(metric, timeline)
        if points is None:
            continue
        measured = True
        peak = metric[1] == "ApproximateNumberOfMessagesVisible"
        found.append((_metric_line(metric), *_binned(points, end, peak=peak)))
    return found if measured else None


def _graph(axes: Axes, lines: Series) -> None:
    for label, xs, ys in lines:
        axes.plot(xs, ys, linewidth=1.1, label=label)
    axes.set_ylim(bottom=0)
    axes.tick_params(labelsize=6, length=2, pad=1)
    axes.grid(alpha=0.3, linewidth=0.5)
    if lines:
        axes.legend(
            fontsize=6, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False, ncol=1
        )
    else:
        axes.text(0.5, 0.5, "no data points", fontsize=7, ha="center", transform=axes.transAxes)


def draw_body(
    body: dict[str, Any], timeline: dict[str, Any], path: str | Path = DEFAULT_PATH
) -> Path:
    widgets = body.get("widgets", [])
    rows = max([1] + [w["y"] + w["height"] for w in widgets])
    height = rows * ROW_UNITS
    top = TITLE_UNITS + height
    # One axes over the whole figure, units = grid columns, y growing downwards as in
    # CloudWatch: a widget's graph is placed in figure fractions from its grid position.
    figure = plt.figure(figsize=(GRID_COLUMNS * SCALE, top * SCALE))
    axes = figure.add_axes((0.0, 0.0, 1.0, 1.0))
    axes.set_xlim(0, GRID_COLUMNS)
    axes.set_ylim(height, -TITLE_UNITS)
    axes.axis("off")
    end = max(
        [1.0]
        + [float(d[0]) for d in timeline.get("deliveries", [])]
        + [float(t) for t, _ in timeline.get("dlq_depth", [])]
    )
    for widget in widgets:
        x, y = widget["x"], widget["y"] * ROW_UNITS
        w, h = widget["width"], widget["height"] * ROW_UNITS
        kind = widget.get("type")
        colour = "#c62828" if kind == "alarm" else "#1565c0"
        axes.add_patch(
            Rectangle(
                (x + 0.1, y + 0.05),
                w - 0.2,
                h - 0.1,
                facecolor=colour + "08",
                edgecolor=colour,
                linewidth=1.0,
            )
        )
        title = widget.get("properties", {}).get("title", kind or "")
        axes.text(x + 0.35, y + 0.3, title, fontsize=8, fontweight="bold", va="top", ha="left")
        lines = widget_series(widget, timeline, end) if kind == "metric" else None
        if lines is not None:
            # The graph's place in figure fractions (the canvas is the whole figure).
            inset = figure.add_axes(
                (
                    (x + 0.75) / GRID_COLUMNS,
                    (height - (y + h - 0.45)) / top,
                    (w * 0.58) / GRID_COLUMNS,
                    (h - 1.3) / top,
                )
            )
            inset.set_xlim(0, end)
            _graph(inset, lines)
            continue
        text = NOT_MEASURED if kind == "metric" else "\n".join(widget_lines(widget, wide=True))
        axes.text(
            x + 0.35,
            y + 0.8,
            "\n".join(textwrap.wrap(text, int(w * 7.5), replace_whitespace=False))
            if kind == "metric"
            else text,
            fontsize=7,
            va="top",
            ha="left",
            color="#37474f",
            linespacing=1.3,
        )
    axes.text(
        GRID_COLUMNS / 2,
        -TITLE_UNITS / 2,
        "CloudWatch dashboard Auth0Sync (the synthesized template's widgets; graphs from a "
        f"demo run of {DEMO_USERS} users; x: seconds of the demo, {BIN_SECONDS:g} s a point)",
        fontsize=11,
        ha="center",
        va="center",
    )
    return save(figure, path)


def demo_timeline(users: int = DEMO_USERS) -> dict[str, Any]:
    """A demo run's timeline (its story is not printed)."""
    from auth0_sync_cli.demo import DEFAULT_SEED, run_demo

    result = run_demo(users, DEFAULT_SEED, out=io.StringIO(), sample_depth=True)
    return result.timeline.to_dict()


def synthesized_template() -> dict[str, Any]:
    """The stack's template with the repo's cdk.json context: no bundling, no cdk-nag."""
    from aws_cdk.assertions import Template

    from infra.bundling import REPO_ROOT
    from infra.stack import build_app

    context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    stack = build_app({**context, "aws:cdk:bundling-stacks": []}, nag=False)
    return dict(Template.from_stack(stack).to_json())


def draw(path: str | Path = DEFAULT_PATH) -> Path:
    return draw_body(dashboard_body(synthesized_template()), demo_timeline(), path)


if __name__ == "__main__":
    print(draw())
