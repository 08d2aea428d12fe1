"""Every SYNC_MODE and DELETE_POLICY against the three destinations (the reference CRM,
HubSpot's and Salesforce's fakes, real HTTP on loopback), in every arrival order of a
signup, an update and a delete, with the first event delivered again last.

One test per (destination, mode or policy) loops over the six orders, resetting the
destination and the in-memory state between them; transient failures are retried as Lambda
would. The expected records are written out by hand from the rules (docs/sync-rules.md,
"What the sync may do"; README, "Personal data") and read back in each vendor's own field
names, no adapter code involved. Where a destination has no such policy (archive and erase
are HubSpot's), the settings' refusal is asserted instead. The unit tests
(test_sync_modes.py, test_sync_create_only.py, test_delete_policy_none.py) hold the finer
cases against the in-memory CRM."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from auth0_sync.destinations import Crm
from auth0_sync.destinations.hubspot import HubSpotCrm
from auth0_sync.destinations.rest import RestCrmClient
from auth0_sync.destinations.salesforce import SalesforceCrm, client_credentials
from auth0_sync.errors import PermanentError, TransientError
from auth0_sync.events import parse_event
from auth0_sync.names import CrmType
from auth0_sync.settings import Settings
from auth0_sync.state import MemorySyncStateStore
from auth0_sync.sync import SyncCore
from auth0_sync_cli.crm_server import CrmServer
from auth0_sync_cli.fakes.hubspot import FakeHubSpot
from auth0_sync_cli.fakes.salesforce import CLIENT_ID, CLIENT_SECRET, FakeSalesforce
from tests.builders import at, created, deleted, updated

pytestmark = pytest.mark.integration

NOW = at(60 * 24 * 30)
USER = "auth0|26a0b1c2d3e4f5a6b7c8d9e0"
EMAIL = "kim@example.com"
PROFILE = {"email": EMAIL, "email_verified": True, "family_name": "Lee"}
SIGNUP = created(USER, at(0), given_name="Kim", **PROFILE)
UPDATE = updated(USER, at(5), given_name="Kimberly", phone_number="+15550100", **PROFILE)
DELETE = deleted(USER, at(9))  # the minimal shape older tenants send: no email
NAMES = {id(SIGNUP): "signup", id(UPDATE): "update"}

# A record as (email, given name, family name, phone, Auth0 user id, status); "" is None.
Record = tuple[str | None, ...]
# The contact sales made before the sync: no phone, no Auth0 user id (its status: none on
# the vendors, `active` on the reference server, which gives every contact one).
SALES: Record = (EMAIL, "Sales Kim", "Sales-Lee", None, None, None)


def orders() -> Iterator[tuple[list[dict[str, Any]], tuple[str, ...]]]:
    """Each arrival order with its first event delivered again last, and the names of the
    events that arrived before the delete (what decides the end state)."""
    for order in itertools.permutations([SIGNUP, UPDATE, DELETE]):
        before = tuple(NAMES[id(e)] for e in order[: order.index(DELETE)])
        yield [*order, order[0]], before


def until_the_delete(before: tuple[str, ...], signup: Record, update: Record) -> Record | None:
    """The record the events before the delete wrote: the update's once it came (the
    signup is older: it fills in nothing the update spoke of), else the signup's; none when
    the delete came first (a delete never creates, nor does an older event arriving after
    it: that one only reveals a contact to deactivate)."""
    if "update" in before:
        return update
    return signup if before else None


# The fields' names in each vendor's own terms, in Record's order (README, "Destinations").
VENDOR_FIELDS = {
    CrmType.REST: ("email", "given_name", "family_name", "phone", "auth0_user_id", "status"),
    CrmType.HUBSPOT: ("email", "firstname", "lastname", "phone", "auth0_user_id", "auth0_status"),
    CrmType.SALESFORCE: (
        "Email", "FirstName", "LastName", "Phone", "Auth0_User_Id__c", "Auth0_Status__c",
    ),
}  # fmt: skip


@dataclass
class Destination:
    kind: CrmType
    base_url: str
    adapter: Callable[[], Crm]
    reset: Callable[[], None]
    records: Callable[[], list[dict[str, Any]]]  # (id, fields by vendor name) of each live one
    seed_sales: Callable[[], str]  # the sales contact, made by hand in vendor terms: its id

    def read(self) -> dict[str, Record]:
        """Every live contact by id, its fields in Record's order ("" and absent: None)."""
        return {
            str(r["id"]): tuple(r["fields"].get(name) or None for name in VENDOR_FIELDS[self.kind])
            for r in self.records()
        }


@pytest.fixture(scope="module")
def hubspot() -> Iterator[FakeHubSpot]:
    with FakeHubSpot(window_calls=100_000, search_per_second=100_000) as fake:
        yield fake


@pytest.fixture(scope="module")
def salesforce() -> Iterator[FakeSalesforce]:
    with FakeSalesforce() as fake:
        yield fake


def hubspot_destination(hs: FakeHubSpot) -> Destination:
    return Destination(
        CrmType.HUBSPOT,
        hs.base_url,
        lambda: HubSpotCrm(hs.base_url, lambda: hs.token, search_per_second=100_000),
        hs.reset,
        lambda: [{"id": r["id"], "fields": r["properties"]} for r in hs.contacts()],
        lambda: hs.seed(email=EMAIL, firstname="Sales Kim", lastname="Sales-Lee"),
    )


def salesforce_destination(sf: FakeSalesforce) -> Destination:
    secret = json.dumps({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
    return Destination(
        CrmType.SALESFORCE,
        sf.base_url,
        lambda: SalesforceCrm(sf.base_url, client_credentials(lambda: secret)),
        sf.reset,
        lambda: [{"id": r["Id"], "fields": r} for r in sf.contacts()],
        lambda: sf.seed(Email=EMAIL, FirstName="Sales Kim", LastName="Sales-Lee"),
    )


def rest_destination(crm: CrmServer) -> Destination:
    def seed_sales() -> str:
        return str(
            crm.seed_contact(email=EMAIL, given_name="Sales Kim", family_name="Sales-Lee")["id"]
        )

    return Destination(
        CrmType.REST,
        crm.base_url,
        lambda: RestCrmClient(crm.base_url, lambda: crm.token),
        crm.reset,
        lambda: [{"id": c["id"], "fields": c} for c in crm.contacts()],
        seed_sales,
    )


@pytest.fixture(params=[CrmType.REST, CrmType.HUBSPOT, CrmType.SALESFORCE])
def dest(request: pytest.FixtureRequest) -> Destination:
    """Each destination in turn (the servers start once; only the one asked for)."""
    if request.param is CrmType.HUBSPOT:
        return hubspot_destination(request.getfixturevalue("hubspot"))
    if request.param is CrmType.SALESFORCE:
        return salesforce_destination(request.getfixturevalue("salesforce"))
    return rest_destination(request.getfixturevalue("crm"))


def run(
    dest: Destination, events: list[dict[str, Any]], *, mode: str, policy: str, sales: bool
) -> tuple[str | None, dict[str, Record]]:
    """Reset the destination, seed the sales contact if asked, deliver the events to a core
    with fresh in-memory state (retrying transient failures, as Lambda would); the sales
    contact's id and every live contact after."""
    dest.reset()
    sales_id = dest.seed_sales() if sales else None
    if sales_id is not None:  # read back as made (the status aside: the REST server's own)
        assert {k: v[:5] for k, v in dest.read().items()} == {sales_id: SALES[:5]}
    settings = Settings(
        crm_type=dest.kind,
        crm_base_url=dest.base_url,
        crm_api_token="unused",
        sync_mode=mode,
        delete_policy=policy,
    )
    core = SyncCore(settings, dest.adapter(), MemorySyncStateStore())
    for raw in events:
        for attempt in range(4):
            try:
                core.apply(parse_event(raw, now=NOW), lease_seconds=30.0)
                break
            except TransientError:
                assert attempt < 3, f"{raw['detail-type']} still failing after 4 attempts"
            except PermanentError as exc:
                pytest.fail(f"{raw['detail-type']} dead-lettered: {exc.reason}")
    return sales_id, dest.read()


def only(records: dict[str, Record]) -> tuple[str, Record]:
    assert len(records) == 1, records
    [(contact_id, record)] = records.items()
    return contact_id, record


# SYNC_MODE (with the default DELETE_POLICY=deactivate) ---------------------------------------


def test_upsert_creates_and_deactivates(dest: Destination) -> None:
    signup = (EMAIL, "Kim", "Lee", None, USER, "deactivated")
    update = (EMAIL, "Kimberly", "Lee", "+15550100", USER, "deactivated")
    for events, before in orders():
        _, records = run(dest, events, mode="upsert", policy="deactivate", sales=False)
        expected = until_the_delete(before, signup, update)
        assert list(records.values()) == ([] if expected is None else [expected]), before


def test_update_only_never_creates(dest: Destination) -> None:
    for events, before in orders():
        _, records = run(dest, events, mode="update_only", policy="deactivate", sales=False)
        assert records == {}, before


def test_update_only_claims_and_updates_the_sales_contact(dest: Destination) -> None:
    # Written as in upsert; a delete that comes first is settled by the older event that
    # reveals the contact by its email: deactivated and claimed, nothing of it rewritten.
    revealed = (*SALES[:4], USER, "deactivated")
    signup = (EMAIL, "Kim", "Lee", None, USER, "deactivated")
    update = (EMAIL, "Kimberly", "Lee", "+15550100", USER, "deactivated")
    for events, before in orders():
        sales_id, records = run(dest, events, mode="update_only", policy="deactivate", sales=True)
        contact_id, record = only(records)
        assert contact_id == sales_id, before
        assert record == (until_the_delete(before, signup, update) or revealed), before


def test_create_only_keeps_what_the_sales_contact_holds(dest: Destination) -> None:
    # The names sales wrote stay; the phone it has no value for is filled by the update.
    revealed = (*SALES[:4], USER, "deactivated")
    update = (EMAIL, "Sales Kim", "Sales-Lee", "+15550100", USER, "deactivated")
    for events, before in orders():
        sales_id, records = run(dest, events, mode="create_only", policy="deactivate", sales=True)
        contact_id, record = only(records)
        assert contact_id == sales_id, before
        assert record == (until_the_delete(before, revealed, update) or revealed), before


def test_create_only_creates_a_missing_contact_then_only_fills_it(dest: Destination) -> None:
    # The first event to arrive creates the contact with every field; a later one only
    # fills what it has no value for (the sync's own earlier values are held like any).
    for events, before in orders():
        _, records = run(dest, events, mode="create_only", policy="deactivate", sales=False)
        if not before:
            assert records == {}, before
            continue
        given = {"signup": "Kim", "update": "Kimberly"}[before[0]]
        phone = "+15550100" if "update" in before else None
        expected = (EMAIL, given, "Lee", phone, USER, "deactivated")
        assert list(records.values()) == [expected], before


# DELETE_POLICY (with the default SYNC_MODE=upsert; deactivate: test_upsert_...) -------------


def test_none_leaves_the_contact_as_it_was(dest: Destination) -> None:
    signup = (EMAIL, "Kim", "Lee", None, USER, "active")
    update = (EMAIL, "Kimberly", "Lee", "+15550100", USER, "active")
    for events, before in orders():
        _, records = run(dest, events, mode="upsert", policy="none", sales=False)
        expected = until_the_delete(before, signup, update)
        assert list(records.values()) == ([] if expected is None else [expected]), before


def test_anonymize_leaves_nothing_that_links_the_contact_to_the_person(
    dest: Destination,
) -> None:
    # Salesforce requires LastName: the adapter's documented placeholder stands in.
    family = "(unknown)" if dest.kind is CrmType.SALESFORCE else None
    for events, before in orders():
        _, records = run(dest, events, mode="upsert", policy="anonymize", sales=False)
        if not before:
            assert records == {}, before
            continue
        _, (email, *rest) = only(records)
        assert re.fullmatch(r"deleted-[0-9a-f]{32}@anonymized\.invalid", email or ""), email
        assert rest == [None, family, None, None, "deactivated"], before


def test_archive_keeps_an_archived_record_in_hubspot(hubspot: FakeHubSpot) -> None:
    # Archived as it was (HubSpot's DELETE writes nothing first): restorable for 90 days.
    dest = hubspot_destination(hubspot)
    signup = (EMAIL, "Kim", "Lee", None, USER, "active")
    update = (EMAIL, "Kimberly", "Lee", "+15550100", USER, "active")
    fields = VENDOR_FIELDS[CrmType.HUBSPOT]
    for events, before in orders():
        _, records = run(dest, events, mode="upsert", policy="archive", sales=False)
        archived = [
            tuple(r["properties"].get(name) or None for name in fields)
            for r in hubspot.contacts(archived=True)
        ]
        expected = until_the_delete(before, signup, update)
        assert records == {}, before
        assert archived == ([] if expected is None else [expected]), before


def test_erase_leaves_nothing_in_hubspot(hubspot: FakeHubSpot) -> None:
    # HubSpot's GDPR delete: no live record and no archived one.
    dest = hubspot_destination(hubspot)
    for events, before in orders():
        run(dest, events, mode="upsert", policy="erase", sales=False)
        assert hubspot.contacts() == hubspot.contacts(archived=True) == [], before
        gdpr_deletes = hubspot.count("POST", "/crm/v3/objects/contacts/gdpr-delete")
        assert gdpr_deletes == (1 if before else 0), before


@pytest.mark.parametrize("kind", [CrmType.REST, CrmType.SALESFORCE])
@pytest.mark.parametrize("policy", ["archive", "erase"])
def test_archive_and_erase_are_refused_where_the_destination_has_neither(
    kind: CrmType, policy: str
) -> None:
    refusal = f"DELETE_POLICY={policy} needs CRM_TYPE=hubspot .*use deactivate, anonymize or none"
    with pytest.raises(ValueError, match=refusal):
        Settings(
            crm_type=kind,
            crm_base_url="https://crm.invalid",
            crm_api_token="t",
            delete_policy=policy,
        )
