"""SYNC_MODE=create_only through `auth0-sync process`, once per destination (the reference
CRM, HubSpot's and Salesforce's fakes): a contact sales made before the sync is claimed, the
values it holds stay, the fields it has no value for are filled. The stream is delivered
twice over in a shuffled order; in-memory state (the orders are the unit tests')."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from auth0_sync.names import CrmType, Env
from auth0_sync_cli.crm_server import CrmServer
from auth0_sync_cli.fakes.hubspot import FakeHubSpot
from auth0_sync_cli.fakes.salesforce import CLIENT_ID, CLIENT_SECRET, FakeSalesforce
from tests.builders import at, created, updated
from tests.integration.test_process_cli import run_json

pytestmark = pytest.mark.integration

USER = "auth0|6c00c1d2e3f4a5b6c7d80916"

Seed = Callable[..., dict[str, Any]]
Read = Callable[[], list[dict[str, Any]]]


@contextmanager
def destination(kind: CrmType) -> Iterator[tuple[str, str, Seed, Read]]:
    """(base URL, CRM_API_TOKEN, seed a contact, read the contacts in generic names)."""
    if kind is CrmType.HUBSPOT:
        with FakeHubSpot(window_calls=100_000, search_per_second=100_000) as hs:
            yield hs.base_url, hs.token, hs.seed_contact, hs.generic_contacts
    elif kind is CrmType.SALESFORCE:
        with FakeSalesforce() as sf:
            secret = json.dumps({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
            yield sf.base_url, secret, sf.seed_contact, sf.generic_contacts
    else:
        with CrmServer() as crm:
            yield crm.base_url, crm.token, crm.seed_contact, crm.contacts


@pytest.mark.parametrize("kind", [CrmType.REST, CrmType.HUBSPOT, CrmType.SALESFORCE])
def test_create_only_keeps_what_the_sales_contact_holds(
    kind: CrmType,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    profile = {"email": "kim@example.com", "email_verified": True, "family_name": "Lee"}
    stream = [
        created(USER, at(0), given_name="Kim", **profile),
        updated(USER, at(5), given_name="Kimberly", phone_number="+15550100", **profile),
    ] * 2
    random.Random(26).shuffle(stream)
    path = tmp_path / "stream.json"
    path.write_text(json.dumps(stream), encoding="utf-8")
    with destination(kind) as (base_url, token, seed, read):
        sales = seed(email="kim@example.com", given_name="Sales Kim")
        monkeypatch.setenv(Env.CRM_TYPE, kind)
        monkeypatch.setenv(Env.CRM_BASE_URL, base_url)
        monkeypatch.setenv(Env.CRM_API_TOKEN, token)
        monkeypatch.setenv(Env.SYNC_MODE, "create_only")
        monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")
        monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
        monkeypatch.chdir(tmp_path)

        result = run_json([str(path), "--state", "memory"], capsys)

        contacts = read()
    assert result["failed"] == {}
    [contact] = contacts
    assert contact["id"] == sales["id"]
    seen = {k: contact.get(k) for k in ("auth0_user_id", "given_name", "family_name", "phone")}
    assert seen == {
        "auth0_user_id": USER,  # claimed, as in every mode
        "given_name": "Sales Kim",  # held: stays
        "family_name": "Lee",  # empty: filled
        "phone": "+15550100",  # empty: filled
    }
