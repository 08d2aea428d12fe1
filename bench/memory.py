"""Figure 5: peak RSS of a fresh process handling 1k and then 10k events, in memory mode.

Two processes per size: `auth0-sync process --state memory` exactly as a user runs it, and
the same runner fed one line at a time (`python -m bench.memory FILE`), which tells the
sync's own memory apart from the CLI's input handling. Peak RSS is the child's own
high-water mark (`VmHWM`), which, unlike `ru_maxrss`, does not count the parent's pages the
child had before `exec`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from auth0_sync.names import LOCAL_CRM_TOKEN, Env
from bench.calls import stream_for
from bench.report import Row, Section, ratio
from bench.servers import Peers

REPO_ROOT = Path(__file__).resolve().parent.parent
EVENTS_PER_USER = 6.7  # the figure-1 mix, on average
TARGET_GROWTH = 1.1  # "flat": 10x the events, at most 10% more memory


def write_events(path: Path, count: int) -> Path:
    """`count` events of the figure-1 mix as JSON Lines."""
    users = int(count / EVENTS_PER_USER) + 20
    events = stream_for(users, seed=5).events
    while len(events) < count:  # the mix's events per user is an average: ask for more
        users = int(users * 1.1) + 1
        events = stream_for(users, seed=5).events
    events = events[:count]
    path.write_text("".join(json.dumps(raw) + "\n" for raw in events))
    return path


# Runs the module given in argv[1] as `python -m` would, then reports the peak RSS.
MEASURED = """
import atexit, runpy, sys
def report():
    status = open("/proc/self/status").read()
    peak = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
    sys.stderr.write("PEAK_RSS_KB " + peak.split()[1] + "\\n")
atexit.register(report)
module, sys.argv = sys.argv[1], sys.argv[1:]
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


def peak_rss_mb(module: str, args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(peak RSS in MB, seconds) of a fresh `python -m module args...` run to its end."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", MEASURED, module, *args],
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    peaks = [line for line in done.stderr.splitlines() if line.startswith("PEAK_RSS_KB ")]
    # 1: done, some events dead-lettered (the figure-1 mix holds a malformed event).
    if done.returncode not in (0, 1) or not peaks:
        raise RuntimeError(f"python -m {module} {args} failed: {done.stderr[-2000:]}")
    return int(peaks[-1].split()[1]) / 1024, seconds


def streamed(path: Path) -> None:
    """The worker: the memory-mode runner, one event read, handled and dropped at a time."""
    from auth0_sync_cli.local_mode import build_local_sync

    local = build_local_sync("memory")
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            local.runner.run(json.loads(line))


def run(peers: Peers, *, sizes: tuple[int, int]) -> Section:
    """Both ways of running, at both sizes; one run each (peak RSS varies by well under 1%)."""
    started = time.perf_counter()
    env = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"}
    env.update({Env.CRM_BASE_URL: peers.crm_url, Env.CRM_API_TOKEN: LOCAL_CRM_TOKEN})
    small, large = sizes
    files = {n: write_events(peers.workdir / f"events-{n}.jsonl", n) for n in sizes}
    floor, _ = peak_rss_mb("auth0_sync_cli.process", [], env)
    measured: dict[tuple[str, int], tuple[float, float]] = {}
    for size in sizes:
        for way, module, args in (
            ("process", "auth0_sync_cli.main", ["process", "--state", "memory", "--json"]),
            ("streamed", "bench.memory", []),
        ):
            peers.crm.reset()
            if way == "process":  # its dead letters go with the run's other files
                args = [*args, "--dead-letters", str(peers.workdir / f"dead-letters-{size}.jsonl")]
            measured[way, size] = peak_rss_mb(module, [*args, str(files[size])], env)
    growth = {
        way: measured[way, large][0] / measured[way, small][0] for way in ("process", "streamed")
    }
    section = Section(
        title="Memory",
        method=(
            f"{small:,} and {large:,} events of the figure-1 mix as JSON Lines; a fresh "
            "process each, in-memory state against the reference CRM; peak RSS from "
            "`VmHWM`. Baseline: the same process at "
            f"{small:,} events (flat = at most {TARGET_GROWTH - 1:.0%} more at {large:,})."
        ),
        runs="1 per size and way (peak RSS repeats to within 1 MB)",
    )
    for way, label in (
        ("process", "`auth0-sync process --state memory`"),
        ("streamed", "the same runner fed line by line"),
    ):
        section.rows.append(
            Row(
                f"Peak RSS, {label}, {large // 1000}k vs {small // 1000}k events",
                f"{measured[way, large][0]:.0f} MB",
                f"{measured[way, small][0]:.0f} MB",
                ratio(measured[way, large][0], measured[way, small][0]),
                f"≤ {TARGET_GROWTH}x (flat)",
                growth[way] <= TARGET_GROWTH,
            )
        )
    section.detail += [
        "| process | events | peak RSS | time |",
        "|---|---|---|---|",
        f"| `auth0_sync_cli.process` imported, nothing run | 0 | {floor:.0f} MB | |",
        *(
            f"| {way} | {size:,} | {rss:.0f} MB | {seconds:.1f} s |"
            for (way, size), (rss, seconds) in measured.items()
        ),
    ]
    if growth["process"] > TARGET_GROWTH:
        section.notes.append(
            f"`auth0-sync process` is not flat ({growth['process']:.2f}x): it reads the whole "
            "input into a list of parsed events before handling the first one "
            "(`process.read_events`), so memory grows with the file. The sync itself is "
            f"flat ({growth['streamed']:.2f}x when fed line by line). Fix: read JSON Lines "
            "one line at a time in `process` (a JSON array still needs loading whole)."
        )
    if growth["streamed"] > TARGET_GROWTH:
        section.notes.append(
            f"The sync fed line by line grows {growth['streamed']:.2f}x: the in-memory state "
            "keeps one record per user (there are 10x more users at 10k events), which a "
            "Lambda never holds (its state is in DynamoDB)."
        )
    section.seconds = time.perf_counter() - started
    return section


if __name__ == "__main__":
    streamed(Path(sys.argv[1]))
