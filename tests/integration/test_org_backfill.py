"""Backfill of organizations: the Management API's listings (the fake tenant, checkpoint
paging as Auth0 documents it) become companies and memberships through the snapshot rule,
against the in-memory CRM and organization state; dry run and resume.

The tenant below is the truth: every expected company, membership and role is read from
it, never from the sync.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from auth0_sync.errors import ManagementApiError
from auth0_sync.names import OrgEventType
from auth0_sync.org_events import OrgEvent
from auth0_sync.org_state import MemoryOrgStateStore
from auth0_sync.organizations import OrganizationSync, UserLink
from auth0_sync.streams.client import ManagementCredentials, TokenCache
from auth0_sync_cli.backfill.organizations import (
    OrganizationsClient,
    OrgCheckpoint,
    PlannedCompanies,
    ReadOnlyOrgState,
    backfill_organizations,
)
from auth0_sync_cli.crm_server import CrmServer
from auth0_sync_cli.local_aws import LocalResources
from auth0_sync_cli.main import main
from tests.cli_support import auth0_env, hand
from tests.fakes.auth0_mgmt import ALL_SCOPES, FakeAuth0
from tests.fakes.memory_companies import MemoryCompanies

pytestmark = pytest.mark.integration

LEASE = 30.0
PAGE = 10  # the client's `take` (100 in use): a few pages of a small tenant
SNAPSHOT_TIME = "2026-03-01T12:00:00.000000Z"
# 25 organizations: three pages of `take=10`; one with 23 members, likewise.
TENANT = {
    f"org_{n:016d}": (
        f"org-{n}",
        None if n % 3 else f"Org {n}",
        {
            f"auth0|u{m:03d}": ({"rol_admin": "admin"} if m % 4 == 0 else {})
            | ({"rol_billing": "billing"} if m % 5 == 0 else {})
            for m in range(n % 7 if n else 23)
        },
    )
    for n in range(25)
}


def _user_id_number(user_id: str) -> int:
    return int(user_id.split("|u")[1])


Orgs = dict[str, tuple[str, str | None, dict[str, dict[str, str]]]]


@contextlib.contextmanager
def tenant_of(orgs: Orgs) -> Iterator[FakeAuth0]:
    """A fake tenant with these organizations (id -> name, display name, members' roles)."""
    with FakeAuth0() as fake:
        for org_id, (name, display, members) in orgs.items():
            fake.add_organization(org_id, name, display, members)
        yield fake


@pytest.fixture
def tenant() -> Iterator[FakeAuth0]:
    with tenant_of(TENANT) as fake:
        yield fake


def _client(fake: FakeAuth0) -> OrganizationsClient:
    client = OrganizationsClient(
        ManagementCredentials(fake.base_url, token=fake.issue_token()), token_cache=TokenCache()
    )
    client.page_size = PAGE
    return client


class World:
    def __init__(self) -> None:
        self.crm = MemoryCompanies()
        self.state = MemoryOrgStateStore()
        self.crm.contacts = {f"c_{m:03d}" for m in range(200)}
        self.sync = OrganizationSync(self.crm, self.state, self.user_of, "rest")

    @staticmethod
    def user_of(user_id: str) -> UserLink:
        return UserLink(f"c_{_user_id_number(user_id):03d}")

    def memberships(self) -> dict[tuple[str, str], list[str]]:
        org_of = {cid: c["auth0_org_id"] for cid, c in self.crm.companies.items()}
        return {(org_of[co], contact): roles for (co, contact), roles in self.crm.members.items()}


def _expected() -> dict[tuple[str, str], list[str]]:
    return {
        (org_id, f"c_{_user_id_number(u):03d}"): sorted(roles.values())
        for org_id, (_, _, members) in TENANT.items()
        for u, roles in members.items()
    }


def test_the_listing_pages_through_every_organization_and_member(tenant: FakeAuth0) -> None:
    client = _client(tenant)
    assert [o["id"] for o in client.organizations()] == sorted(TENANT)
    assert client.members("org_0000000000000000") == TENANT["org_0000000000000000"][2]
    pages = [r for r in tenant.api_requests() if r.path == "/api/v2/organizations"]
    assert [r.query.get("from") for r in pages] == [
        None,
        "org_0000000000000010",
        "org_0000000000000020",
    ]
    assert all(r.query["take"] == str(PAGE) for r in pages)
    members = [r for r in tenant.api_requests() if r.path.endswith("/members")]
    assert len(members) == 3  # 23 members: three pages
    assert all(r.query["fields"] == "user_id,roles" for r in members)


def test_roles_need_their_scope_and_the_error_says_so() -> None:
    with FakeAuth0(scopes=ALL_SCOPES - {"read:organization_member_roles"}) as fake:
        fake.add_organization("org_1", "one", members={"auth0|u001": {"rol_a": "a"}})
        client = OrganizationsClient(
            ManagementCredentials(fake.base_url, "client-id", "client-secret"),
            token_cache=TokenCache(),
        )
        fake.client_id, fake.client_secret = "client-id", "client-secret"
        with pytest.raises(ManagementApiError) as caught:
            client.members("org_1")
    assert "read:organization_member_roles" in str(caught.value)


def test_a_backfill_makes_every_company_and_membership_and_a_rerun_writes_nothing(
    tenant: FakeAuth0,
) -> None:
    world = World()
    checkpoint = OrgCheckpoint(None, SNAPSHOT_TIME, "snap1")
    report = backfill_organizations(_client(tenant), world.sync, checkpoint)
    assert report.organizations == len(TENANT)
    companies = {c["auth0_org_id"]: c for c in world.crm.companies.values()}
    assert {o: (c["name"], c.get("display_name")) for o, c in companies.items()} == {
        o: (name, display) for o, (name, display, _) in TENANT.items()
    }
    assert world.memberships() == _expected()
    calls = world.crm.calls
    backfill_organizations(_client(tenant), world.sync, OrgCheckpoint(None, SNAPSHOT_TIME, "s2"))
    assert world.crm.calls == calls  # in step: no CRM call at all


def test_a_backfill_brings_drift_back_and_never_undoes_a_newer_event(
    tenant: FakeAuth0,
) -> None:
    world = World()
    backfill_organizations(_client(tenant), world.sync, OrgCheckpoint(None, SNAPSHOT_TIME, "a"))
    org = "org_0000000000000000"
    # Auth0 changes after the first backfill: one member leaves, one loses a role...
    members = tenant.org_members[org]
    del members["auth0|u001"]
    members["auth0|u000"] = {"rol_billing": "billing"}
    # ...and a live event newer than the next snapshot removes another member.
    newer = OrgEvent(
        "evt_live",
        OrgEventType.MEMBER_DELETED,
        org,
        "2026-03-02T00:00:00.000000Z",
        user_id="auth0|u002",
    )
    world.sync.apply(newer, LEASE)
    later = "2026-03-01T18:00:00.000000Z"
    backfill_organizations(_client(tenant), world.sync, OrgCheckpoint(None, later, "b"))
    expected = _expected()
    del expected[(org, "c_001")]
    expected[(org, "c_000")] = ["billing"]
    del expected[(org, "c_002")]  # still listed by the older snapshot: the event wins
    assert world.memberships() == expected


def test_a_dry_run_writes_nothing_and_counts_what_it_would_write(tenant: FakeAuth0) -> None:
    world = World()
    planned = PlannedCompanies(world.crm)
    dry = OrganizationSync(planned, ReadOnlyOrgState(world.state), World.user_of, "rest")
    report = backfill_organizations(
        _client(tenant), dry, OrgCheckpoint(None, SNAPSHOT_TIME, "d"), planned=planned
    )
    assert world.crm.companies == {}
    assert world.state.peek("org_0000000000000000").company_id is None
    assert report.planned_writes == {
        "create_company": len(TENANT),
        "put_membership": len(_expected()),
    }


def test_an_interrupted_backfill_resumes_after_the_organizations_done(
    tenant: FakeAuth0, tmp_path: Path
) -> None:
    world = World()
    path = str(tmp_path / "backfill.ckpt.orgs.json")
    first = OrgCheckpoint(path, SNAPSHOT_TIME, "resume")

    def interrupted_after_five(*args: object) -> bool:
        if len(world.crm.companies) > 5:  # as a person's Ctrl-C mid-run
            raise KeyboardInterrupt
        return MemoryCompanies.put_membership(world.crm, *args)  # type: ignore[arg-type]

    world.crm.put_membership = interrupted_after_five  # type: ignore[method-assign,assignment]
    with pytest.raises(KeyboardInterrupt):
        backfill_organizations(_client(tenant), world.sync, first)
    del world.crm.put_membership
    again = OrgCheckpoint.open(path, lambda: pytest.fail("the checkpoint keeps the time"))
    assert (again.time, again.snapshot_id) == (SNAPSHOT_TIME, "resume")
    assert 0 < len(again.done) < len(TENANT)
    report = backfill_organizations(_client(tenant), world.sync, again)
    assert report.resumed == len(first.done)
    assert world.memberships() == _expected()


def test_the_backfill_command_takes_organizations_after_the_users(
    sync_env: LocalResources,
    crm: CrmServer,
    tmp_path: Path,
    users_export: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tenant: Orgs = {
        "org_aaaaaaaaaaaaaaaa": ("alpha", "Alpha", {"auth0|u001": {"rol_1": "admin"}}),
        "org_bbbbbbbbbbbbbbbb": ("beta", None, {"auth0|u003": {}, "auth0|u004": {}}),
    }
    argv = [
        "backfill",
        "--export",
        str(users_export),
        "--organizations",
        "--rate",
        "1000",
        "--json",
    ]
    with tenant_of(tenant) as fake:
        auth0_env(fake, monkeypatch)
        assert main([*argv, "--checkpoint", str(tmp_path / "b.ckpt")]) == 0
        report = json.loads(capsys.readouterr().out)
        fake.org_members["org_aaaaaaaaaaaaaaaa"]["auth0|u001"] = {}  # a role removed since
        assert main([*argv, "--dry-run"]) == 0
        plan = json.loads(capsys.readouterr().out)

    assert report["organizations"]["organizations"] == 2
    assert (tmp_path / "b.ckpt.orgs.json").exists()
    companies = {c["auth0_org_id"]: c for c in crm.companies()}
    assert {o: (c["name"], c.get("display_name")) for o, c in companies.items()} == {
        o: (name, display) for o, (name, display, _) in tenant.items()
    }
    user_of = {c["id"]: c["auth0_user_id"] for c in crm.contacts()}
    org_of = {c["id"]: o for o, c in companies.items()}
    assert {
        (org_of[m["company_id"]], user_of[m["contact_id"]], tuple(m["roles"]))
        for m in crm.memberships()
    } == {
        (o, u, tuple(sorted(r.values())))
        for o, (_, _, members) in tenant.items()
        for u, r in members.items()
    }
    assert plan["organizations"]["planned_writes"] == {"put_membership": 1}
    assert any(m["roles"] == ["admin"] for m in crm.memberships())  # the plan wrote nothing


def test_reconcile_reports_company_and_membership_drift_both_ways_and_fix_repairs_it(
    sync_env: LocalResources,
    crm: CrmServer,
    users_export: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    alpha, beta = "org_aaaaaaaaaaaaaaaa", "org_bbbbbbbbbbbbbbbb"
    tenant: Orgs = {
        alpha: ("alpha", "Alpha", {"auth0|u001": {"rol_1": "admin"}, "auth0|u002": {}}),
        beta: ("beta", None, {"auth0|u003": {}, "auth0|u004": {"rol_2": "billing"}}),
    }
    with tenant_of(tenant) as fake:
        auth0_env(fake, monkeypatch)
        base = ["--export", str(users_export), "--rate", "1000", "--json"]
        assert main(["backfill", *base, "--organizations"]) == 0
        capsys.readouterr()
        company = {c["auth0_org_id"]: c["id"] for c in crm.companies()}
        contact = {c["auth0_user_id"]: c["id"] for c in crm.contacts()}
        # Hand edits: a rename, roles changed, a membership removed, one Auth0 lacks, and a
        # company of an organization Auth0 does not have.
        hand(crm, "PATCH", f"/companies/{company[alpha]}", {"name": "ALPHA (edited)"})
        hand(
            crm,
            "PUT",
            f"/companies/{company[alpha]}/members/{contact['auth0|u001']}",
            {"roles": []},
        )
        hand(crm, "DELETE", f"/companies/{company[beta]}/members/{contact['auth0|u003']}")
        hand(
            crm, "PUT", f"/companies/{company[beta]}/members/{contact['auth0|u001']}", {"roles": []}
        )
        hand(crm, "POST", "/companies", {"auth0_org_id": "org_gone", "name": "gone"})

        assert main(["reconcile", *base, "--organizations"]) == 1
        found = json.loads(capsys.readouterr().out)["organizations"]
        assert main(["reconcile", *base, "--organizations", "--fix"]) == 0
        fixed = json.loads(capsys.readouterr().out)["organizations"]

    assert {k: n for k, n in found["counts"].items() if n} == {
        "company_field": 1,
        "company_orphan": 1,
        "membership_missing": 1,
        "membership_roles": 1,
        "membership_extra": 1,
    }
    assert fixed["left_for_a_person"] == []  # compared again after the fix
    names = {c["auth0_org_id"]: (c["name"], c["status"]) for c in crm.companies()}
    assert names == {
        alpha: ("alpha", "active"),
        beta: ("beta", "active"),
        "org_gone": ("gone", "deactivated"),
    }
    user_of = {v: k for k, v in contact.items()}
    org_of = {v: k for k, v in company.items()}
    assert {
        (org_of[m["company_id"]], user_of[m["contact_id"]], tuple(m["roles"]))
        for m in crm.memberships()
    } == {
        (o, u, tuple(sorted(r.values())))
        for o, (_, _, members) in tenant.items()
        for u, r in members.items()
    }
