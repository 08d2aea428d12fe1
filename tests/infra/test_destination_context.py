"""CDK context `crmType`: validated at synth, and handed to the functions as CRM_TYPE with
the destination's default URL and mapping."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import App

from auth0_sync.names import CrmType, Env
from auth0_sync.routing import ROUTES
from auth0_sync.settings import Settings
from infra.config import ConfigurationError, read_config
from tests.infra.cfn import function_for
from tests.infra.conftest import CDK_JSON_CONTEXT, Synth

pytestmark = pytest.mark.infra

VENDOR_MAPPING = {
    "email": "email",
    "given_name": "given_name",
    "family_name": "family_name",
    "phone_number": "phone",
}


def _error(**context: Any) -> str:
    with pytest.raises(ConfigurationError) as info:
        read_config(App(context={**CDK_JSON_CONTEXT, **context}))
    return str(info.value)


def test_rest_is_the_default() -> None:
    assert read_config(App(context=CDK_JSON_CONTEXT)).crm_type is CrmType.REST


def test_an_unknown_crm_type_fails_synth_naming_the_key() -> None:
    message = _error(crmType="pipedrive")
    assert "context 'crmType'" in message
    assert "'rest', 'hubspot' or 'salesforce'" in message


def test_a_mapping_the_destination_cannot_hold_fails_synth() -> None:
    message = _error(crmType="salesforce", crmBaseUrl="https://acme.my.salesforce.com",
                     fieldMapping='{"email": "email", "nickname": "name"}')  # fmt: skip
    assert "'fieldMapping' maps to field(s) ['name'] that salesforce cannot hold" in message


def test_hubspot_functions_get_the_type_the_public_api_and_the_vendor_mapping(
    synth: Synth,
) -> None:
    template = synth(crmType="hubspot")
    for route in ROUTES:
        _, function = function_for(template, route)
        environment = function["Properties"]["Environment"]["Variables"]
        assert environment[Env.CRM_TYPE] == "hubspot"
        resolved = {k: v if isinstance(v, str) else "resolved" for k, v in environment.items()}
        settings = Settings.from_env(resolved)  # what the function validates at cold start
        assert settings.crm_type is CrmType.HUBSPOT
        assert settings.crm_base_url == "https://api.hubapi.com"
        assert settings.field_mapping == VENDOR_MAPPING
