"""The REST CRM adapter against the reference server: retries, deadlines, error classes."""

from __future__ import annotations

import socket

import pytest

from auth0_sync.crm import RestCrmClient
from auth0_sync.errors import ContactExists, CredentialsRejected, CrmRejected, TransientError
from auth0_sync_cli.crm_server import CrmServer
from tests.integration.crm_calls import TimeoutsSeen

pytestmark = pytest.mark.integration


def client(crm: CrmServer, token: str | None = None, **kwargs: float) -> RestCrmClient:
    value = token or crm.token
    return RestCrmClient(crm.base_url, lambda: value, backoff_base=0.01, **kwargs)  # type: ignore[arg-type]


def test_transient_answers_are_retried_then_raised(crm: CrmServer) -> None:
    crm.set_outage(503)
    crm_client = client(crm, max_attempts=3)
    with pytest.raises(TransientError, match=r"crm GET /contacts: HTTP 503 after 3 attempt\(s\)"):
        crm_client.find_contacts(email="a@example.com")
    assert crm.stats()["by_method"]["GET"] == 3
    assert crm_client.calls_made() == 3


def test_a_refused_token_is_read_again_once_then_rejected(crm: CrmServer) -> None:
    crm_client = client(crm, token="wrong-token")
    with pytest.raises(CredentialsRejected) as info:
        crm_client.find_contacts(email="a@example.com")
    assert info.value.reason == "crm_credentials_rejected"  # transient: the redrive retries
    assert crm.stats()["total"] == 2


def test_permanent_answers_are_not_retried_and_carry_the_crm_message(crm: CrmServer) -> None:
    with pytest.raises(CrmRejected) as info:
        client(crm).list_contacts(limit=100_000)
    assert info.value.reason == "crm_400"
    assert "query parameter 'limit'" in info.value.message
    assert crm.stats()["total"] == 1


def test_duplicate_email_on_create_is_a_typed_conflict(crm: CrmServer) -> None:
    crm.seed_contact(email="a@example.com")
    with pytest.raises(ContactExists, match="HTTP 409"):
        client(crm).create_contact({"email": "A@example.com"}, idempotency_key="evt_1")


def test_idempotency_key_makes_a_retried_create_return_the_first_contact(crm: CrmServer) -> None:
    crm_client = client(crm)
    first = crm_client.create_contact({"email": "a@example.com"}, idempotency_key="evt_1")
    again = crm_client.create_contact({"email": "a@example.com"}, idempotency_key="evt_1")
    assert first["id"] == again["id"]
    assert len(crm.contacts()) == 1


def test_missing_contact_on_update_is_none(crm: CrmServer) -> None:
    assert client(crm).update_contact("c_999", {"name": "x"}) is None


def test_never_sleeps_past_the_invocation_deadline(
    crm: CrmServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    crm.set_outage(429)  # Retry-After: 1
    crm_client = client(crm, max_attempts=5)
    crm_client.set_deadline(lambda: 1200)  # 1.2 s left, less than wait + margin
    slept: list[float] = []
    monkeypatch.setattr("auth0_sync.destinations.transport.time.sleep", slept.append)
    with pytest.raises(TransientError, match="no time left in this invocation to wait"):
        crm_client.find_contacts(email="a@example.com")
    assert slept == []  # it gave up instead of waiting (no wall-clock bound to race)
    assert crm.stats()["total"] == 1


def test_connection_errors_are_transient() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    crm_client = RestCrmClient(
        f"http://127.0.0.1:{port}", lambda: "t", max_attempts=2, backoff_base=0.01
    )
    with pytest.raises(TransientError) as info:
        crm_client.find_contacts(email="a@example.com")
    assert info.value.reason == "crm_unreachable"


def test_each_request_is_sent_with_the_clients_timeout(crm: CrmServer) -> None:
    """10 s unless told (the default of CRM_TIMEOUT_SECONDS), else the one given."""
    seen = TimeoutsSeen()
    RestCrmClient(crm.base_url, lambda: crm.token, session=seen.session()).find_contacts(
        email="a@example.com"
    )
    told = RestCrmClient(
        crm.base_url, lambda: crm.token, timeout_seconds=2.5, session=seen.session()
    )
    told.find_contacts(email="a@example.com")
    assert seen.timeouts == [10.0, 2.5]
