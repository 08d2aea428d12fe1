"""`deletePolicy=erase` (HubSpot's GDPR delete, POST /crm/v3/objects/contacts/gdpr-delete,
https://developers.hubspot.com/docs/api-reference/legacy/crm/objects/contacts/gdpr/gdpr-delete-contact):
a deleted user's contact is removed for good (not archived), in every arrival order with a
duplicate; a re-signup gets a new contact; other destinations refuse the policy. Against
the HubSpot fake over HTTP; what HubSpot holds is read from the fake's own records."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from auth0_sync.destinations.hubspot import HubSpotCrm
from auth0_sync.errors import ConfigError, TransientError
from auth0_sync.events import parse_event
from auth0_sync.names import CrmType
from auth0_sync.settings import Settings
from auth0_sync.state import MemorySyncStateStore
from auth0_sync.sync import SyncCore
from auth0_sync_cli.fakes.hubspot import FakeHubSpot, hubspot_contact
from tests.builders import at, created, deleted, updated

pytestmark = pytest.mark.integration

USER = "google-oauth2|888"
SIGNUP = created(USER, at(0), email="erase@example.com", given_name="Eve")
RENAMED = updated(USER, at(5), email="erase@example.com", given_name="Evelyn")
GONE = deleted(USER, at(9))


def core_for(fake: FakeHubSpot) -> SyncCore:
    settings = Settings(
        crm_type=CrmType.HUBSPOT,
        crm_base_url=fake.base_url,
        crm_api_token=fake.token,
        delete_policy="erase",
    )
    crm = HubSpotCrm(fake.base_url, lambda: fake.token, search_per_second=100_000)
    return SyncCore(settings, crm, MemorySyncStateStore())


def deliver(core: SyncCore, events: list[dict[str, Any]]) -> list[str]:
    reasons = []
    for raw in events:
        for _ in range(4):
            try:
                reasons.append(core.apply(parse_event(raw, now=at(10_000)), 30.0).reason)
                break
            except TransientError:
                continue
    return reasons


@pytest.mark.parametrize("order", list(itertools.permutations([SIGNUP, RENAMED, GONE])))
def test_the_contact_is_erased_whatever_the_order(order: tuple[dict[str, Any], ...]) -> None:
    with FakeHubSpot() as fake:
        core = core_for(fake)

        deliver(core, [*order, order[0]])

        # Neither active nor archived: the record is gone (a delete first leaves none made).
        assert fake.contacts() == []
        assert fake.contacts(archived=True) == []


def test_erase_sends_the_gdpr_delete_and_a_resignup_gets_a_new_contact() -> None:
    with FakeHubSpot() as fake:
        core = core_for(fake)
        assert deliver(core, [SIGNUP]) == ["created"]
        before = fake.count("POST", "/crm/v3/objects/contacts/gdpr-delete")

        assert deliver(core, [GONE]) == ["erased"]

        assert fake.count("POST", "/crm/v3/objects/contacts/gdpr-delete") == before + 1
        assert fake.records == {}
        again = created(USER, at(60), email="erase2@example.com", given_name="Eve")
        assert deliver(core, [again]) == ["created"]
        [alive] = [hubspot_contact(r) for r in fake.contacts()]
        assert (alive["email"], alive["status"]) == ("erase2@example.com", "active")


@pytest.mark.parametrize("crm_type", [CrmType.REST, CrmType.SALESFORCE])
def test_erase_is_refused_where_the_destination_cannot_erase(crm_type: CrmType) -> None:
    with pytest.raises(ConfigError, match="erase needs CRM_TYPE=hubspot"):
        Settings.from_env(
            {
                "CRM_TYPE": crm_type,
                "CRM_BASE_URL": "https://crm.example.com",
                "CRM_API_TOKEN": "t",
                "DELETE_POLICY": "erase",
            }
        )
