"""Backfill of N users with batch calls at each destination's documented limit: time against
the least time the limit allows (requests the CRM accepted / its rate).

The backfill is the CLI's own (`auth0-sync backfill --rate R --workers 8 --json` parsed by
its parser; `auth0_sync_cli.backfill.command.backfill_with`: brake, users, sweep), batch
calls (the default), in this process, with one change: the sync state and the DLQ are in
memory (`auth0_sync_cli.backfill.targets.local_target`). With local-aws state this 2-core
machine spends ~40 ms of its own per user (moto), so a batched run would measure moto, not
the limit (as sections 6 and 12 say for the same reason); DynamoDB itself serves thousands
of requests a second.

Each CRM in its own process, as a user would have it:
- rest: the reference CRM (`auth0-sync crm-server`) limited to 100 requests/s (429 beyond),
  section 8's limit;
- hubspot: the HubSpot fake at HubSpot's documented Free/Starter private-app limits (100
  requests per rolling 10 s, search 5/s; `auth0_sync_cli.fakes.hubspot`), as section 12;
- salesforce: the Salesforce fake. Salesforce documents no per-second request limit: its
  limits are a 24-hour allocation of API requests, 25 concurrent requests that last 20 s or
  more, and timeouts ("There isn't a limit on the number of concurrent requests shorter
  than 20 seconds": https://developer.salesforce.com/docs/platform/salesforce-app-limits-
  cheatsheet/guide/salesforce-app-limits-platform-api.html; the fake's
  `auth0_sync_cli.fakes.salesforce.NO_RATE_LIMIT`), so it runs at the REST run's 100
  requests/s, kept by `--rate` (the fake enforces nothing per second).

`--rate` is the limit's average rate (100/s; HubSpot 10/s). Requests are counted by the CRM
itself (the reference CRM's stats, the HubSpot fake's request log, the Salesforce fake's
API usage; 429s left out, the token request too). Every exported user must end with exactly
one contact holding its email and family name, no email on two contacts (read from the
CRM's own store). The export: section 8's (one user in ten already in the CRM by email,
half of those with a stale family name).

Baseline: the same backfill with single calls at the same limit. At 10,000 users that is
about 3,000 s at HubSpot's 10/s, so it is not run here: its least time is computed from
section 8's single calls per user (30,021 calls for 10,000 users, 3.0 a user; section 8
measured 1.01x of that at 100/s).

    PYTHONPATH=functions:. .venv/bin/python -m bench.bulk_at_limit 10000 [rest hubspot ...]
"""

from __future__ import annotations

import contextlib
import io
import json
import multiprocessing
import sys
import time
from collections import Counter
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from auth0_sync.dead_letter import MemoryDeadLetterQueue
from auth0_sync.names import LOCAL_CRM_TOKEN, CrmType
from auth0_sync.replay.pacing import TokenBucket
from auth0_sync.settings import Settings
from auth0_sync.state import MemorySyncStateStore
from auth0_sync_cli.backfill.borrowed import quiet_handler_logs
from auth0_sync_cli.backfill.command import backfill_with
from auth0_sync_cli.backfill.targets import local_target
from auth0_sync_cli.main import build_parser
from bench.backfill import PREEXISTING_SHARE, write_export
from bench.bulk import wrong_contacts
from bench.report import Row, Section
from bench.servers import Peers

WORKERS = 8


@dataclass(frozen=True)
class Limit:
    """A destination's request limit: `calls` per `seconds`, and where it comes from."""

    calls: int
    seconds: float
    source: str

    @property
    def rate(self) -> float:
        return self.calls / self.seconds


LIMITS = {
    CrmType.REST: Limit(100, 1.0, "the reference CRM limited to 100 requests/s (section 8)"),
    CrmType.HUBSPOT: Limit(
        100, 10.0, "HubSpot's Free/Starter private app: 100 requests per rolling 10 s"
    ),
    CrmType.SALESFORCE: Limit(
        100, 1.0, "no per-second limit documented: the REST run's 100 requests/s, by --rate"
    ),
}
# Section 8: 30,021 single calls for 10,000 users at 100 calls/s (1.01x of their least time).
SINGLE_CALLS_PER_USER = 30_021 / 10_000
TARGET_SLOWDOWN = 1.2
TARGET_SPEEDUP = 20.0


@dataclass
class Result:
    destination: str
    users: int
    seconds: float
    accepted: int  # requests the CRM answered, 429s left out
    throttled: int  # 429s
    counts: dict[str, int]
    mismatches: int
    duplicates: int
    dead_letters: int
    limit: Limit

    @property
    def ideal(self) -> float:
        return self.accepted / self.limit.rate

    @property
    def slowdown(self) -> float:
        return self.seconds / self.ideal if self.ideal else 0.0

    @property
    def single_ideal(self) -> float:
        """The least time of single calls at the same limit (section 8's calls per user)."""
        return SINGLE_CALLS_PER_USER * self.users / self.limit.rate

    @property
    def speedup(self) -> float:
        return self.single_ideal / self.seconds if self.seconds else 0.0


def _stale(size: int) -> list[int]:
    return list(range(0, size, PREEXISTING_SHARE))


def _family_name(n: int) -> str:
    return "Stale" if n % 20 else f"User{n}"


def serve_fake(crm_type: str, size: int, conn: Connection) -> None:
    """A vendor fake in its own process (its CPU off ours, as the reference CRM's): seeded,
    its URL and secret sent; on "done", its counts and contacts sent back."""
    from auth0_sync_cli.fakes.hubspot import FakeHubSpot, hubspot_contact
    from auth0_sync_cli.fakes.salesforce import (
        CLIENT_ID,
        CLIENT_SECRET,
        FakeSalesforce,
        salesforce_contact,
    )

    if crm_type == CrmType.HUBSPOT:
        limit = LIMITS[CrmType.HUBSPOT]
        hubspot = FakeHubSpot(window_calls=limit.calls, window_ms=int(limit.seconds * 1000))
        hubspot.start()
        for n in _stale(size):
            hubspot.seed(email=f"bench{n}@example.com", lastname=_family_name(n))
        hubspot.requests.clear()
        conn.send((hubspot.base_url, hubspot.token))
        conn.recv()
        statuses = Counter(status for _, _, status in hubspot.requests)
        held = [hubspot_contact(r) for r in hubspot.contacts()]
        conn.send((sum(statuses.values()) - statuses[429], statuses[429], held))
        hubspot.stop()
        return
    org = FakeSalesforce(daily_limit=10_000_000).start()
    for n in _stale(size):
        org.seed(Email=f"bench{n}@example.com", LastName=_family_name(n))
    org.api_used = 0
    conn.send((org.base_url, json.dumps({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})))
    conn.recv()
    held = [salesforce_contact(r) for r in org.contacts()]
    conn.send((int(org.api_used), 0, held))
    org.stop()


def _backfill(settings: Settings, export: str, limit: Limit) -> tuple[float, dict[str, Any], int]:
    """(seconds, the JSON report, dead letters) of the CLI's backfill on in-memory state."""
    argv = ["backfill", "--export", export, "--rate", f"{limit.rate:g}"]
    args = build_parser().parse_args([*argv, "--workers", str(WORKERS), "--json"])
    bucket = TokenBucket(args.rate)
    dead_letters = MemoryDeadLetterQueue()
    target = local_target(
        settings,
        bucket,
        MemorySyncStateStore(),
        dead_letters,
        timeout=args.timeout,
        batch=args.batch,
        batch_size=args.batch_size,
    )
    printed = io.StringIO()
    started = time.perf_counter()
    with quiet_handler_logs(), contextlib.redirect_stdout(printed):
        code = backfill_with(args, target, {}, bucket)
    seconds = time.perf_counter() - started
    if code not in (0, 1):
        raise RuntimeError(f"backfill exited {code}: {printed.getvalue()[-2000:]}")
    return seconds, json.loads(printed.getvalue()), len(dead_letters.messages)


def one_run(peers: Peers, crm_type: CrmType, size: int) -> Result:
    limit = LIMITS[crm_type]
    export = str(write_export(peers.workdir / f"at-limit-{size}.json.gz", size))
    if crm_type is CrmType.REST:
        peers.reset()
        crm = peers.crm
        crm.seed(
            [
                {"email": f"bench{n}@example.com", "family_name": _family_name(n)}
                for n in _stale(size)
            ]
        )
        crm.set_rate_limit(limit.rate)
        crm.reset_stats()
        settings = Settings(crm_base_url=peers.crm_url, crm_api_token=LOCAL_CRM_TOKEN)
        try:
            seconds, report, dead = _backfill(settings, export, limit)
        finally:
            crm.set_rate_limit(None)
        by_status = crm.stats()["by_status"]
        throttled = int(by_status.get("429", 0))
        accepted = int(crm.stats()["total"]) - throttled
        held = crm.contacts()
    else:
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        child = context.Process(target=serve_fake, args=(str(crm_type), size, theirs))
        child.start()
        try:
            base_url, secret = ours.recv()
            settings = Settings(crm_type=crm_type, crm_base_url=base_url, crm_api_token=secret)
            seconds, report, dead = _backfill(settings, export, limit)
            ours.send("done")
            accepted, throttled, held = ours.recv()
        finally:
            child.join(timeout=30)
            if child.is_alive():
                child.terminate()
    wrong, doubled = wrong_contacts(size, held)
    return Result(
        str(crm_type),
        size,
        seconds,
        accepted,
        throttled,
        report["counts"],
        wrong,
        doubled,
        dead,
        limit,
    )


def run(peers: Peers, *, size: int = 10_000) -> Section:
    started = time.perf_counter()
    results = [one_run(peers, crm_type, size) for crm_type in LIMITS]
    section = Section(
        title=f"Backfill of {size:,} users with batch calls at each destination's limit",
        method=(
            f"`auth0-sync backfill --rate R --workers {WORKERS}` (batch calls, the default; the "
            "CLI's own code in this process) on the export of section 8, in-memory state and "
            "DLQ (local-aws measures moto, as in sections 6 and 12); each CRM in its own "
            "process at its limit: "
            + "; ".join(f"{t}: {LIMITS[t].source}" for t in LIMITS)
            + ". Ideal = requests the CRM accepted (counted by the CRM) / the limit's rate. "
            "Baseline: single calls at the same limit, their least time from section 8's "
            f"{SINGLE_CALLS_PER_USER:.1f} calls per user (not run: about 3,000 s at HubSpot's)."
        ),
        runs="1 per destination",
    )
    section.detail += [
        "| destination | limit | users | time | requests accepted | 429s | ideal | time / ideal "
        "| single calls: least time | speed-up | create | link | update | mismatches "
        "| duplicates | dead letters |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        c = r.counts
        section.detail.append(
            f"| {r.destination} | {r.limit.calls} / {r.limit.seconds:g} s | {r.users:,} | "
            f"{r.seconds:.1f} s | {r.accepted:,} | {r.throttled} | {r.ideal:.1f} s | "
            f"{r.slowdown:.2f}x | {r.single_ideal:,.0f} s | {r.speedup:.0f}x | "
            f"{c['create']:,} | {c['link']:,} | {c['update']:,} | {r.mismatches} | "
            f"{r.duplicates} | {r.dead_letters} |"
        )
        clean = r.mismatches == 0 and r.duplicates == 0 and r.dead_letters == 0
        section.rows.append(
            Row(
                f"Backfill {size:,} users at the limit, batches ({r.destination}): "
                "time / (requests ÷ limit)",
                f"{r.seconds:.1f} s / {r.ideal:.1f} s = {r.slowdown:.2f}x",
                f"single calls: {r.single_ideal:,.0f} s least (section 8: 1.01x of it)",
                r.seconds / r.single_ideal,
                f"≤ {TARGET_SLOWDOWN}x, ≥ {TARGET_SPEEDUP:g}x faster, 0 mismatches",
                r.slowdown <= TARGET_SLOWDOWN and r.speedup >= TARGET_SPEEDUP and clean,
            )
        )
    section.seconds = time.perf_counter() - started
    return section


if __name__ == "__main__":
    users = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    with Peers() as peers:
        for name in sys.argv[2:] or [str(t) for t in LIMITS]:
            result = one_run(peers, CrmType(name), users)
            print(
                json.dumps(
                    {
                        **{k: v for k, v in vars(result).items() if k != "limit"},
                        "limit": f"{result.limit.calls}/{result.limit.seconds:g}s",
                        "ideal": round(result.ideal, 2),
                        "slowdown": round(result.slowdown, 3),
                        "single_ideal": round(result.single_ideal, 1),
                        "speedup": round(result.speedup, 1),
                    }
                ),
                flush=True,
            )
