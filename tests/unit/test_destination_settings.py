"""CRM_TYPE chooses the destination: its default URL and mapping, the fields it can hold."""

from __future__ import annotations

import pytest

from auth0_sync.errors import ConfigError
from auth0_sync.names import CrmType, Env
from auth0_sync.settings import Settings

pytestmark = pytest.mark.unit

TOKEN: dict[str, str] = {Env.CRM_API_TOKEN: "t"}
# The default mapping for HubSpot and Salesforce, in the core's generic names.
VENDOR_MAPPING = {
    "email": "email",
    "given_name": "given_name",
    "family_name": "family_name",
    "phone_number": "phone",
}


def test_rest_stays_the_default_and_needs_its_url() -> None:
    settings = Settings.from_env({**TOKEN, Env.CRM_BASE_URL: "https://crm.example.com"})
    assert settings.crm_type is CrmType.REST
    assert settings.field_mapping["name"] == "name"
    with pytest.raises(ConfigError, match="CRM_BASE_URL: Field required"):
        Settings.from_env(TOKEN)


def test_hubspot_defaults_to_the_public_api_and_the_vendor_mapping() -> None:
    settings = Settings.from_env({**TOKEN, Env.CRM_TYPE: "hubspot"})
    assert settings.crm_base_url == "https://api.hubapi.com"
    assert settings.field_mapping == VENDOR_MAPPING
    assert settings.required_crm_fields == {"email"}


def test_the_base_url_is_overridable_for_tests() -> None:
    settings = Settings.from_env(
        {**TOKEN, Env.CRM_TYPE: "hubspot", Env.CRM_BASE_URL: "http://127.0.0.1:9/"}
    )
    assert settings.crm_base_url == "http://127.0.0.1:9"


def test_salesforce_needs_the_my_domain_url() -> None:
    with pytest.raises(ConfigError, match="CRM_BASE_URL: Field required"):
        Settings.from_env({**TOKEN, Env.CRM_TYPE: "salesforce"})
    settings = Settings.from_env(
        {**TOKEN, Env.CRM_TYPE: "salesforce", Env.CRM_BASE_URL: "https://acme.my.salesforce.com"}
    )
    assert settings.field_mapping == VENDOR_MAPPING


def test_an_unknown_crm_type_names_the_variable_and_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"CRM_TYPE: Input should be 'rest', 'hubspot' or"):
        Settings.from_env({**TOKEN, Env.CRM_TYPE: "pipedrive", Env.CRM_BASE_URL: "https://x"})


@pytest.mark.parametrize("crm_type", ["hubspot", "salesforce"])
def test_a_field_the_vendor_cannot_hold_fails_at_start_up(crm_type: str) -> None:
    env: dict[str, str] = {
        **TOKEN,
        Env.CRM_TYPE: crm_type,
        Env.CRM_BASE_URL: "https://x.example.com",
        Env.FIELD_MAPPING: '{"email": "email", "nickname": "name"}',
    }
    with pytest.raises(ConfigError, match=rf"\['name'\] that {crm_type} cannot hold"):
        Settings.from_env(env)
