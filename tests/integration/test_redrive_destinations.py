"""The scheduled redrive against each destination: the reference CRM, the HubSpot fake and
the Salesforce fake, each over HTTP, configured as the stack configures the handlers and
the redrive function (CRM_TYPE, CRM_BASE_URL, the secret). The probe must build the
configured destination's adapter: while the CRM is down the run waits and changes
nothing; once it answers, the transient failure is redriven into that CRM."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from auth0_sync import lambda_app
from auth0_sync.names import CrmType, Env
from auth0_sync_cli.crm_server import CrmServer
from auth0_sync_cli.fakes import DemoCrm
from auth0_sync_cli.fakes.hubspot import FakeHubSpot
from auth0_sync_cli.fakes.salesforce import CLIENT_ID, CLIENT_SECRET, FakeSalesforce
from auth0_sync_cli.local_aws import LocalResources
from auth0_sync_cli.runner import LocalContext
from tests.integration.lambda_double import REDRIVE_FUNCTION, LambdaDouble
from tests.integration.test_redrive import by_event
from tests.integration.test_replay import put_on_failure, user_event

pytestmark = pytest.mark.integration


@dataclass
class Destination:
    crm_type: CrmType
    server: DemoCrm
    secret: str
    # Every contact, in generic names, read from the server by hand.
    contacts: Callable[[], list[dict[str, Any]]]


@pytest.fixture(params=[CrmType.REST, CrmType.HUBSPOT, CrmType.SALESFORCE], ids=str)
def destination(
    request: pytest.FixtureRequest,
    sync_env: LocalResources,
    crm: CrmServer,
    redrive_function: LambdaDouble,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Destination]:
    """The destination up, and the environment (handlers' and redrive's) pointing at it."""
    crm_type = CrmType(request.param)
    with ExitStack() as stack:
        if crm_type is CrmType.HUBSPOT:
            hubspot = stack.enter_context(FakeHubSpot())
            found = Destination(crm_type, hubspot, hubspot.token, hubspot.generic_contacts)
        elif crm_type is CrmType.SALESFORCE:
            org = stack.enter_context(FakeSalesforce())
            secret = json.dumps({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
            found = Destination(crm_type, org, secret, org.generic_contacts)
        else:
            found = Destination(crm_type, crm, crm.token, crm.contacts)
        monkeypatch.setenv(Env.CRM_TYPE, str(crm_type))
        monkeypatch.setenv(Env.CRM_BASE_URL, found.server.base_url)
        boto3.client("secretsmanager").put_secret_value(
            SecretId=sync_env.secret_arn, SecretString=found.secret
        )
        lambda_app.service.cache_clear()  # the handlers read the settings once
        yield found


def run_redrive() -> dict[str, Any]:
    from auth0_sync.handlers import redrive as handler_module

    result: dict[str, Any] = handler_module.handler({}, LocalContext(REDRIVE_FUNCTION, 120.0))
    return result


def test_the_redrive_probes_and_drains_into_the_configured_destination(
    destination: Destination, sync_env: LocalResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    put_on_failure(sync_env.dlq_url, user_event(1))  # crm_503, after Lambda's 3 attempts
    before = by_event(sync_env)
    destination.server.set_outage(503)

    waiting = run_redrive()

    assert (waiting["redriven"], waiting["still_failing"]) == (0, 0)
    assert waiting["stopped"].startswith("the CRM does not answer the probe: ")
    assert by_event(sync_env) == before
    destination.server.set_outage(None)

    drained = run_redrive()

    assert (drained["redriven"], drained["still_failing"], drained["left_for_a_person"]) == (
        1,
        0,
        0,
    )
    assert drained["applied"] == {"created": 1}
    assert by_event(sync_env) == {}
    [contact] = destination.contacts()
    assert (contact["auth0_user_id"], contact["email"], contact["status"]) == (
        "auth0|user0001",
        "user1@example.com",
        "active",
    )
