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
import sys
from collections import Counter
from typing import Any

from auth0_sync.names import CrmType
from auth0_sync_cli.fakes.hubspot import FakeHubSpot
from auth0_sync_cli.fakes.salesforce import (
    FakeSalesforce,
)
from bench.backfill import PREEXISTING_SHARE, exported_user, write_export
from bench.report import Row, Section
from bench.servers import Peers, destination, point_at, run_command

WORKERS = 8
TARGET_PER_USER = 0.1


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
    target = destination(peers, crm_type)
    if isinstance(target.fake, FakeHubSpot):
        for n in stale:
            target.fake.seed(
                email=f"bench{n}@example.com", lastname="Stale" if n % 20 else f"User{n}"
            )
        target.fake.requests.clear()
    elif isinstance(target.fake, FakeSalesforce):
        for n in stale:
            target.fake.seed(
                Email=f"bench{n}@example.com", LastName="Stale" if n % 20 else f"User{n}"
            )
        target.fake.api_used = 0
    else:
        peers.crm.seed(
            [
                {"email": f"bench{n}@example.com", "family_name": "Stale" if n % 20 else f"User{n}"}
                for n in stale
            ]
        )
        peers.crm.reset_stats()
    count = target.requests
    args = ["backfill", "--export", str(export), "--rate", "100000", "--workers", str(WORKERS)]
    try:
        point_at(env, crm_type, target)
        seconds, report = run_command([*args, *([] if batch else ["--no-batch"])], env)
        wrong, doubled = wrong_contacts(size, target.read())
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
        target.stop()


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
