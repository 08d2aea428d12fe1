"""Organizations at scale: 2,000 users in 50 organizations, a shuffled stream, 0 mismatches.

    PYTHONPATH=functions:. python -m bench --only orgs

The history is tests/integration/test_organizations_process.generate's (signups, half of
them after their memberships; organizations created, renamed, one deleted; members added
and removed; roles assigned and removed; some users deleted), with Auth0's resulting
state beside it: the truth. The stream is the history with a fifth of its events moved
to random places (out of order) and 20% more deliveries of random events (duplicates),
through the sync service that `auth0-sync process` runs (state in memory) against the
reference CRM (contract 1.2, in this process). Counted per delivery: the CRM calls of
the outcome. Compared at the end, from the CRM's own listing: every contact, company,
membership and role against the truth.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections import Counter
from typing import Any

from auth0_sync.names import SERVICE_NAME, Env
from auth0_sync.runtime import build_service
from auth0_sync.settings import Settings
from auth0_sync.state import MemorySyncStateStore
from auth0_sync_cli.crm_server import CrmServer
from auth0_sync_cli.runner import LocalContext
from bench.report import Row, Section
from bench.servers import Peers
from tests.integration.test_organizations_process import Generated, generate

SEED = 24
TARGET_CALLS = 1.0


def shuffled(events: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """A fifth of the events moved to random places, then 20% duplicates anywhere."""
    stream = list(events)
    moved = rng.sample(range(len(stream)), len(stream) // 5)
    taken = [stream[i] for i in sorted(moved)]
    for index in sorted(moved, reverse=True):
        del stream[index]
    for event in taken:
        stream.insert(rng.randrange(len(stream) + 1), event)
    for event in rng.sample(events, len(events) // 5):
        stream.insert(rng.randrange(len(stream) + 1), event)
    return stream


def mismatches(crm: CrmServer, generated: Generated) -> Counter[str]:
    """What differs from the truth, by kind (read from the CRM's own listing)."""
    found: Counter[str] = Counter()
    contacts = {c["auth0_user_id"]: c for c in crm.contacts()}
    for user in generated.users:
        contact = contacts.get(user)
        email = f"{user.split('|')[1]}@example.com"
        if user in generated.deleted:
            found["contacts"] += contact is not None and contact.get("status") == "active"
        else:
            found["contacts"] += contact is None or contact.get("email") != email
    found["contacts"] += len(set(contacts) - set(generated.users))
    companies = {c["auth0_org_id"]: c for c in crm.companies()}
    user_of = {c["id"]: u for u, c in contacts.items()}
    expected: set[tuple[str, str, tuple[str, ...]]] = set()
    for org_id, truth in generated.orgs.items():
        company = companies.get(org_id)
        if truth.deleted:
            found["companies"] += company is not None and company.get("status") == "active"
            continue
        if company is None:
            found["companies"] += 1
            continue
        found["companies"] += (
            company.get("status") != "active"
            or company.get("name") != truth.name
            or company.get("display_name") != truth.display_name
        )
        expected |= {(org_id, u, tuple(sorted(r))) for u, r in truth.members.items()}
    org_of = {c["id"]: o for o, c in companies.items()}
    actual = {
        (org_of.get(m["company_id"], "?"), user_of.get(m["contact_id"], "?"), tuple(m["roles"]))
        for m in crm.memberships()
    }
    found["memberships"] += len(expected ^ actual)
    return found


def run(
    _peers: Peers | None = None, *, users: int = 2000, orgs: int = 50, steps: int = 6000
) -> Section:
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
    logging.getLogger(SERVICE_NAME).setLevel(logging.ERROR)  # made at import: set it here
    generated = generate(SEED, n_orgs=orgs, n_users=users, steps=steps, deletes=users // 20)
    rng = random.Random(SEED)
    stream = shuffled(generated.events, rng)
    calls: Counter[str] = Counter()
    count: Counter[str] = Counter()
    wasted = 0  # CRM calls of duplicate deliveries and stale events
    outcomes: Counter[str] = Counter()
    seen: set[str] = set()
    started = time.perf_counter()
    with CrmServer() as crm:
        settings = Settings.from_env({Env.CRM_BASE_URL: crm.base_url, Env.CRM_API_TOKEN: crm.token})
        service = build_service(settings, state=MemorySyncStateStore())
        for raw in stream:
            kind = "organization" if raw["detail"]["type"].startswith("organization.") else "user"
            outcome = service.handle(raw, LocalContext("bench"))
            calls[kind] += outcome.crm_calls
            count[kind] += 1
            outcomes[f"{outcome.status}:{outcome.reason}"] += 1
            if raw["id"] in seen or outcome.reason in ("stale", "duplicate"):
                wasted += outcome.crm_calls
            seen.add(raw["id"])
        seconds = time.perf_counter() - started
        wrong = mismatches(crm, generated)
    per_org = calls["organization"] / count["organization"]
    members = sum(len(t.members) for t in generated.orgs.values() if not t.deleted)
    section = Section(
        title="Organizations: 2,000 users in 50 organizations, shuffled",
        method=(
            f"{len(generated.events)} events of {users} users ({len(generated.deleted)} deleted) "
            f"in {orgs} organizations (one deleted; {members} memberships at the end) from "
            "tests/integration/test_organizations_process.generate (seed "
            f"{SEED}); a fifth moved out of order and 20% duplicated ({len(stream)} "
            "deliveries), through the sync service `auth0-sync process` runs (state in "
            "memory) against the reference CRM in this process; the CRM's listing compared "
            "with the generator's truth."
        ),
        runs="1 run",
    )
    total_wrong = sum(wrong.values())
    section.rows += [
        Row(
            figure="Organizations stream: mismatches (contacts, companies, memberships)",
            ours=f"{total_wrong} ({wrong['contacts']}, {wrong['companies']}, "
            f"{wrong['memberships']})",
            baseline="n/a",
            ratio=None,
            target="0",
            met=total_wrong == 0,
        ),
        Row(
            figure="CRM calls per organization event",
            ours=f"{per_org:.3f}",
            baseline="n/a",
            ratio=None,
            target=f"≤ {TARGET_CALLS:.1f}; duplicates and stale 0",
            met=per_org <= TARGET_CALLS and wasted == 0,
        ),
    ]
    section.detail += [
        "| deliveries | events | CRM calls | per event |",
        "|---|---|---|---|",
        *(
            f"| {kind} | {count[kind]} | {calls[kind]} | {calls[kind] / count[kind]:.3f} |"
            for kind in ("organization", "user")
        ),
        "",
        f"CRM calls of duplicate deliveries and stale events: {wasted}. Wall time "
        f"{seconds:.1f} s. Outcomes: "
        + ", ".join(f"{k} {n}" for k, n in sorted(outcomes.items()))
        + ".",
    ]
    section.notes += [
        "A membership that arrives before its user's contact waits (`membership_pending`) "
        "and is written after the user's event: no dead letter, no extra call.",
        "Not asserted by a test: tests/integration/test_organizations_process.py runs the "
        "same generator, smaller, through `auth0-sync process` and checks the same truth.",
    ]
    return section


if __name__ == "__main__":
    from bench.report import render

    print(render([run()], quick=False, total_seconds=0))
