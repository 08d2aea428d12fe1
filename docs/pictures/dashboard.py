"""docs/dashboard.png: a faithful drawing of the CloudWatch dashboard the stack deploys.

It reads the `AWS::CloudWatch::Dashboard` resource of the synthesized template (the stack
built in this process, bundling and cdk-nag skipped: only the template's dashboard body is
used), lays its widgets out by their x, y, width and height on CloudWatch's 24-column grid,
and labels each with its title and what it shows (metrics, alarms, a search expression).
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from typing import Any

from matplotlib.patches import Rectangle

from docs.pictures.boxes import canvas, save

DEFAULT_PATH = Path(__file__).resolve().parents[1] / "dashboard.png"
GRID_COLUMNS = 24  # CloudWatch's dashboard grid
ROW_UNITS = 0.5  # a grid row is about half a column tall on screen
MAX_LINES = 6
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


def draw_body(body: dict[str, Any], path: str | Path = DEFAULT_PATH) -> Path:
    widgets = body.get("widgets", [])
    rows = max([1] + [w["y"] + w["height"] for w in widgets])
    figure, axes = canvas(GRID_COLUMNS, rows * ROW_UNITS, scale=0.7)
    axes.invert_yaxis()  # CloudWatch's y grows downwards
    axes.set_ylim(rows * ROW_UNITS, 0)
    for widget in widgets:
        x, y = widget["x"], widget["y"] * ROW_UNITS
        w, h = widget["width"], widget["height"] * ROW_UNITS
        colour = "#c62828" if widget.get("type") == "alarm" else "#1565c0"
        axes.add_patch(
            Rectangle(
                (x + 0.1, y + 0.05),
                w - 0.2,
                h - 0.1,
                facecolor=colour + "10",
                edgecolor=colour,
                linewidth=1.2,
            )
        )
        title = widget.get("properties", {}).get("title", widget.get("type", ""))
        axes.text(x + 0.35, y + 0.35, title, fontsize=8.5, fontweight="bold", va="top", ha="left")
        kind = widget.get("type")
        axes.text(x + w - 0.3, y + 0.35, str(kind), fontsize=7, color=colour, va="top", ha="right")
        lines = widget_lines(widget, wide=w >= GRID_COLUMNS // 2)
        text = "\n".join(line[: int(w * 8)] for line in lines)
        axes.text(
            x + 0.35,
            y + 0.85,
            text,
            fontsize=7,
            va="top",
            ha="left",
            color="#37474f",
            linespacing=1.3,
        )
    axes.set_title(
        "CloudWatch dashboard Auth0Sync (drawn from the synthesized template)", fontsize=11
    )
    return save(figure, path)


def synthesized_template() -> dict[str, Any]:
    """The stack's template with the repo's cdk.json context: no bundling, no cdk-nag."""
    from aws_cdk.assertions import Template

    from infra.bundling import REPO_ROOT
    from infra.stack import build_app

    context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    stack = build_app({**context, "aws:cdk:bundling-stacks": []}, nag=False)
    return dict(Template.from_stack(stack).to_json())


def draw(path: str | Path = DEFAULT_PATH) -> Path:
    return draw_body(dashboard_body(synthesized_template()), path)


if __name__ == "__main__":
    print(draw())
