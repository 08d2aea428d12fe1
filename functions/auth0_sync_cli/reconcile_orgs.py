"""`auth0-sync reconcile --organizations`: companies and memberships against Auth0, both ways.

What should be: every organization the Management API lists, its members and their roles
(`backfill.organizations.OrganizationsClient`). What is: the CRM's companies and each
company's memberships (contract 1.2, `GET /companies`, `GET /companies/{id}/members`),
with the contacts' `auth0_user_id` naming the users. Reported:

- `company_missing`: an organization with no company; `company_field`: a company whose
  `name`/`display_name` differs; `company_inactive`: a listed organization's company is
  deactivated; `company_orphan`: an active company whose organization Auth0 no longer has;
- `membership_missing`, `membership_roles`: a member with no membership, or other roles;
  `membership_extra`: a membership Auth0 does not have (the other way round).
A member whose user has no contact is the users' reconcile's concern (not counted here).

`--fix`: every organization runs through the backfill's snapshot (the sync's own rules
and state), then what a hand edit left behind, which the state cannot see, is written
directly to the truth: the company's fields and status, the membership and its roles; an
orphan company is deactivated and its memberships removed.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from auth0_sync.destinations import Listing
from auth0_sync.destinations.companies import COMPANY_ACTIVE, COMPANY_DEACTIVATED, Company
from auth0_sync.destinations.rest import RestCrmClient
from auth0_sync.destinations.rest_companies import RestCompanies
from auth0_sync.errors import ConfigError, ManagementApiError
from auth0_sync.events import iso
from auth0_sync.org_state import DynamoOrgStateStore
from auth0_sync.organizations import OrganizationSync
from auth0_sync.runtime import build_organizations
from auth0_sync.settings import Settings
from auth0_sync.state import DynamoSyncStateStore
from auth0_sync.streams.client import ManagementCredentials
from auth0_sync_cli.backfill.organizations import (
    OrganizationsClient,
    OrgCheckpoint,
    OrgLister,
    backfill_organizations,
    utc_now,
)
from auth0_sync_cli.backfill.sweep import every_contact
from auth0_sync_cli.exits import CommandError

ORG_KINDS = (
    "company_missing",
    "company_field",
    "company_inactive",
    "company_orphan",
    "membership_missing",
    "membership_roles",
    "membership_extra",
)


@dataclass(frozen=True)
class OrgDrift:
    kind: str
    org_id: str
    user_id: str | None = None
    detail: str = ""


@dataclass
class AuthOrg:
    name: str | None
    display_name: str | None
    members: dict[str, list[str]]  # user id -> role names, sorted


@dataclass
class OrgComparison:
    organizations: int = 0
    companies: int = 0
    drift: list[OrgDrift] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        found = Counter(d.kind for d in self.drift)
        return {kind: found[kind] for kind in ORG_KINDS}

    def to_dict(self) -> dict[str, Any]:
        return {
            "organizations": self.organizations,
            "companies": self.companies,
            "in_step": not self.drift,
            "counts": self.counts(),
            "drift": [asdict(d) for d in self.drift],
        }


def auth0_organizations(lister: OrgLister) -> dict[str, AuthOrg]:
    return {
        str(org["id"]): AuthOrg(
            org.get("name"),
            org.get("display_name"),
            {u: sorted(set(r.values())) for u, r in lister.members(str(org["id"])).items()},
        )
        for org in lister.organizations()
    }


def compare_organizations(
    truth: dict[str, AuthOrg], companies: RestCompanies, contact_of: dict[str, str]
) -> OrgComparison:
    """`contact_of`: user id -> contact id (the CRM's contacts, by `auth0_user_id`)."""
    listed = companies.list_companies()
    found = OrgComparison(len(truth), len(listed))
    by_org: dict[str, Company] = {}
    for item in listed:
        org_id = item.get("auth0_org_id")
        if isinstance(org_id, str) and org_id:
            by_org.setdefault(org_id, item)
    user_of = {contact: user for user, contact in contact_of.items()}
    for org_id, listed_company in sorted(by_org.items()):
        status = listed_company.get("status", COMPANY_ACTIVE)
        if org_id not in truth and status != COMPANY_DEACTIVATED:
            found.drift.append(OrgDrift("company_orphan", org_id, detail=str(listed_company["id"])))
    for org_id, org in sorted(truth.items()):
        company = by_org.get(org_id)
        if company is None:
            found.drift.append(OrgDrift("company_missing", org_id))
            continue
        if company.get("status", COMPANY_ACTIVE) == COMPANY_DEACTIVATED:
            found.drift.append(OrgDrift("company_inactive", org_id, detail=str(company["id"])))
        for name, want in (("name", org.name or org_id), ("display_name", org.display_name)):
            if company.get(name) != want:
                found.drift.append(OrgDrift("company_field", org_id, detail=name))
        have = companies.members_of(str(company["id"]))
        for user_id, roles in sorted(org.members.items()):
            contact = contact_of.get(user_id)
            if contact is None:
                continue  # no contact: the users' reconcile says so
            if contact not in have:
                found.drift.append(OrgDrift("membership_missing", org_id, user_id))
            elif have[contact] != roles:
                detail = f"{','.join(have[contact])} -> {','.join(roles)}"
                found.drift.append(OrgDrift("membership_roles", org_id, user_id, detail))
        members = {contact_of.get(u) for u in org.members}
        for contact in sorted(set(have) - members):
            found.drift.append(OrgDrift("membership_extra", org_id, user_of.get(contact), contact))
    return found


@dataclass
class OrgFix:
    outcomes: Counter[str] = field(default_factory=Counter)
    direct: Counter[str] = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        return {"outcomes": dict(sorted(self.outcomes.items())), "direct": dict(self.direct)}


def fix_organizations(
    lister: OrgLister,
    sync: OrganizationSync,
    companies: RestCompanies,
    truth: dict[str, AuthOrg],
    contact_of: dict[str, str],
    checkpoint: OrgCheckpoint,
    lease_seconds: float,
) -> OrgFix:
    """The snapshot of every organization, then the hand edits the state cannot see."""
    repaired = OrgFix()
    report = backfill_organizations(lister, sync, checkpoint, lease_seconds=lease_seconds)
    repaired.outcomes.update(report.outcomes)
    left = compare_organizations(truth, companies, contact_of)
    by_org = {
        str(c.get("auth0_org_id")): c for c in companies.list_companies() if c.get("auth0_org_id")
    }
    for drift in left.drift:
        company = by_org.get(drift.org_id)
        if company is None:
            continue  # still missing after the snapshot: left for a person
        company_id = str(company["id"])
        org = truth.get(drift.org_id)
        if drift.kind == "company_orphan":
            for contact in companies.members_of(company_id):
                companies.delete_membership(company_id, contact)
            companies.update_company(company_id, {"status": COMPANY_DEACTIVATED})
        elif org is None:
            continue
        elif drift.kind == "company_inactive":
            companies.update_company(company_id, {"status": COMPANY_ACTIVE})
        elif drift.kind == "company_field":
            want = org.name or drift.org_id if drift.detail == "name" else org.display_name
            companies.update_company(company_id, {drift.detail: want})
        elif drift.kind in ("membership_missing", "membership_roles") and drift.user_id:
            roles = org.members[drift.user_id]
            companies.put_membership(company_id, contact_of[drift.user_id], roles)
        elif drift.kind == "membership_extra":
            companies.delete_membership(company_id, drift.detail)
        repaired.direct[drift.kind] += 1
    return repaired


def reconcile_organizations(
    settings: Settings,
    crm: Listing,
    environ: Mapping[str, str],
    *,
    repair: bool,
    lease_seconds: float,
) -> tuple[dict[str, Any], bool]:
    """The `--organizations` part of `reconcile`: its report, and whether drift is left."""
    if not isinstance(crm, RestCrmClient):
        raise CommandError(
            f"--organizations: the {settings.crm_type} destination has no companies yet"
        )
    companies = RestCompanies(crm)
    try:
        lister = OrganizationsClient(ManagementCredentials.from_env(environ))
        truth = auth0_organizations(lister)
    except ConfigError as exc:
        raise CommandError(f"--organizations lists them with the Management API: {exc}") from exc
    except ManagementApiError as exc:
        raise CommandError(str(exc.message)) from exc
    contact_of = {
        str(c["auth0_user_id"]): str(c["id"]) for c in every_contact(crm) if c.get("auth0_user_id")
    }
    found = compare_organizations(truth, companies, contact_of)
    document = found.to_dict()
    left = found
    if repair and found.drift:
        users = DynamoSyncStateStore(settings.state_table)
        sync = build_organizations(
            settings, crm, users, DynamoOrgStateStore(settings.state_table, users.client)
        )
        checkpoint = OrgCheckpoint(None, iso(utc_now()), f"reconcile-{uuid.uuid4().hex[:12]}")
        repaired = fix_organizations(
            lister, sync, companies, truth, contact_of, checkpoint, lease_seconds
        )
        left = compare_organizations(truth, companies, contact_of)
        document["fix"] = repaired.to_dict()
        document["left_for_a_person"] = [asdict(d) for d in left.drift]
    return document, bool(left.drift)


def render(document: Mapping[str, Any]) -> str:
    lines = [
        f"organizations: {document['organizations']} in Auth0, {document['companies']} "
        "companies in the CRM"
    ]
    if document["in_step"]:
        lines.append("  in step: no company or membership drift")
    else:
        counts = ", ".join(f"{k} {n}" for k, n in document["counts"].items() if n)
        lines.append(f"  drift: {counts}")
        lines += [
            f"  {d['kind']:<20} {d['org_id']} {d['user_id'] or '-'} {d['detail']}".rstrip()
            for d in document["drift"]
        ]
    if "fix" in document:
        left = document["left_for_a_person"]
        lines.append(
            f"  fix: snapshots {document['fix']['outcomes']}, direct {document['fix']['direct']}"
        )
        lines.append("  in step after the fix" if not left else f"  left for a person: {len(left)}")
    return "\n".join(lines)
