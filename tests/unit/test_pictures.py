"""The drawing code of `make pictures` (docs/pictures/) on small inputs: each writes a PNG
that is not empty. `make pictures` itself (the full drawings, a synth) is not in the tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from matplotlib.figure import Figure

from auth0_sync.routing import ROUTES
from docs.pictures import architecture, benchmarks, boxes, dashboard, dlq_lifecycle

pytestmark = pytest.mark.unit

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path, at_least: int = 10_000) -> None:
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > at_least, len(data)


def test_every_routed_lane_is_drawn_to_each_part_it_uses() -> None:
    edges = set(architecture.build().edges)

    for route in ROUTES:  # users' and organizations' lanes alike
        handler = f"λ {route.construct_id}"
        for part in ("CRM", "DynamoDB", "Secrets Manager", "DLQ"):
            assert (handler, part) in edges, (handler, part)
        assert ("redrive", handler) in edges
    assert ("DLQ", "redrive") in edges


@pytest.mark.parametrize(
    "build",
    [lambda: architecture.build().figure, dlq_lifecycle.build],
    ids=["architecture", "dlq_lifecycle"],
)
def test_no_two_labels_overlap(build: Callable[[], Figure]) -> None:
    figure = build()
    assert boxes.text_overlaps(figure) == []  # laid out as `make pictures` saves it


def test_overlapping_labels_are_found() -> None:
    figure, axes = boxes.canvas(4, 2)
    axes.text(1, 1, "one label", fontsize=10)
    axes.text(1.2, 1, "another", fontsize=10)
    axes.text(3.5, 0.2, "apart", fontsize=10)
    assert boxes.text_overlaps(figure) == [("one label", "another")]


# A dashboard body as CloudWatch documents it (DashboardBody structure: widgets with type,
# x, y, width, height, properties), inside the Fn::Join that CDK synthesizes around tokens.
BODY_PARTS = [
    '{"widgets":[{"type":"alarm","x":0,"y":0,"width":24,"height":3,"properties":{'
    '"title":"Alarms","alarms":["',
    {"Fn::GetAtt": ["ObservabilityDeadLetterQueueNotEmpty2F3C9311", "Arn"]},
    '"]}},{"type":"metric","x":0,"y":3,"width":12,"height":6,"properties":{"title":'
    '"Dead-letter queue: messages","region":"',
    {"Ref": "AWS::Region"},
    '","metrics":[["AWS/SQS","ApproximateNumberOfMessagesVisible","QueueName","',
    {"Fn::GetAtt": ["DeadLetterQueueB6CE5670", "QueueName"]},
    '",{"label":"visible messages","stat":"Maximum"}]]}},{"type":"metric","x":12,"y":3,'
    '"width":12,"height":6,"properties":{"title":"By reason","metrics":[[{"expression":'
    '"SEARCH(x)","label":"dead-lettered"}]]}},{"type":"text","x":0,"y":9,"width":24,'
    '"height":2,"properties":{"markdown":"# Runbook\\nsee the README"}}]}',
]
TEMPLATE = {
    "Resources": {
        "Dash": {
            "Type": "AWS::CloudWatch::Dashboard",
            "Properties": {"DashboardBody": {"Fn::Join": ["", BODY_PARTS]}},
        }
    }
}


def test_the_dashboard_body_is_read_from_the_template() -> None:
    body = dashboard.dashboard_body(TEMPLATE)

    assert [(w["type"], w["x"], w["y"], w["width"], w["height"]) for w in body["widgets"]] == [
        ("alarm", 0, 0, 24, 3),
        ("metric", 0, 3, 12, 6),
        ("metric", 12, 3, 12, 6),
        ("text", 0, 9, 24, 2),
    ]
    assert [dashboard.widget_lines(w) for w in body["widgets"]] == [
        ["DeadLetterQueueNotEmpty"],
        ["visible messages"],
        ["dead-lettered"],
        ["# Runbook", "see the README"],
    ]


# A demo run's timeline (demo.Timeline.to_dict): deliveries (seconds, status, reason, event
# type, CRM calls) and the DLQ's depth (seconds, messages).
TIMELINE = {
    "deliveries": [
        [0.5, "applied", "created", "user.created", 2],
        [0.9, "applied", "created", "user.created", 1],
        [1.2, "skipped", "unchanged", "user.updated", 0],
        [2.5, "applied", "updated", "user.updated", 1],
        [3.1, "dead_lettered", "crm_503", "user.updated", 3],
        [3.4, "dead_lettered", "crm_503", "user.deleted", 3],
    ],
    "windows": [],
    "dlq_depth": [[0.0, 0], [3.2, 1], [3.5, 2]],
}


DEAD_LETTER_SEARCH = (
    "SEARCH('{Auth0Sync,reason,service} MetricName=\"EventDeadLettered\"', 'Sum', 300)"
)


def metric(name: str, *dimensions: str, label: str) -> list[object]:
    return ["Auth0Sync", name, *dimensions, "service", "auth0-sync", {"label": label}]


def test_a_widget_graphs_the_demo_runs_metrics_per_bin() -> None:
    applied = {
        "type": "metric",
        "properties": {
            "metrics": [
                metric("ContactCreated", label="created"),
                metric("ContactUpdated", label="updated"),
            ]
        },
    }
    assert dashboard.widget_series(applied, TIMELINE, end=4.0) == [
        ("created", [0.0, 2.0], [2.0, 0.0]),  # two 2-second bins
        ("updated", [0.0, 2.0], [0.0, 1.0]),
    ]
    calls = {"type": "metric", "properties": {"metrics": [metric("CrmCalls", label="calls")]}}
    assert dashboard.widget_series(calls, TIMELINE, end=4.0) == [("calls", [0.0, 2.0], [3.0, 7.0])]
    dead = {
        "type": "metric",
        "properties": {"metrics": [[{"expression": DEAD_LETTER_SEARCH}]]},
    }
    assert dashboard.widget_series(dead, TIMELINE, end=4.0) == [("crm_503", [0.0, 2.0], [0.0, 2.0])]
    depth = {
        "type": "metric",
        "properties": {
            "metrics": [
                [
                    "AWS/SQS",
                    "ApproximateNumberOfMessagesVisible",
                    "QueueName",
                    "q",
                    {"label": "visible"},
                ]
            ]
        },
    }
    assert dashboard.widget_series(depth, TIMELINE, end=4.0) == [
        ("visible", [0.0, 2.0], [0.0, 2.0])  # the peak of each bin
    ]
    invocations = {
        "type": "metric",
        "properties": {
            "metrics": [
                ["AWS/Lambda", "Invocations", "FunctionName", "f", {"label": "user.updated"}]
            ]
        },
    }
    assert dashboard.widget_series(invocations, TIMELINE, end=4.0) == [
        ("user.updated", [0.0, 2.0], [1.0, 2.0])
    ]


def test_what_only_aws_measures_is_not_invented() -> None:
    duration = {
        "type": "metric",
        "properties": {
            "metrics": [["AWS/Lambda", "Duration", "FunctionName", "f", {"label": "user.created"}]]
        },
    }
    assert dashboard.widget_series(duration, TIMELINE, end=4.0) is None


def test_the_dashboard_is_drawn(tmp_path: Path) -> None:
    body = dashboard.dashboard_body(TEMPLATE)
    target = dashboard.draw_body(body, TIMELINE, tmp_path / "dash.png")
    assert_png(target)


def test_a_template_without_one_dashboard_is_refused() -> None:
    with pytest.raises(ValueError, match="expected one AWS::CloudWatch::Dashboard, found 0"):
        dashboard.dashboard_body({"Resources": {}})


MARKDOWN = """# Benchmarks

| figure | ours | baseline | ratio |
|---|---|---|---|
| CRM calls per event | 0.312 | 1.873 | 0.17x |
| Cold start | 713 ms | 178 ms | 4.02x |

## 5. Memory

| process | events | peak RSS |
|---|---|---|
| process | 1,000 | 66 MB |
| process | 10,000 | 67 MB |

## 6. Words only

| a | b |
|---|---|
| x | y |
"""


def test_the_benchmark_tables_become_charts_and_a_section(tmp_path: Path) -> None:
    markdown = tmp_path / "benchmarks.md"
    markdown.write_text(MARKDOWN)

    written = benchmarks.draw(markdown)

    assert [p.name for p in written] == ["01-summary.png", "02-5-memory.png"]
    for path in written:
        assert_png(path)
    text = markdown.read_text()
    assert text.startswith(MARKDOWN)  # the tables untouched
    assert "![Summary: ratio by figure](benchmarks/01-summary.png)" in text
    assert "![5. Memory: peak RSS by process](benchmarks/02-5-memory.png)" in text
    # Rerunnable: a second run rewrites its own section, nothing else.
    benchmarks.draw(markdown)
    assert markdown.read_text() == text


SAME_FIGURE_TWICE = """## 2. Shares

| part | share |
|---|---|
| a | 0% |
| b | 99.5% |
| c | 0.5% |

| part | share |
|---|---|
| a | 10% |
| b | 90% |

In order:

| part | share |
|---|---|
| a | 20% |
| b | 80% |
"""


def test_each_chart_has_its_own_title_and_shows_its_zero_rows(tmp_path: Path) -> None:
    markdown = tmp_path / "benchmarks.md"
    markdown.write_text(SAME_FIGURE_TWICE)

    benchmarks.draw(markdown)

    text = markdown.read_text()
    assert "![2. Shares: share by part](benchmarks/01-2-shares.png)" in text
    assert (
        "![2. Shares: share by part (table 2 of its section)](benchmarks/02-2-shares.png)" in text
    )
    # 0% and 99.5% span more than 50x, but a log axis cannot show the zero row.
    assert benchmarks.x_scale([0.0, 99.5, 0.5]) == "linear"
    assert benchmarks.x_scale([1.0, 99.5, 0.5]) == "log"


def test_a_charts_legend_covers_no_bar_label() -> None:
    table = benchmarks.read_tables(
        "| run | ours | baseline |\n|---|---|---|\n| a | 10 ms | 12 ms |\n| b | 30 ms | 29 ms |\n"
    )[0]
    figure = benchmarks.chart(table)
    assert figure is not None
    assert figure.axes[0].get_legend() is not None
    assert boxes.text_overlaps(figure) == []


def test_values_with_units_are_read() -> None:
    assert benchmarks.parse_value("32.1 ms") == (32.1, "ms")
    assert benchmarks.parse_value("0.17x") == (0.17, "x")
    assert benchmarks.parse_value("1,000") == (1000.0, "")
    assert benchmarks.parse_value("**no**") is None
    assert benchmarks.parse_value("2000 / 90 / 2090") is None


def test_every_picture_module_is_drawn_by_make_pictures() -> None:
    source = (Path(benchmarks.__file__).parent / "__main__.py").read_text()
    for module in (architecture, benchmarks, dashboard, dlq_lifecycle):
        assert f"{module.__name__.rsplit('.', 1)[1]}.draw()" in source
