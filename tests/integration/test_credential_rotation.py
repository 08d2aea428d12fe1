"""A CRM credential rotated while events flow (issue 22, item 2).

The secret is cached; when the CRM refuses the cached credential, the adapter reads the
secret again past the cache once and retries: a rotation costs no dead letter. A refusal
that persists is `crm_credentials_rejected`, transient (the redrive retries it) and counted
by the metric the `CrmCredentialsRejected` alarm watches.

Real parts: the handlers as Lambda calls them, Secrets Manager and the rest of AWS in moto,
and each destination as a real server on loopback whose credential changes mid-run: the
reference CRM (its bearer token), the HubSpot fake (the private app's token: 401
INVALID_AUTHENTICATION) and the Salesforce fake (the connected app's client secret, every
session ended: 401 INVALID_SESSION_ID, then 400 `invalid_client` for the old secret).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest

from auth0_sync import lambda_app
from auth0_sync.errors import reason_of
from auth0_sync.names import CrmType, Env, Metric
from auth0_sync.redrive import is_transient
from auth0_sync_cli.crm_server import CrmServer
from auth0_sync_cli.fakes.hubspot import FakeHubSpot
from auth0_sync_cli.fakes.salesforce import CLIENT_ID, FakeSalesforce
from auth0_sync_cli.local_aws import LocalResources
from tests.builders import at, created
from tests.integration.helpers import dlq_messages, invoke

pytestmark = pytest.mark.integration

USERS = 12
ROTATED_AT = 4  # events applied with the first credential, before the rotation

# (secret text for a credential, rotate the server to a credential, contacts on the server)
Destination = tuple[Callable[[str], str], Callable[[str], None], Callable[[], int]]


@contextmanager
def destination(crm_type: CrmType, crm: CrmServer) -> Iterator[tuple[str, Destination]]:
    """(base URL, the destination's parts), the server holding credential "v1"."""
    if crm_type is CrmType.REST:
        before = crm.token
        crm.token = "v1"
        try:
            yield (
                crm.base_url,
                (
                    lambda credential: credential,
                    lambda credential: setattr(crm, "token", credential),
                    lambda: len(crm.contacts()),
                ),
            )
        finally:
            crm.token = before
    elif crm_type is CrmType.HUBSPOT:
        with FakeHubSpot(token="v1") as hubspot:
            yield (
                hubspot.base_url,
                (
                    lambda credential: json.dumps({"token": credential}),
                    lambda credential: setattr(hubspot, "token", credential),
                    lambda: len(hubspot.contacts()),
                ),
            )
    else:
        with FakeSalesforce(client_secret="v1") as org:

            def rotate(credential: str) -> None:
                # A new consumer secret, and the sessions issued with the old one end.
                org.client_secret = credential
                with org.lock:
                    org.sessions.clear()

            yield (
                org.base_url,
                (
                    lambda credential: json.dumps(
                        {"client_id": CLIENT_ID, "client_secret": credential}
                    ),
                    rotate,
                    lambda: len(org.contacts()),
                ),
            )


def _events() -> list[dict[str, Any]]:
    return [
        created(
            f"auth0|rotation-{n}",
            at(n),
            email=f"user{n}@example.com",
            given_name="Ada",
            family_name=f"Rotation{n}",
        )
        for n in range(USERS)
    ]


@pytest.fixture(params=list(CrmType), ids=str)
def rotating(
    request: pytest.FixtureRequest,
    sync_env: LocalResources,
    crm: CrmServer,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[LocalResources, Destination]]:
    crm_type = CrmType(request.param)
    with destination(crm_type, crm) as (base_url, parts):
        secret_text, _, _ = parts
        boto3.client("secretsmanager").put_secret_value(
            SecretId=sync_env.secret_arn, SecretString=secret_text("v1")
        )
        monkeypatch.setenv(Env.CRM_TYPE, crm_type)
        monkeypatch.setenv(Env.CRM_BASE_URL, base_url)
        monkeypatch.setenv(Env.CRM_RETRY_BUDGET_SECONDS, "1")
        lambda_app.service.cache_clear()
        yield sync_env, parts
        lambda_app.service.cache_clear()


def test_a_credential_rotated_mid_run_costs_no_dead_letter(
    rotating: tuple[LocalResources, Destination],
) -> None:
    aws, (secret_text, rotate, contacts) = rotating
    events = _events()
    for event in events[:ROTATED_AT]:
        assert invoke(event)["status"] == "applied"  # the secret "v1" is now cached

    # The CRM takes the new credential and refuses the old one; the secret is updated.
    rotate("v2")
    boto3.client("secretsmanager").put_secret_value(
        SecretId=aws.secret_arn, SecretString=secret_text("v2")
    )
    outcomes = [invoke(event)["status"] for event in events[ROTATED_AT:]]

    assert outcomes == ["applied"] * (USERS - ROTATED_AT)
    assert dlq_messages(aws) == []
    assert contacts() == USERS


def test_a_refusal_that_persists_is_transient_and_counted_for_the_alarm(
    rotating: tuple[LocalResources, Destination],
    capsys: pytest.CaptureFixture[str],
) -> None:
    aws, (_, rotate, contacts) = rotating
    event = _events()[0]
    rotate("v2")  # and nobody updates the secret

    with pytest.raises(Exception) as raised:  # noqa: PT011 (Lambda sees any exception)
        invoke(event, timeout_seconds=5)

    reason = reason_of(str(raised.value))  # what Lambda's on-failure record keeps
    assert reason == "crm_credentials_rejected"
    assert is_transient(reason)  # the redrive retries it once the secret is fixed
    assert dlq_messages(aws) == []  # not dead-lettered as permanent by the handler
    assert contacts() == 0
    printed = capsys.readouterr().out
    emf = [json.loads(line) for line in printed.splitlines() if '"_aws"' in line]
    counted = [doc for doc in emf if Metric.CRM_CREDENTIALS_REJECTED in doc]
    assert [doc[Metric.CRM_CREDENTIALS_REJECTED] for doc in counted] == [[1.0]]  # one, once
