"""What every failure becomes, through the real handlers' service against moto and the
reference CRM over HTTP: applied, skipped for a counted reason, or in the DLQ with a reason
that names what to fix. Nothing raises out of a handler but a retryable failure."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.config import Config

from auth0_sync.names import DLQ_ATTR_ERROR_CLASS, DLQ_ATTR_REASON
from auth0_sync.runtime import build_service
from auth0_sync.settings import Settings
from auth0_sync.state import DynamoSyncStateStore, Settled, SyncState
from auth0_sync_cli.crm_server import CrmServer
from auth0_sync_cli.local_aws import LocalResources
from auth0_sync_cli.runner import LocalRunner
from tests.builders import at, created, deleted, updated
from tests.integration.helpers import dlq_messages

pytestmark = pytest.mark.integration


def settings_for(aws: LocalResources, crm: CrmServer) -> Settings:
    return Settings(
        crm_base_url=crm.base_url,
        crm_api_token=crm.token,
        state_table=aws.state_table,
        dlq_url=aws.dlq_url,
    )


def runner(aws: LocalResources, crm: CrmServer, **kwargs: Any) -> LocalRunner:
    service = build_service(settings_for(aws, crm), **kwargs)
    return LocalRunner(service, service.dead_letters, backoff_seconds=0.01)  # type: ignore[arg-type]


def test_a_hint_that_climbs_out_of_its_path_segment_reaches_no_other_contact(
    aws: LocalResources, crm: CrmServer
) -> None:
    # Nobody's contact, so only the escaping (not the ownership rule) can protect it.
    other = crm.seed_contact(email="x@example.com", name="Xia")
    hint = f"c_nope/../{other['id']}"
    outcome = runner(aws, crm).run(
        created("auth0|y", at(0), email="y@example.com", app_metadata={"crm_contact_id": hint})
    )
    assert (outcome.status, outcome.reason) == ("applied", "created")
    by_email = {c["email"]: c for c in crm.contacts()}
    assert by_email["x@example.com"]["name"] == "Xia"
    assert by_email["x@example.com"].get("auth0_user_id") is None
    assert by_email["y@example.com"]["auth0_user_id"] == "auth0|y"


def test_a_hint_to_another_users_contact_gives_the_user_its_own(
    aws: LocalResources, crm: CrmServer
) -> None:
    other = crm.seed_contact(email="x@example.com", name="Xia", auth0_user_id="auth0|x")
    hinted = {"app_metadata": {"crm_contact_id": other["id"]}}
    sync = runner(aws, crm)
    sync.run(created("auth0|y", at(0), email="y@example.com", name="Yan", **hinted))
    sync.run(updated("auth0|y", at(1), email="y@example.com", name="Yan 2", **hinted))
    by_owner = {c["auth0_user_id"]: c for c in crm.contacts()}
    assert (by_owner["auth0|x"]["email"], by_owner["auth0|x"]["name"]) == ("x@example.com", "Xia")
    assert (by_owner["auth0|y"]["email"], by_owner["auth0|y"]["name"]) == ("y@example.com", "Yan 2")


def test_a_resignup_reactivates_the_contact_over_http(aws: LocalResources, crm: CrmServer) -> None:
    sync, user = runner(aws, crm), "google-oauth2|555"
    sync.run(created(user, at(0), email="ada@example.com", name="Ada", phone_number="+44"))
    sync.run(deleted(user, at(1)))
    assert crm.contacts()[0]["status"] == "deactivated"
    outcome = sync.run(created(user, at(60), email="ada@example.com", name="Ada Again"))
    assert (outcome.status, outcome.reason) == ("applied", "reactivated")
    [contact] = crm.contacts()
    assert (contact["status"], contact["name"], contact["phone"]) == ("active", "Ada Again", None)


def test_an_unforeseen_error_goes_to_the_dlq_as_internal_error(
    aws: LocalResources, crm: CrmServer
) -> None:
    class BrokenState(DynamoSyncStateStore):
        def acquire(self, user_id: str, owner: str, lease_seconds: float) -> SyncState:
            raise KeyError("something nobody foresaw")

        def acquire_if_newer(
            self, user_id: str, owner: str, lease_seconds: float, key: str
        ) -> SyncState | Settled:
            raise KeyError("something nobody foresaw")

    outcome = runner(aws, crm, state=BrokenState(aws.state_table)).run(
        created("auth0|u", at(0), email="u@example.com")
    )
    assert (outcome.status, outcome.reason) == ("dead_lettered", "internal_error")
    [message] = dlq_messages(aws)
    assert message["attributes"][DLQ_ATTR_ERROR_CLASS] == "InternalError"
    assert message["attributes"][DLQ_ATTR_REASON].startswith("internal_error: KeyError")


def test_an_unreachable_state_table_is_transient_and_ends_in_the_dlq_with_its_reason(
    aws: LocalResources, crm: CrmServer
) -> None:
    nowhere = boto3.client(
        "dynamodb",
        endpoint_url="http://127.0.0.1:9",  # the discard port: nothing listens on loopback
        config=Config(retries={"max_attempts": 1}, connect_timeout=0.5, read_timeout=0.5),
    )
    service = build_service(
        settings_for(aws, crm), state=DynamoSyncStateStore(aws.state_table, nowhere)
    )
    outcome = LocalRunner(service, service.dead_letters, backoff_seconds=0.01).run(  # type: ignore[arg-type]
        created("auth0|u", at(0), email="u@example.com")
    )
    assert (outcome.status, outcome.reason) == ("dead_lettered", "state_unavailable")
    [message] = dlq_messages(aws)
    assert message["body"]["requestContext"]["condition"] == "RetriesExhausted"


def user_event_with(**profile: Any) -> dict[str, Any]:
    return created("auth0|odd", at(0), email="odd@example.com", **profile)


@pytest.mark.parametrize(
    ("event", "detail"),
    [
        (user_event_with(name=float("nan")), "detail.data.object.name"),
        (created("auth0|" + "x" * 600, at(0), email="long@example.com"), "user_id"),
        (created("auth0|future", at(0), email="f@example.com"), "updated_at"),
    ],
    ids=["nan-in-a-mapped-field", "user-id-over-the-key-size", "far-future-change-time"],
)
def test_bad_events_are_dead_lettered_as_invalid_naming_the_field(
    aws: LocalResources, crm: CrmServer, event: dict[str, Any], detail: str
) -> None:
    if "future" in str(event["detail"]["data"]["object"]["user_id"]):
        event["detail"]["data"]["object"]["updated_at"] = "9999-01-01T00:00:00Z"
        event["detail"]["time"] = "9999-01-01T00:00:00Z"
    outcome = runner(aws, crm).run(event)
    assert (outcome.status, outcome.reason) == ("dead_lettered", "invalid_event")
    assert detail in (outcome.message or "")
    assert crm.contacts() == []
    [message] = dlq_messages(aws)
    assert json.dumps(message["body"]) == json.dumps(event)  # kept whole (NaN != NaN)


def test_an_offset_less_time_is_read_as_utc(aws: LocalResources, crm: CrmServer) -> None:
    sync = runner(aws, crm)
    sync.run(created("auth0|tz", at(0), email="tz@example.com", name="Before"))
    late = updated("auth0|tz", at(5), email="tz@example.com", name="After")
    late["detail"]["data"]["object"]["updated_at"] = "2026-03-01T09:05:00"  # no offset
    outcome = sync.run(late)
    assert (outcome.status, outcome.reason) == ("applied", "updated")
    assert crm.contacts()[0]["name"] == "After"
    assert crm.contacts()[0]["source_updated_at"].startswith("2026-03-01T09:05:00")


def test_a_rerun_soon_after_a_killed_run_waits_for_its_lease_instead_of_dead_lettering(
    aws: LocalResources, crm: CrmServer
) -> None:
    # The killed run took the user's lease and died holding it (a lease outlives its
    # invocation: 35 s in the handlers; 8 s here, longer than the three attempts' own
    # 2 s waits for a held lease). Lambda would retry a minute later, past it; the local
    # runner's retries come after 0.01 and 0.02 s.
    user = "auth0|killed"
    DynamoSyncStateStore(aws.state_table).acquire(user, "killed-run", lease_seconds=8)
    event = created(user, at(0), email="killed@example.com")

    runner(aws, crm).run_all([event])  # as `process` runs a file

    assert dlq_messages(aws) == []
    [contact] = crm.contacts()
    assert contact["auth0_user_id"] == user
