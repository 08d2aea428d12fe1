"""The demo's timeline drawing (`auth0-sync demo --plot`) on a small made-up timeline, and
the demo's message when matplotlib is not installed (`make demo` does not install it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from auth0_sync_cli.main import main
from auth0_sync_cli.plot import draw_timeline

pytestmark = pytest.mark.unit

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"  # the PNG specification's first eight bytes


def test_the_timeline_is_written_as_a_png(tmp_path: Path) -> None:
    timeline = {
        "deliveries": [[0.1, "applied"], [0.5, "skipped"], [1.2, "failed"], [2.7, "applied"]],
        "windows": [["429 rate limit", 0.4, 1.0], ["503 outage", 1.0, 1.5], ["replay", 2, 3]],
        "dlq_depth": [[0.0, 0], [1.3, 1], [2.9, 0]],
    }
    target = tmp_path / "timeline.png"

    assert draw_timeline(timeline, target) == target

    data = target.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 10_000  # two panels of axes, bars and text, not an empty canvas


def test_an_empty_timeline_still_draws(tmp_path: Path) -> None:
    target = draw_timeline({}, tmp_path / "empty.png")
    assert target.read_bytes().startswith(PNG_SIGNATURE)


def test_plot_without_matplotlib_says_how_to_get_it_and_starts_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # None in sys.modules makes `import` raise ImportError, as when it is not installed.
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.delitem(sys.modules, "auth0_sync_cli.plot", raising=False)
    target = tmp_path / "t.png"

    code = main(["demo", "--plot", str(target)])

    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert captured.err == (
        "auth0-sync demo: error: --plot needs matplotlib, which `make demo` does not install: "
        "`.venv/bin/pip install -r requirements-dev.txt` (or `make install`), then run again\n"
    )
    assert not target.exists()


def test_the_demo_module_does_not_import_matplotlib() -> None:
    code = (
        "import sys, auth0_sync_cli.main as m; m.build_parser(); "
        "import auth0_sync_cli.demo; print('matplotlib' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "False"


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def _distance(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    return float(sum((x - y) ** 2 for x, y in zip(a, b, strict=True)) ** 0.5)


# Below this distance (0..441 in RGB) two colours read as one at a glance.
DISTINCT = 40


def test_distinct_things_have_distinct_colours() -> None:
    # The windows are shaded over white: compare what the eye sees, not the hex codes (the
    # 429 window was orange, which at this transparency read as the outage's yellow).
    from auth0_sync_cli import plot

    windows = {**plot.WINDOW_COLOURS, "429 rate limit": plot.FAULT_COLOUR}
    shaded = {
        name: tuple(plot.WINDOW_ALPHA * c + (1 - plot.WINDOW_ALPHA) * 255 for c in _rgb(colour))
        for name, colour in windows.items()
    }
    solid = {label: _rgb(colour) for _, colour, label in plot.STATUSES}
    solid["DLQ depth"] = _rgb(plot.DLQ_COLOUR)
    for group in (shaded, solid):
        names = sorted(group)
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                assert _distance(group[a], group[b]) >= DISTINCT, (a, b)


def test_the_time_axis_covers_the_replay() -> None:
    from auth0_sync_cli.plot import time_axis_end

    timeline = {
        "deliveries": [[0.1, "applied", "created", "user.created", 1], [12.0, "skipped"]],
        "windows": [["503 outage", 5.0, 8.0], ["replay", 12.5, 14.25]],
        "dlq_depth": [[0.0, 0], [13.0, 1]],
    }
    assert time_axis_end(timeline) == 14.25
