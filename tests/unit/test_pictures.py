"""The drawing code of `make pictures` (docs/pictures/) on small inputs: each writes a PNG
that is not empty. `make pictures` itself (the full drawings, a synth) is not in the tests."""

from __future__ import annotations

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
def test_no_two_labels_overlap(build: object) -> None:
    figure = build()  # type: ignore[operator]
    assert isinstance(figure, Figure)
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


def test_the_dashboard_is_drawn(tmp_path: Path) -> None:
    target = dashboard.draw_body(dashboard.dashboard_body(TEMPLATE), tmp_path / "dash.png")
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
    assert "![Summary: ratio](benchmarks/01-summary.png)" in text
    assert "![5. Memory: peak RSS](benchmarks/02-5-memory.png)" in text
    # Rerunnable: a second run rewrites its own section, nothing else.
    benchmarks.draw(markdown)
    assert markdown.read_text() == text


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
