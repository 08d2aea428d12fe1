"""`deletePolicy=archive` (HubSpot): a deleted user's contact is archived in HubSpot, and a
re-signup later gets a contact of its own; other destinations refuse the policy."""

from __future__ import annotations

import pytest

from auth0_sync.destinations.hubspot import HubSpotCrm
from auth0_sync.errors import ConfigError
from auth0_sync.events import parse_event
from auth0_sync.names import CrmType
from auth0_sync.settings import Settings
from auth0_sync.state import MemorySyncStateStore
from auth0_sync.sync import SyncCore
from auth0_sync_cli.fakes.hubspot import FakeHubSpot, hubspot_contact
from tests.builders import at, created, deleted

pytestmark = pytest.mark.integration

USER = "google-oauth2|777"


def test_a_deleted_users_contact_is_archived_and_a_resignup_gets_a_new_one() -> None:
    with FakeHubSpot() as fake:
        settings = Settings(
            crm_type=CrmType.HUBSPOT,
            crm_base_url=fake.base_url,
            crm_api_token=fake.token,
            delete_policy="archive",
        )
        crm = HubSpotCrm(fake.base_url, lambda: fake.token, search_per_second=100_000)
        core = SyncCore(settings, crm, MemorySyncStateStore())

        def apply(raw: dict[str, object]) -> str:
            return core.apply(parse_event(raw, now=at(10_000)), 30.0).reason

        assert apply(created(USER, at(0), email="arch@example.com", given_name="Ann")) == "created"
        assert apply(deleted(USER, at(1))) == "archived"
        assert fake.contacts() == []
        [archived] = fake.contacts(archived=True)
        assert hubspot_contact(archived)["auth0_user_id"] == USER

        assert apply(created(USER, at(60), email="arch2@example.com", given_name="Ann")) == (
            "created"
        )
        [alive] = [hubspot_contact(r) for r in fake.contacts()]
        assert (alive["email"], alive["status"]) == ("arch2@example.com", "active")


@pytest.mark.parametrize("crm_type", [CrmType.REST, CrmType.SALESFORCE])
def test_archive_is_refused_where_the_destination_cannot_archive(crm_type: CrmType) -> None:
    with pytest.raises(ConfigError, match="archive needs CRM_TYPE=hubspot"):
        Settings.from_env(
            {
                "CRM_TYPE": crm_type,
                "CRM_BASE_URL": "https://crm.example.com",
                "CRM_API_TOKEN": "t",
                "DELETE_POLICY": "archive",
            }
        )
