"""The demo's organizations: what the story says of them, and their reconciliation.

Only the reference CRM (the generic contract 1.2) has companies: with it the sample
stream carries `DEMO_ORGANIZATIONS` organizations (`sample_orgs`), and the reconciliation
compares the CRM's companies and memberships with the generator's truth, both ways (a
company or a membership the truth lacks counts as much as one missing).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from auth0_sync_cli.sample import SampleStream

DEMO_ORGANIZATIONS = 5


def story_line(sample: SampleStream) -> str | None:
    """The generation step's line about organizations (None: none in the stream)."""
    if not sample.organizations:
        return None
    c = sample.counts
    return (
        f"{len(sample.organizations)} Auth0 organizations ({c['organization_events']} events): "
        "members joining and leaving, roles assigned and removed, renames, one organization "
        f"deleted; {c['memberships_before_their_user']} memberships arrive before their user"
    )


def org_mismatches(
    sample: SampleStream,
    companies: list[dict[str, Any]],
    memberships: list[dict[str, Any]],
    contact_of: Mapping[str, str],
) -> list[str]:
    """Every difference between the CRM's companies and memberships and the truth."""
    problems: list[str] = []
    by_org = {str(c.get("auth0_org_id")): c for c in companies}
    expected: set[tuple[str, str, tuple[str, ...]]] = set()
    for org_id, truth in sorted(sample.organizations.items()):
        company = by_org.get(org_id)
        if truth.deleted:
            if company is not None and company.get("status") != "deactivated":
                problems.append(f"company of deleted {org_id} is {company.get('status')}")
            continue
        if company is None:
            problems.append(f"no company for {org_id}")
            continue
        got = (company.get("name"), company.get("display_name"), company.get("status"))
        if got != (truth.name, truth.display_name, "active"):
            problems.append(f"company of {org_id} is {got}")
        for user_id, roles in truth.members.items():
            contact = contact_of.get(user_id)
            expected.add((org_id, contact or f"(no contact of {user_id})", tuple(sorted(roles))))
    for org_id in sorted(set(by_org) - set(sample.organizations)):
        problems.append(f"company {by_org[org_id].get('id')} of no organization ({org_id})")
    org_of = {str(c["id"]): str(c.get("auth0_org_id")) for c in companies}
    actual = {
        (org_of.get(str(m["company_id"]), "?"), str(m["contact_id"]), tuple(sorted(m["roles"])))
        for m in memberships
    }
    problems += [f"membership missing: {m}" for m in sorted(expected - actual)]
    problems += [f"membership not in Auth0: {m}" for m in sorted(actual - expected)]
    return problems


def org_rows(
    sample: SampleStream,
    server: Any,
    contacts: list[dict[str, Any]],
    shown: int,
) -> tuple[list[tuple[str, str, str]], int]:
    """The reconciliation's rows about organizations, and how many mismatches."""
    listing: Callable[[], list[dict[str, Any]]] | None = getattr(server, "companies", None)
    if not sample.organizations or listing is None:
        return [], 0
    companies = listing()
    memberships: list[dict[str, Any]] = server.memberships()
    contact_of = {str(c["auth0_user_id"]): str(c["id"]) for c in contacts if c.get("auth0_user_id")}
    problems = org_mismatches(sample, companies, memberships, contact_of)
    live = [t for t in sample.organizations.values() if not t.deleted]
    rows = [
        (
            "Organizations (truth)",
            str(len(sample.organizations)),
            f"{len(live)} live, {len(sample.organizations) - len(live)} deleted; "
            f"{sum(len(t.members) for t in live)} memberships, "
            f"{sum(len(r) for t in live for r in t.members.values())} roles",
        ),
        (
            "CRM companies",
            str(len(companies)),
            f"{sum(c.get('status') == 'active' for c in companies)} active; "
            f"{len(memberships)} memberships",
        ),
        (
            "Organization mismatches",
            str(len(problems)),
            "every company and membership (with its roles) against the truth, both ways",
        ),
    ]
    rows += [("  mismatch", "", problem) for problem in problems[:shown]]
    return rows, len(problems)
