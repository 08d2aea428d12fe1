"""CRM requests per user of a backfill, single calls (`--no-batch`) against batch calls (the
default), for each destination: the reference CRM (contract 1.2), the HubSpot fake, the
Salesforce fake.

`auth0-sync backfill` runs as a user runs it (a fresh process, a gzipped export,
local-aws state) on the same export of N users, one in ten already in the CRM by email
(half of those with a stale family name). Requests are counted by the CRM itself (the
reference CRM's stats, the HubSpot fake's request log, the Salesforce fake's API usage, the
token request excluded). Afterwards every exported user must have exactly one contact
holding its email and family name, and no email two contacts (read from the CRM's own
store, not through our code). No rate limit: requests are counted, not timed. REST also
runs batched with no user in the CRM beforehand: contract 1.2's batch operations carry no
If-Match, so each link is a GET and a guarded PATCH, and that row shows the batches alone.

    python -m bench.bulk 2000 [rest hubspot salesforce rest-unlinked]
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3

from auth0_sync.names import CrmType, Env
from auth0_sync_cli.fakes.hubspot import FakeHubSpot, hubspot_contact
from auth0_sync_cli.fakes.salesforce import (
    CLIENT_ID,
    CLIENT_SECRET,
    FakeSalesforce,
    salesforce_contact,
)
from bench.backfill import PREEXISTING_SHARE, exported_user, write_export
from bench.report import Row, Section
from bench.servers import Peers

REPO_ROOT = Path(__file__).resolve().parent.parent
WORKERS = 8
TARGET_PER_USER = 0.1


def _backfill(env: dict[str, str], export: Path, batch: bool) -> tuple[float, dict[str, Any]]:
    args = ["backfill", "--export", str(export), "--rate", "100000", "--workers", str(WORKERS)]
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "auth0_sync_cli.main",
            *args,
            *([] if batch else ["--no-batch"]),
            "--json",
        ],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode not in (0, 1):
        raise RuntimeError(f"backfill failed ({done.returncode}): {done.stderr[-2000:]}")
    return time.perf_counter() - started, json.loads(done.stdout)


def wrong_contacts(size: int, held: list[dict[str, Any]]) -> tuple[int, int]:
    """(users without exactly one contact holding their email and family name, emails
    held by more than one contact)."""
    by_owner: dict[str, list[dict[str, Any]]] = {}
    for contact in held:
        if contact.get("auth0_user_id"):
            by_owner.setdefault(str(contact["auth0_user_id"]), []).append(contact)
    wrong = 0
    for n in range(size):
        user = exported_user(n)
        found = by_owner.get(user["user_id"], [])
        if len(found) != 1 or any(
            str(found[0].get(f) or "").lower() != str(user[f]).lower()
            for f in ("email", "family_name")
        ):
            wrong += 1
    emails = Counter(str(c.get("email") or "").lower() for c in held)
    return wrong, sum(1 for n in emails.values() if n > 1)


def one_run(
    peers: Peers, crm_type: CrmType, size: int, batch: bool, *, linked: bool = True
) -> dict[str, Any]:
    """One backfill; `linked`: one user in ten already in the CRM by email (else none)."""
    peers.reset()
    env = peers.handler_environment()
    env["POWERTOOLS_LOG_LEVEL"] = "ERROR"
    export = write_export(peers.workdir / f"bulk-{size}.json.gz", size)
    stale = list(range(0, size, PREEXISTING_SHARE)) if linked else []
    read: Callable[[], list[dict[str, Any]]]
    count: Callable[[], int]
    fake: FakeHubSpot | FakeSalesforce | None = None
    if crm_type is CrmType.REST:
        crm = peers.crm
        crm.seed(
            [
                {"email": f"bench{n}@example.com", "family_name": "Stale" if n % 20 else f"User{n}"}
                for n in stale
            ]
        )
        crm.reset_stats()
        read, count = crm.contacts, lambda: int(crm.stats()["total"])
    elif crm_type is CrmType.HUBSPOT:
        # A window wide enough not to pace: requests are counted here, not timed.
        hubspot = FakeHubSpot(window_calls=1_000_000, window_ms=1000).start()
        fake, secret = hubspot, json.dumps({"token": hubspot.token})
        for n in stale:
            hubspot.seed(email=f"bench{n}@example.com", lastname="Stale" if n % 20 else f"User{n}")
        hubspot.requests.clear()
        read = lambda: [hubspot_contact(r) for r in hubspot.contacts()]  # noqa: E731
        count = lambda: len(hubspot.requests)  # noqa: E731
    else:
        org = FakeSalesforce(daily_limit=10_000_000).start()
        fake, secret = org, json.dumps({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
        for n in stale:
            org.seed(Email=f"bench{n}@example.com", LastName="Stale" if n % 20 else f"User{n}")
        org.api_used = 0
        read = lambda: [salesforce_contact(r) for r in org.contacts()]  # noqa: E731
        count = lambda: int(org.api_used)  # noqa: E731
    try:
        if fake is not None:
            secrets = boto3.client(
                "secretsmanager",
                endpoint_url=env["AWS_ENDPOINT_URL"],
                region_name=env.get("AWS_DEFAULT_REGION", "us-east-1"),
                aws_access_key_id=env.get("AWS_ACCESS_KEY_ID", "testing"),
                aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY", "testing"),
            )
            secrets.put_secret_value(SecretId=env[Env.CRM_TOKEN_SECRET_ARN], SecretString=secret)
            env[Env.CRM_TYPE] = str(crm_type)
            env[Env.CRM_BASE_URL] = fake.base_url
        seconds, report = _backfill(env, export, batch)
        wrong, doubled = wrong_contacts(size, read())
        return {
            "destination": str(crm_type),
            "batch": batch,
            "linked": linked,
            "users": size,
            "requests": count(),
            "per_user": count() / size,
            "seconds": seconds,
            "counts": report["counts"],
            "mismatches": wrong,
            "duplicates": doubled,
        }
    finally:
        if fake is not None:
            fake.stop()


def run(peers: Peers, *, size: int = 2000) -> Section:
    section = Section(
        title="Bulk: CRM requests per user, single calls vs batch calls",
        method=(
            f"`auth0-sync backfill --workers {WORKERS}` and `... --no-batch` on one export of "
            f"{size:,} users (one in {PREEXISTING_SHARE} already in the CRM by email), local-aws "
            "state, no rate limit; requests counted by each CRM itself."
        ),
        runs="1 per destination and mode",
    )
    section.detail += [
        "| destination | mode | requests | per user | time | create | link | update | "
        "mismatches | duplicates |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for crm_type in (CrmType.REST, CrmType.HUBSPOT, CrmType.SALESFORCE):
        single, batched = (one_run(peers, crm_type, size, b) for b in (False, True))
        # REST without links: contract 1.2's batches carry no If-Match, so each link is a
        # GET and a guarded PATCH; with no user in the CRM beforehand, what batches cost.
        unlinked = (
            [one_run(peers, crm_type, size, True, linked=False)] if crm_type is CrmType.REST else []
        )
        for r in (single, batched, *unlinked):
            c = r["counts"]
            mode = "batch" if r["batch"] else "single"
            section.detail.append(
                f"| {r['destination']} | {mode if r['linked'] else mode + ', no user in the CRM'}"
                f" | {r['requests']:,} | {r['per_user']:.3f} | {r['seconds']:.1f} s | "
                f"{c['create']:,} | {c['link']:,} | {c['update']:,} | {r['mismatches']} | "
                f"{r['duplicates']} |"
            )
        clean = batched["mismatches"] == 0 and batched["duplicates"] == 0
        section.rows.append(
            Row(
                f"Backfill {size:,} users, CRM requests per user ({crm_type})",
                f"{batched['per_user']:.3f}",
                f"{single['per_user']:.3f}",
                batched["per_user"] / single["per_user"] if single["per_user"] else None,
                f"≤ {TARGET_PER_USER}, 0 mismatches",
                batched["per_user"] <= TARGET_PER_USER and clean,
            )
        )
        for r in unlinked:
            section.rows.append(
                Row(
                    f"Backfill {size:,} users, CRM requests per user ({crm_type}, no user "
                    "in the CRM before)",
                    f"{r['per_user']:.3f}",
                    f"{single['per_user']:.3f} (single, one in {PREEXISTING_SHARE} linked)",
                    r["per_user"] / single["per_user"] if single["per_user"] else None,
                    f"≤ {TARGET_PER_USER}, 0 mismatches",
                    r["per_user"] <= TARGET_PER_USER
                    and r["mismatches"] == 0
                    and r["duplicates"] == 0,
                )
            )
    return section


if __name__ == "__main__":
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    # A destination, or `rest-unlinked`: its batched run with no user in the CRM before.
    modes = sys.argv[2:] or ["rest", "hubspot", "salesforce"]
    with Peers() as peers:
        for name in modes:
            if name.endswith("-unlinked"):
                crm_type = CrmType(name.removesuffix("-unlinked"))
                print(json.dumps(one_run(peers, crm_type, size, True, linked=False)), flush=True)
                continue
            for batch in (True, False):
                result = one_run(peers, CrmType(name), size, batch)
                print(json.dumps(result), flush=True)
