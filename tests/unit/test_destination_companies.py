"""Which companies adapter each destination's settings build (the organization sync's
`Companies`): the wiring the handlers and `process` share."""

from __future__ import annotations

import pytest

from auth0_sync.destinations.factory import build_companies, build_crm
from auth0_sync.destinations.hubspot_companies import HubSpotCompanies
from auth0_sync.destinations.rest_companies import RestCompanies
from auth0_sync.destinations.salesforce_accounts import SalesforceAccounts
from auth0_sync.names import Env
from auth0_sync.settings import Settings

pytestmark = pytest.mark.unit

SALESFORCE_SECRET = '{"client_id": "c", "client_secret": "s"}'


def settings(**env: str) -> Settings:
    return Settings.from_env({Env.CRM_API_TOKEN: "t", **env})


def companies_of(config: Settings) -> object:
    secret = SALESFORCE_SECRET if config.crm_type == "salesforce" else "t"
    return build_companies(config, build_crm(config, lambda: secret))


def test_every_destination_has_companies() -> None:
    rest = settings(**{Env.CRM_BASE_URL: "https://crm.example.com"})
    assert isinstance(companies_of(rest), RestCompanies)
    assert isinstance(companies_of(settings(**{Env.CRM_TYPE: "hubspot"})), HubSpotCompanies)
    salesforce = settings(
        **{Env.CRM_TYPE: "salesforce", Env.CRM_BASE_URL: "https://acme.my.salesforce.com"}
    )
    assert isinstance(companies_of(salesforce), SalesforceAccounts)


@pytest.mark.parametrize(
    ("policy", "archives"),
    [
        ("deactivate", False),
        ("anonymize", False),
        ("none", False),
        ("archive", True),
        ("erase", True),
    ],
)
def test_hubspot_archives_a_deleted_organizations_company_per_the_delete_policy(
    policy: str, archives: bool
) -> None:
    found = companies_of(settings(**{Env.CRM_TYPE: "hubspot", Env.DELETE_POLICY: policy}))
    assert isinstance(found, HubSpotCompanies)
    assert found.archive is archives


@pytest.mark.parametrize(("value", "multiple"), [(None, False), ("false", False), ("true", True)])
def test_salesforce_contacts_to_multiple_accounts_is_a_setting(
    value: str | None, multiple: bool
) -> None:
    env = {Env.CRM_TYPE: "salesforce", Env.CRM_BASE_URL: "https://acme.my.salesforce.com"}
    if value is not None:
        env[Env.SALESFORCE_MULTIPLE_ACCOUNTS] = value
    found = companies_of(settings(**env))
    assert isinstance(found, SalesforceAccounts)
    assert found.multiple_accounts is multiple


def test_an_adapter_without_companies_gets_none() -> None:
    config = settings(**{Env.CRM_TYPE: "hubspot"})
    assert build_companies(config, object()) is None  # type: ignore[arg-type]
