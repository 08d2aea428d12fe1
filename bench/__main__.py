"""`python -m bench [--quick] [--only NAME ...]`: run the figures, write docs/benchmarks.md."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench import (
    aws_requests,
    backfill,
    buffered_burst,
    bulk,
    bulk_at_limit,
    burst,
    calls,
    cold_start,
    faults,
    masking,
    memory,
    orgs,
    profiling,
    reconcile_memory,
    replay_batches,
)
from bench.report import Section, render
from bench.servers import Peers

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "docs" / "benchmarks.md"


@dataclass(frozen=True)
class Sizes:
    """How big and how often: the published run, or --quick for iterating."""

    users: int
    check_users: int
    check_seeds: tuple[int, ...]
    workers: int
    profile_users: int
    profile_runs: int
    cold_runs: int
    asset: bool
    burst_events: int
    burst_runs: int
    memory_sizes: tuple[int, int]
    fault_users: int = 120
    reconcile_sizes: tuple[int, int] = (10_000, 100_000)


FULL = Sizes(1000, 150, (8, 9), 4, 40, 3, 5, True, 2000, 3, (1000, 10000), 120)
QUICK = Sizes(150, 0, (), 4, 15, 1, 3, False, 400, 1, (1000, 10000), 40, (1000, 10_000))


def _aws(peers: Peers, _sizes: Sizes) -> list[Section]:
    from infra.config import FUNCTION_MEMORY_MB  # the stack's memory (loads aws_cdk: here only)

    return aws_requests.run(peers, memory_mb=FUNCTION_MEMORY_MB)


FIGURES: dict[str, Callable[[Peers, Sizes], Section | list[Section]]] = {
    "calls": lambda p, s: calls.run(
        p,
        users=s.users,
        seed=7,
        workers=s.workers,
        check_users=s.check_users,
        check_seeds=s.check_seeds,
    ),
    "aws": _aws,
    "profile": lambda p, s: profiling.run(p, users=s.profile_users, runs=s.profile_runs),
    "cold-start": lambda p, s: cold_start.run(p, runs=s.cold_runs, with_asset=s.asset),
    "burst": lambda p, s: burst.run(p, count=s.burst_events, runs=s.burst_runs),
    "memory": lambda p, s: memory.run(p, sizes=s.memory_sizes),
    "backfill": lambda p, s: backfill.run(p, sizes=s.memory_sizes),
    "reconcile-memory": lambda p, s: reconcile_memory.run(p, sizes=s.reconcile_sizes),
    "faults": lambda p, s: faults.run(p, users=s.fault_users),
    "masking": lambda p, s: masking.run(p, runs=1 if s is QUICK else 5),
    "bulk": lambda p, s: bulk.run(p, size=2000 if s.asset else 200),
    "replay-batches": lambda p, s: replay_batches.run(p, count=500 if s.asset else 100),
    "orgs": lambda p, s: orgs.run(p) if s.asset else orgs.run(p, users=200, orgs=10, steps=600),
    # 10,000 buffered; direct at HubSpot's 10 requests/s takes ~100 s per 1,000 signups.
    "buffered-burst": lambda p, s: (
        buffered_burst.run(p, count=10_000, direct_count=2000)
        if s.asset
        else buffered_burst.run(p, count=1000, direct_count=200)
    ),
    # At the limits: REST ~30 s, HubSpot ~55 s (10 requests/s), Salesforce; ~2.5 min in all.
    "bulk-at-limit": lambda p, s: bulk_at_limit.run(p, size=10_000 if s.asset else 1000),
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small inputs, one run each")
    parser.add_argument("--only", nargs="+", choices=sorted(FIGURES), help="run only these figures")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="report path (default %(default)s)"
    )
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    names = [name for name in FIGURES if not args.only or name in args.only]
    started = time.perf_counter()
    sections: list[Section] = []
    with Peers() as peers:
        for number, name in enumerate(names, start=1):
            print(f"bench: {number}/{len(names)} {name} ...", file=sys.stderr, flush=True)
            figure_started = time.perf_counter()
            made = FIGURES[name](peers, sizes)
            figure_sections = made if isinstance(made, list) else [made]
            if not isinstance(made, list):
                made.seconds = time.perf_counter() - figure_started
            for section in figure_sections:
                sections.append(section)
                for row in section.rows:
                    print(f"  {row.figure}: {row.ours} (baseline {row.baseline})", file=sys.stderr)
    total = time.perf_counter() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(sections, quick=args.quick, total_seconds=total))
    print(f"bench: wrote {args.out} in {total:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
