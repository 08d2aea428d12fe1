"""`auth0-sync destination setup` against the fake vendors on loopback."""

from __future__ import annotations

import json

import pytest

from auth0_sync.names import Env
from auth0_sync_cli.fakes.hubspot import FakeHubSpot
from auth0_sync_cli.fakes.salesforce import CLIENT_ID, CLIENT_SECRET, FakeSalesforce
from auth0_sync_cli.main import main

pytestmark = pytest.mark.integration


def test_hubspot_setup_creates_the_properties_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeHubSpot(custom_properties=False) as fake:
        monkeypatch.setenv(Env.CRM_API_TOKEN, fake.token)
        args = ["destination", "setup", "--crm", "hubspot", "--base-url", fake.base_url]
        assert main(args) == 0
        assert capsys.readouterr().out == (
            "auth0_user_id: created\nauth0_status: created\n"
            "companies.auth0_org_id: created\ncompanies.auth0_display_name: created\n"
            "companies.auth0_status: created\n"
        )
        assert main([*args, "--json"]) == 0
        assert json.loads(capsys.readouterr().out) == {
            "crm": "hubspot",
            "properties": {
                "auth0_user_id": "exists",
                "auth0_status": "exists",
                "companies.auth0_org_id": "exists",
                "companies.auth0_display_name": "exists",
                "companies.auth0_status": "exists",
            },
        }
        assert fake.count("POST", "/crm/v3/properties/contacts") == 2
        assert fake.count("POST", "/crm/v3/properties/companies") == 3
        assert fake.companies_store.properties["auth0_org_id"]["hasUniqueValue"] is True
        options = [o["value"] for o in fake.properties["auth0_status"]["options"]]
        assert options == ["active", "deactivated"]


def test_hubspot_setup_with_a_wrong_token_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeHubSpot(custom_properties=False) as fake:
        monkeypatch.setenv(Env.CRM_API_TOKEN, "pat-wrong")
        code = main(["destination", "setup", "--crm", "hubspot", "--base-url", fake.base_url])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith(
        "auth0-sync destination setup: error: hubspot: crm_credentials_rejected: "
    )
    assert err.count("\n") == 1
    assert "pat-wrong" not in err


@pytest.mark.parametrize("custom_fields", [True, False])
def test_salesforce_setup_checks_the_custom_fields(
    custom_fields: bool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = json.dumps({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
    with FakeSalesforce(custom_fields=custom_fields) as org:
        monkeypatch.setenv(Env.CRM_API_TOKEN, secret)
        code = main(["destination", "setup", "--crm", "salesforce", "--base-url", org.base_url])
    out, err = capsys.readouterr()
    if custom_fields:
        assert (code, out) == (
            0,
            "Auth0_User_Id__c: exists\nAuth0_Status__c: exists\n"
            "Account.Auth0_Org_Id__c: exists\nAccount.Auth0_Display_Name__c: exists\n"
            "Account.Auth0_Status__c: exists\n",
        )
    else:
        assert code == 1
        assert "salesforce_invalid_field" in err
        assert "create the Contact fields Auth0_User_Id__c" in err


def test_setup_without_credentials_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(Env.CRM_API_TOKEN, raising=False)
    assert main(["destination", "setup", "--crm", "hubspot"]) == 2
    assert "CRM_API_TOKEN" in capsys.readouterr().err
