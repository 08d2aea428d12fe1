"""Peak RSS of `auth0-sync reconcile` at two sizes: memory that stays flat (issue #25).

Each size starts clean: a gzipped export of N users (`bench.backfill`'s users), the reference
CRM holding one contact per user with its fields and Auth0 user id (made through contract
1.2's `POST /contacts/batch`, 100 at a time), and one sync state per user in local-aws's
table naming that contact (written with DynamoDB's `BatchWriteItem`, the state table's own
item shape). Then `auth0-sync reconcile --export FILE --json` runs as a user runs it, in a
fresh process; its peak RSS is the process's own `VmHWM`. It should find no drift: the
CRM is in step with the export. The baseline is the same command from BEFORE_COMMIT (the
last one whose `reconcile` held its sources in dicts), run on the same data.
"""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from auth0_sync.names import LOCAL_CRM_TOKEN
from bench.backfill import exported_user, measured_run, write_export
from bench.report import Row, Section, ratio
from bench.servers import Peers, functions_at, local_client

REPO_ROOT = Path(__file__).resolve().parent.parent
BEFORE_COMMIT = "25980eb42d1d6237bbcd4f19806718bb80dc917f"
TARGET_GROWTH = 1.1
CRM_BATCH = 100  # contract 1.2: at most 100 operations a batch
DYNAMO_BATCH = 25  # BatchWriteItem: at most 25 items a call
STATE_TIME = "2026-01-01T00:00:00.000000+00:00"  # before the export's updated_at


def seed_contacts(peers: Peers, size: int) -> list[str]:
    """One active contact per exported user, holding its fields; their ids, in user order."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {LOCAL_CRM_TOKEN}"
    ids: list[str] = []
    for start in range(0, size, CRM_BATCH):
        operations = []
        for n in range(start, min(size, start + CRM_BATCH)):
            user = exported_user(n)
            fields = {k: user[k] for k in ("email", "name", "given_name", "family_name")}
            fields["auth0_user_id"] = user["user_id"]
            operations.append({"op": "create", "fields": fields})
        response = session.post(
            peers.crm_url + "/contacts/batch", json={"operations": operations}, timeout=60
        )
        response.raise_for_status()
        for result in response.json()["results"]:
            if result["status"] != 201:
                raise RuntimeError(f"seeding the CRM failed: {result}")
            ids.append(str(result["contact"]["id"]))
    return ids


def seed_states(peers: Peers, contact_ids: list[str]) -> None:
    """One sync state per user naming its contact, straight into local-aws's state table."""
    aws = peers.aws_environment()
    dynamodb = local_client("dynamodb", aws)
    assert peers.resources is not None
    table = peers.resources.state_table

    def write(start: int) -> None:
        requests_: list[dict[str, Any]] = [
            {
                "PutRequest": {
                    "Item": {
                        "user_id": {"S": exported_user(n)["user_id"]},
                        "contact_id": {"S": contact_ids[n]},
                        "matched_by": {"S": "created"},
                        "last_change_time": {"S": STATE_TIME},
                    }
                }
            }
            for n in range(start, min(len(contact_ids), start + DYNAMO_BATCH))
        ]
        pending: dict[str, Any] = {table: requests_}
        while pending:
            answer = dynamodb.batch_write_item(RequestItems=pending)
            pending = answer.get("UnprocessedItems") or {}

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(write, range(0, len(contact_ids), DYNAMO_BATCH)))


def one_size(peers: Peers, size: int, before: Path | None = None) -> dict[str, Any]:
    peers.reset()
    started = time.perf_counter()
    export = write_export(peers.workdir / f"reconcile-users-{size}.json.gz", size)
    seed_states(peers, seed_contacts(peers, size))
    seeding = time.perf_counter() - started
    env = peers.handler_environment()
    env["POWERTOOLS_LOG_LEVEL"] = "ERROR"
    args = ["reconcile", "--export", str(export), "--rate", "100000"]
    rss, seconds, report = measured_run(args, env)
    result: dict[str, Any] = {}
    if before is not None:  # the code of before, first on the path
        env["PYTHONPATH"] = os.pathsep.join((str(before), str(REPO_ROOT)))
        rss_b, seconds_b, report_b = measured_run(args, env)
        result["before"] = (rss_b, seconds_b, sum(report_b["counts"].values()))
    return result | {
        "size": size,
        "rss": rss,
        "seconds": seconds,
        "seeding": seeding,
        "users": report["users"],
        "contacts": report["contacts"],
        "states": report["states"],
        "drift": sum(report["counts"].values()),
    }


def run(peers: Peers, *, sizes: tuple[int, int]) -> Section:
    started = time.perf_counter()
    tree = functions_at(BEFORE_COMMIT, peers.workdir, "before-flat")
    before = tree if isinstance(tree, Path) else None
    small, large = (one_size(peers, size, before) for size in sizes)
    section = Section(
        title="Reconcile memory",
        method=(
            f"`auth0-sync reconcile --export FILE --json` on {small['size']:,} and "
            f"{large['size']:,} users, each with its contact in the reference CRM and its "
            "sync state in local-aws (in step: no drift expected); a fresh process each, "
            "peak RSS from `VmHWM`. Baseline: the same command at "
            f"{small['size']:,} users (flat = at most {TARGET_GROWTH - 1:.0%} more)."
        ),
        runs="1 per size",
    )
    growth = ratio(large["rss"], small["rss"])
    section.rows.append(
        Row(
            f"Peak RSS of `reconcile`, {large['size'] // 1000}k vs {small['size'] // 1000}k users",
            f"{large['rss']:.0f} MB",
            f"{small['rss']:.0f} MB",
            growth,
            f"≤ {TARGET_GROWTH}x (flat)",
            growth is not None and growth <= TARGET_GROWTH,
        )
    )
    if before is not None:
        was = ratio(large["before"][0], small["before"][0])
        section.rows.append(
            Row(
                f"… the same before ({BEFORE_COMMIT[:7]}: sources held in dicts)",
                f"{large['before'][0]:.0f} MB",
                f"{small['before'][0]:.0f} MB",
                was,
                "—",
                None,
            )
        )
    else:
        section.notes.append(f"No baseline: {tree}")
    section.detail += [
        "| users | contacts | sync states | drift found | peak RSS | time | before: peak RSS "
        "| before: time | before: drift |",
        "|---|---|---|---|---|---|---|---|---|",
        *(
            f"| {r['users']:,} | {r['contacts']:,} | {r['states']:,} | {r['drift']} | "
            f"{r['rss']:.0f} MB | {r['seconds']:.1f} s | "
            + (
                f"{r['before'][0]:.0f} MB | {r['before'][1]:.1f} s | {r['before'][2]} |"
                if "before" in r
                else "| | |"
            )
            for r in (small, large)
        ),
    ]
    section.seconds = time.perf_counter() - started
    return section


if __name__ == "__main__":
    with Peers() as peers:
        tree = functions_at(BEFORE_COMMIT, peers.workdir, "before-flat")
        for size in (int(n) for n in sys.argv[1:] or ["1000"]):
            result = one_size(peers, size, tree if isinstance(tree, Path) else None)
            print(result, file=sys.stderr, flush=True)
