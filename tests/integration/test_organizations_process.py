"""Organizations through `auth0-sync process` against every destination: the reference
CRM (contract 1.2), the fake HubSpot (companies, v4 associations with a label per role)
and the fake Salesforce org (Accounts, AccountContactRelations with Roles).

A small generator makes a valid Auth0 history of users and organizations (signups, some
after their memberships; organizations created, renamed, one deleted; members added and
removed; roles assigned and removed) and keeps Auth0's resulting state beside it: the
truth. The stream is shuffled with a fifth duplicated; the CRM's companies, memberships
and roles must end equal to the truth, read from each CRM by hand, with nothing
dead-lettered.
"""

from __future__ import annotations

import contextlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from auth0_sync.names import CrmType, Env
from auth0_sync_cli import sample
from auth0_sync_cli.crm_server import CrmServer
from auth0_sync_cli.fakes.hubspot import FakeHubSpot
from auth0_sync_cli.fakes.salesforce import CLIENT_ID, CLIENT_SECRET, FakeSalesforce
from auth0_sync_cli.main import main
from tests.builders import at, bus_event, created, deleted

pytestmark = pytest.mark.integration

ROLES = {"rol_admin": "admin", "rol_billing": "billing", "rol_viewer": "viewer"}


@dataclass
class OrgTruth:
    name: str
    display_name: str | None
    deleted: bool = False
    members: dict[str, set[str]] = field(default_factory=dict)


@dataclass
class Generated:
    events: list[dict[str, Any]]
    orgs: dict[str, OrgTruth]
    users: list[str]
    deleted: set[str] = field(default_factory=set)  # users deleted (Auth0 ends memberships)


def _org_obj(org_id: str, truth: OrgTruth) -> dict[str, Any]:
    # Shape: node-auth0 Management.EventStreamCloudEventOrgCreatedObject.
    obj: dict[str, Any] = {"id": org_id, "name": truth.name, "metadata": {}}
    if truth.display_name is not None:
        obj["display_name"] = truth.display_name
    return obj


def _member_obj(org_id: str, user_id: str, role_id: str | None = None) -> dict[str, Any]:
    # Shape: ...OrgMemberAddedObject / ...OrgMemberRoleAssignedObject.
    obj: dict[str, Any] = {"organization": {"id": org_id}, "user": {"user_id": user_id}}
    if role_id is not None:
        obj["role"] = {"id": role_id, "name": ROLES[role_id]}
    return obj


def generate(
    seed: int, n_orgs: int = 3, n_users: int = 8, steps: int = 60, deletes: int = 0
) -> Generated:
    """`deletes`: that many users who signed up first are deleted at the end."""
    rng = random.Random(seed)
    users = [f"auth0|user{n:03d}" for n in range(n_users)]
    orgs = {f"org_{n:016d}": OrgTruth(f"org-{n}", f"Org {n}") for n in range(n_orgs)}
    events: list[dict[str, Any]] = []
    minute = 0.0

    def tick() -> Any:
        nonlocal minute
        minute += 1
        return at(minute)

    # Half the users sign up first, the others late (after memberships name them).
    late_users = set(users[n_users // 2 :])
    for user in users:
        if user not in late_users:
            events.append(created(user, tick(), email=f"{user.split('|')[1]}@example.com"))
    for org_id, truth in orgs.items():
        events.append(bus_event("organization.created", _org_obj(org_id, truth), when=tick()))
    for _ in range(steps):
        org_id = rng.choice(list(orgs))
        truth = orgs[org_id]
        user = rng.choice(users)
        roles = truth.members.get(user)
        kind = rng.choice(["rename", "member", "role", "role", "role"])
        if kind == "rename":
            truth.display_name = rng.choice([f"Org {org_id[-1]} Ltd", None, "Renamed"])
            events.append(bus_event("organization.updated", _org_obj(org_id, truth), when=tick()))
        elif kind == "member" or roles is None:
            if roles is None:
                truth.members[user] = set()
                etype = "organization.member.added"
            else:
                del truth.members[user]
                etype = "organization.member.deleted"
            events.append(bus_event(etype, _member_obj(org_id, user), when=tick()))
        else:
            role_id = rng.choice(sorted(ROLES))
            removing = ROLES[role_id] in roles
            (roles.discard if removing else roles.add)(ROLES[role_id])
            etype = f"organization.member.role.{'deleted' if removing else 'assigned'}"
            events.append(bus_event(etype, _member_obj(org_id, user, role_id), when=tick()))
    for user in sorted(late_users):
        events.append(created(user, tick(), email=f"{user.split('|')[1]}@example.com"))
    gone = set(rng.sample(sorted(set(users) - late_users), deletes))
    for user in sorted(gone):
        events.append(deleted(user, tick()))
        for truth in orgs.values():
            truth.members.pop(user, None)
    doomed = sorted(orgs)[-1]
    orgs[doomed].deleted = True
    events.append(bus_event("organization.deleted", _org_obj(doomed, orgs[doomed]), when=tick()))
    return Generated(events, orgs, users, gone)


@dataclass
class CrmView:
    """What a CRM holds, read by hand in the generic terms of the truth."""

    contacts: dict[str, str]  # auth0 user id -> contact id
    companies: dict[str, dict[str, Any]]  # auth0 org id -> {id, name, display_name, status}
    memberships: set[tuple[str, str, tuple[str, ...]]]  # company, contact, sorted roles


def _text(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def read_rest(crm: CrmServer) -> CrmView:
    return CrmView(
        {c["auth0_user_id"]: c["id"] for c in crm.contacts()},
        {
            c["auth0_org_id"]: {
                "id": c["id"],
                "name": c["name"],
                "display_name": _text(c.get("display_name")),
                "status": c["status"],
            }
            for c in crm.companies()
        },
        {(m["company_id"], m["contact_id"], tuple(sorted(m["roles"]))) for m in crm.memberships()},
    )


def read_hubspot(hubspot: FakeHubSpot) -> CrmView:
    # Companies' custom properties and the association labels: README, HubSpot.
    companies = {}
    for record in hubspot.companies():
        p = record["properties"]
        companies[p["auth0_org_id"]] = {
            "id": record["id"],
            "name": p["name"],
            "display_name": _text(p.get("auth0_display_name")),
            "status": p["auth0_status"],
        }
    return CrmView(
        {r["properties"]["auth0_user_id"]: r["id"] for r in hubspot.contacts()},
        companies,
        {
            (company, contact, tuple(sorted(x.removeprefix("Auth0 role: ") for x in labels)))
            for (contact, company), labels in hubspot.associations().items()
        },
    )


def read_salesforce(org: FakeSalesforce) -> CrmView:
    # Account fields and AccountContactRelation.Roles: README, Salesforce.
    return CrmView(
        {r["Auth0_User_Id__c"]: r["Id"] for r in org.contacts()},
        {
            a["Auth0_Org_Id__c"]: {
                "id": a["Id"],
                "name": a["Name"],
                "display_name": _text(a.get("Auth0_Display_Name__c")),
                "status": a["Auth0_Status__c"],
            }
            for a in org.accounts()
        },
        {
            (
                r["AccountId"],
                r["ContactId"],
                tuple(sorted(x for x in (r["Roles"] or "").split(";") if x)),
            )
            for r in org.relations()
        },
    )


@pytest.fixture(autouse=True)
def _process_without_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`auth0-sync process` with the in-memory state, run from the test's own folder."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")
    monkeypatch.chdir(tmp_path)


def shuffled_with_duplicates(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events with a fifth of them delivered again, in a seeded shuffle."""
    rng = random.Random(7)
    stream = events + rng.sample(events, len(events) // 5)
    rng.shuffle(stream)
    return stream


def events_file(stream: list[dict[str, Any]], folder: Path) -> Path:
    path = folder / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in stream))
    return path


def last_json(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """The summary `process --json` prints last (the lines before it are the log's)."""
    lines = capsys.readouterr().out.splitlines()
    result: dict[str, Any] = json.loads(
        "\n".join(lines[max(n for n, x in enumerate(lines) if x == "{") :])
    )
    return result


@pytest.mark.parametrize("crm_type", [CrmType.REST, CrmType.HUBSPOT, CrmType.SALESFORCE])
def test_a_shuffled_duplicated_stream_ends_equal_to_the_truth(
    crm_type: CrmType,
    crm: CrmServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Dense enough that roles are removed from live memberships (10 role deletions).
    generated = generate(seed=24, n_users=6, steps=100)
    stream = shuffled_with_duplicates(generated.events)
    path = events_file(stream, tmp_path)

    server: FakeHubSpot | FakeSalesforce | None = None
    token = crm.token
    if crm_type is CrmType.HUBSPOT:
        server = FakeHubSpot(window_calls=100_000)
        token = server.token
    elif crm_type is CrmType.SALESFORCE:
        server = FakeSalesforce(multiple_accounts=True)
        token = json.dumps({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
        monkeypatch.setenv(Env.SALESFORCE_MULTIPLE_ACCOUNTS, "true")
    monkeypatch.setenv(Env.CRM_TYPE, crm_type)
    monkeypatch.setenv(Env.CRM_API_TOKEN, token)
    with server if server is not None else contextlib.nullcontext():
        monkeypatch.setenv(Env.CRM_BASE_URL, crm.base_url if server is None else server.base_url)
        assert main(["process", str(path), "--json"]) == 0
        if isinstance(server, FakeHubSpot):
            view = read_hubspot(server)
        elif isinstance(server, FakeSalesforce):
            view = read_salesforce(server)
        else:
            view = read_rest(crm)
    result = last_json(capsys)
    assert result["failed"] == {}
    assert result["events"] == len(stream)
    assert "organizations_unsupported" not in result["skipped"]

    assert sorted(view.contacts) == sorted(generated.users)
    live = sorted(o for o, t in generated.orgs.items() if not t.deleted)
    # A deleted organization's company is deactivated, or was never made when its delete
    # arrived before everything else of it.
    assert set(live) <= set(view.companies) <= set(generated.orgs)
    expected_members = set()
    for org_id, truth in generated.orgs.items():
        if org_id not in view.companies:
            continue
        company = view.companies[org_id]
        assert company["status"] == ("deactivated" if truth.deleted else "active")
        assert company["name"] == truth.name
        if not truth.deleted:
            assert company["display_name"] == truth.display_name
            expected_members |= {
                (company["id"], view.contacts[u], tuple(sorted(r)))
                for u, r in truth.members.items()
            }
    assert view.memberships == expected_members
    assert expected_members  # the history made some memberships with roles
    assert any(roles for _, _, roles in expected_members)


def test_salesforce_without_multiple_accounts_gives_each_contact_one_of_its_accounts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without Contacts to Multiple Accounts a contact holds one Account (README,
    Salesforce): the Account of one of its live organizations, or none; never a deleted
    organization's, never one it left; nothing dead-lettered."""
    generated = generate(seed=24, n_users=6, steps=100)
    stream = shuffled_with_duplicates(generated.events)
    path = events_file(stream, tmp_path)
    with FakeSalesforce(multiple_accounts=False) as org:
        monkeypatch.setenv(Env.CRM_TYPE, CrmType.SALESFORCE)
        monkeypatch.setenv(Env.CRM_BASE_URL, org.base_url)
        token = json.dumps({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
        monkeypatch.setenv(Env.CRM_API_TOKEN, token)
        assert main(["process", str(path), "--json"]) == 0
        accounts = {a["Id"]: a["Auth0_Org_Id__c"] for a in org.accounts()}
        contacts = org.contacts()
    result = last_json(capsys)
    assert result["failed"] == {}
    holding = 0
    for contact in contacts:
        user = contact["Auth0_User_Id__c"]
        live = {o for o, t in generated.orgs.items() if not t.deleted and user in t.members}
        if contact.get("AccountId"):
            assert accounts[contact["AccountId"]] in live
            holding += 1
    assert holding  # some contacts got an Account


def test_a_users_delete_through_process_removes_its_memberships(
    crm_without_aws: CrmServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    crm = crm_without_aws
    user, kept = "auth0|gone", "auth0|kept"
    first, second = (OrgTruth(f"org-{n}", None) for n in range(2))
    org_ids = ["org_0000000000000001", "org_0000000000000002"]
    stream = [
        created(user, at(1), email="gone@example.com"),
        created(kept, at(1), email="kept@example.com"),
        bus_event("organization.created", _org_obj(org_ids[0], first), when=at(2)),
        bus_event("organization.created", _org_obj(org_ids[1], second), when=at(2)),
        bus_event("organization.member.added", _member_obj(org_ids[0], user), when=at(3)),
        bus_event("organization.member.added", _member_obj(org_ids[0], kept), when=at(3)),
        bus_event(
            "organization.member.role.assigned",
            _member_obj(org_ids[0], user, "rol_admin"),
            when=at(4),
        ),
        deleted(user, at(6)),
        # Older than the delete, arriving after it: never re-creates a membership.
        bus_event("organization.member.added", _member_obj(org_ids[1], user), when=at(5)),
    ]
    stream.append(stream[-2])  # the delete, delivered again
    path = events_file(stream, tmp_path)
    assert main(["process", str(path), "--json"]) == 0
    result = last_json(capsys)
    assert result["failed"] == {}
    kept_contact = next(c["id"] for c in crm.contacts() if c["auth0_user_id"] == kept)
    assert [(m["contact_id"], m["roles"]) for m in crm.memberships()] == [(kept_contact, [])]


def test_the_sample_generators_organizations_end_equal_to_its_truth(
    crm_without_aws: CrmServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    crm = crm_without_aws
    stream = sample.generate(40, seed=5, organizations=4, preexisting_share=0.0, specials=False)
    path = events_file(stream.events, tmp_path)
    assert main(["process", str(path), "--json"]) == 0
    result = last_json(capsys)
    assert result["failed"] == {}
    contact_of = {c["auth0_user_id"]: c["id"] for c in crm.contacts()}
    companies = {c["auth0_org_id"]: c for c in crm.companies()}
    expected = set()
    for org_id, truth in stream.organizations.items():
        if truth.deleted:
            assert org_id not in companies or companies[org_id]["status"] == "deactivated"
            continue
        company = companies[org_id]
        assert (company["name"], company.get("display_name")) == (truth.name, truth.display_name)
        expected |= {
            (company["id"], contact_of[u], tuple(sorted(r))) for u, r in truth.members.items()
        }
    actual = {(m["company_id"], m["contact_id"], tuple(m["roles"])) for m in crm.memberships()}
    assert actual == expected
    assert any(roles for _, _, roles in expected)
