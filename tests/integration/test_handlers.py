"""The three Lambda handlers against moto (state, idempotency, DLQ, secret) and the
reference CRM server on loopback. Each test reads the effect back from the CRM, the
state table or the DLQ."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from auth0_sync import lambda_app
from auth0_sync.destinations.transport import CircuitBreaker
from auth0_sync.errors import TransientError
from auth0_sync.names import (
    DLQ_ATTR_ERROR_CLASS,
    DLQ_ATTR_HANDLER,
    DLQ_ATTR_REASON,
    Env,
    EventType,
)
from auth0_sync_cli.crm_server import CrmServer
from auth0_sync_cli.local_aws import LocalResources
from auth0_sync_cli.runner import LocalContext
from tests.builders import sqs_batch
from tests.conftest import load_event
from tests.integration.helpers import dlq_messages, invoke, state_of, variant

pytestmark = pytest.mark.integration

USER = "auth0|65e5a1f0c2b7d94e1a3f0c11"


def created() -> dict[str, Any]:
    return load_event("user_created")


def updated(event_id: str, when: str, **fields: Any) -> dict[str, Any]:
    # The fixture's app_metadata id c_1042 is not in an empty CRM; drop it unless a test sets it.
    fields.setdefault("app_metadata", {})
    return variant(load_event("user_updated"), event_id, when=when, **fields)


def calls_by_method(crm: CrmServer) -> dict[str, int]:
    return {method: n for method, n in crm.stats()["by_method"].items() if n}


def retried(out: str) -> list[tuple[str, float]]:
    """The `EventRetried` counts with their reason in what Powertools printed: one EMF
    document a line, the metric's value and dimensions as top-level members, named in
    `_aws.CloudWatchMetrics` (AWS, Embedded Metric Format specification,
    https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html)."""
    found: list[tuple[str, float]] = []
    for line in out.splitlines():
        if '"_aws"' not in line:
            continue
        doc = json.loads(line)
        for directive in doc["_aws"]["CloudWatchMetrics"]:
            if any(m["Name"] == "EventRetried" for m in directive["Metrics"]):
                assert ["reason", "service"] in [sorted(d) for d in directive["Dimensions"]]
                value = doc["EventRetried"]
                found.append((doc["reason"], value[0] if isinstance(value, list) else value))
    return found


def only_contact(crm: CrmServer) -> dict[str, Any]:
    contacts = crm.contacts()
    assert len(contacts) == 1, contacts
    return contacts[0]


def test_create_update_delete_lifecycle(sync_env: LocalResources, crm: CrmServer) -> None:
    out = invoke(created())
    assert (out["status"], out["reason"], out["crm_calls"]) == ("applied", "created", 1)
    contact = only_contact(crm)
    assert contact["email"] == "ada@example.com"
    assert contact["auth0_user_id"] == USER
    assert contact["phone"] == "+447700900123"

    out = invoke(updated("evt_u1", "2026-03-04T10:15:30.900Z", name="Ada King"))
    assert (out["reason"], out["crm_calls"]) == ("updated", 1)
    assert only_contact(crm)["name"] == "Ada King"

    out = invoke(load_event("user_deleted_minimal"))
    # The stored contact is read first: a delete only writes a contact that is still ours.
    assert (out["reason"], out["crm_calls"]) == ("deactivated", 2)
    assert only_contact(crm)["status"] == "deactivated"
    state = state_of(sync_env, USER)
    assert state is not None
    assert state.contact_id == contact["id"]
    assert state.deleted_at == "2026-03-05T12:00:00.000000+00:00"
    assert dlq_messages(sync_env) == []


def test_created_links_an_existing_contact_by_email(
    sync_env: LocalResources, crm: CrmServer
) -> None:
    existing = crm.seed_contact(email="ADA@example.com", name="From the old CRM")
    out = invoke(created())
    assert (out["status"], out["reason"], out["contact_id"]) == (
        "applied",
        "linked",
        existing["id"],
    )
    contact = only_contact(crm)
    assert contact["auth0_user_id"] == USER
    assert contact["name"] == "Ada Lovelace"
    state = state_of(sync_env, USER)
    assert state is not None
    assert state.matched_by == "email"


def test_ambiguous_email_goes_to_the_dlq_without_guessing(
    sync_env: LocalResources, crm: CrmServer
) -> None:
    first = crm.seed_contact(email="ada@example.com", name="One")
    second = crm.seed_contact(email="Ada@Example.com", name="Two")
    event = updated("evt_amb", "2026-03-04T10:15:30.900Z")
    out = invoke(event)
    assert (out["status"], out["reason"]) == ("dead_lettered", "ambiguous_match")
    assert {c["name"] for c in crm.contacts()} == {"One", "Two"}  # nothing written
    assert "PATCH" not in calls_by_method(crm)
    [message] = dlq_messages(sync_env)
    assert message["body"] == event
    assert message["attributes"][DLQ_ATTR_ERROR_CLASS] == "AmbiguousMatch"
    assert first["id"] in message["attributes"][DLQ_ATTR_REASON]
    assert second["id"] in message["attributes"][DLQ_ATTR_REASON]
    assert message["attributes"][DLQ_ATTR_HANDLER] == "auth0-sync-UserUpdated"
    # The email is not in the reason: the DLQ is read by operators.
    assert "ada@example.com" not in message["attributes"][DLQ_ATTR_REASON].lower()


def test_partial_update_changes_only_what_it_carries(
    sync_env: LocalResources, crm: CrmServer
) -> None:
    invoke(created())
    out = invoke(load_event("user_updated_partial"))
    assert out["reason"] == "updated"
    contact = only_contact(crm)
    assert contact["name"] == "Ada King"
    assert contact["phone"] == "+447700900123"  # absent from the event, kept in the CRM
    assert contact["email"] == "ada@example.com"


def test_login_noise_costs_zero_crm_calls(sync_env: LocalResources, crm: CrmServer) -> None:
    invoke(created())
    crm.reset_stats()
    out = invoke(
        updated("evt_login", "2026-03-04T10:15:30.900Z", last_login="2026-03-04T10:15:30Z")
    )
    assert (out["status"], out["reason"], out["crm_calls"]) == ("skipped", "unchanged", 0)
    assert crm.stats()["total"] == 0


def test_a_login_carrying_no_mapped_attribute_is_recorded_not_dead_lettered(
    sync_env: LocalResources, crm: CrmServer
) -> None:
    """A login whose profile holds none of the mapped attributes (Auth0's `user.updated`
    requires only `user_id`, `created_at`, `updated_at` and `identities`: "any optional
    field may be absent", https://auth0.com/docs/customize/events/event-types) is settled
    on the quick path with nothing to note per field. The state table once refused that
    write (an expression attribute name given but unused), sending it to the DLQ as
    `state_rejected`."""
    invoke(created())
    crm.reset_stats()
    unmapped = dict.fromkeys(
        ["email", "email_verified", "name", "given_name", "family_name", "phone_number"]
    )
    event = updated(
        "evt_bare_login",
        "2026-03-04T10:15:30.900Z",
        last_login="2026-03-04T10:15:30.800Z",
        app_metadata=None,
        user_metadata=None,
        **unmapped,
    )
    assert set(event["detail"]["data"]["object"]) == {
        "user_id",
        "created_at",
        "updated_at",
        "last_login",
        "logins_count",
        "identities",
    }
    out = invoke(event)
    assert (out["status"], out["reason"], out["crm_calls"]) == ("skipped", "unchanged", 0)
    assert crm.stats()["total"] == 0
    assert dlq_messages(sync_env) == []
    state = state_of(sync_env, USER)
    assert state is not None
    assert (state.last_event_id, state.last_change_time) == (
        "evt_bare_login",
        "2026-03-04T10:15:30.900000+00:00",
    )
    assert only_contact(crm)["email"] == "ada@example.com"  # the contact kept as it was


def test_update_with_crm_id_in_app_metadata_reads_whose_it_is_then_writes(
    sync_env: LocalResources, crm: CrmServer
) -> None:
    contact = crm.seed_contact(email="ada@example.com", name="Old name")
    event = updated(
        "evt_meta", "2026-03-04T10:15:30.900Z", app_metadata={"crm_contact_id": contact["id"]}
    )
    out = invoke(event)
    # The hinted contact carries nobody's id: it is read (whose is it?), claimed and written.
    assert (out["reason"], out["crm_calls"]) == ("linked", 2)
    assert calls_by_method(crm) == {"GET": 1, "PATCH": 1}
    assert only_contact(crm)["name"] == "Ada Lovelace"
    assert only_contact(crm)["auth0_user_id"] == USER
    state = state_of(sync_env, USER)
    assert state is not None
    assert state.matched_by == "app_metadata"


def test_429_with_retry_after_then_success(sync_env: LocalResources, crm: CrmServer) -> None:
    invoke(created())
    crm.set_outage(429)  # answers 429 with Retry-After: 1 until lifted

    def lift_after_the_first_429() -> None:
        # The client then waits a whole second before it asks again: lifted well before.
        deadline = time.monotonic() + 30
        while crm.stats()["by_status"].get("429", 0) < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        crm.set_outage(None)

    lift = threading.Thread(target=lift_after_the_first_429)
    lift.start()
    started = time.monotonic()
    out = invoke(updated("evt_429", "2026-03-04T10:15:30.900Z", name="Ada King"))
    lift.join()
    assert (out["status"], out["reason"]) == ("applied", "updated")
    assert crm.stats()["by_status"]["429"] == 1
    assert time.monotonic() - started >= 1.0  # it waited what Retry-After said
    assert only_contact(crm)["name"] == "Ada King"


def test_503_until_time_runs_out_raises_transient_and_retry_applies(
    sync_env: LocalResources, crm: CrmServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # Lambda retries a minute or more later, past the circuit breaker's cool-down (30 s);
    # this test does not wait a minute, so the warm container's breaker cools down at
    # once (as `process` scales it to its own retry delays). Five 503s may fit in the
    # 3 s and open it: the retry must then be the probe, not fail fast.
    breaker = getattr(lambda_app.service().core.crm, "breaker", None)
    assert isinstance(breaker, CircuitBreaker)
    breaker.cool_down = 0.0
    crm.set_outage(503)
    with pytest.raises(TransientError, match=r"crm POST /contacts: HTTP 503") as info:
        invoke(created(), timeout_seconds=3)
    assert info.value.reason == "crm_503"
    assert retried(capsys.readouterr().out) == [("crm_503", 1.0)]  # seen before the DLQ
    assert crm.contacts() == []
    assert dlq_messages(sync_env) == []  # transient: Lambda retries, then its destination
    crm.set_outage(None)
    # Neither the circuit breaker nor the user's lease blocks Lambda's retry.
    out = invoke(created())
    assert (out["status"], out["reason"]) == ("applied", "created")


def test_422_is_permanent_dead_lettered_at_once_with_the_crm_message(
    sync_env: LocalResources, crm: CrmServer
) -> None:
    # (A user without an email no longer meets a 422: it is skipped as no_email. The CRM
    # is made to refuse instead.)
    crm.set_outage(422)
    event = variant(created(), "evt_refused")
    out = invoke(event)
    assert (out["status"], out["reason"], out["crm_calls"]) == ("dead_lettered", "crm_422", 1)
    [message] = dlq_messages(sync_env)
    assert message["body"] == event
    assert message["attributes"][DLQ_ATTR_ERROR_CLASS] == "CrmRejected"
    assert "crm POST /contacts: HTTP 422" in message["attributes"][DLQ_ATTR_REASON]
    assert "simulated outage" in message["attributes"][DLQ_ATTR_REASON]


def test_contact_deleted_on_the_crm_side_is_found_again_and_state_refreshed(
    sync_env: LocalResources, crm: CrmServer
) -> None:
    invoke(created())
    crm.reset()  # the CRM lost the contact
    out = invoke(updated("evt_after_loss", "2026-03-04T10:15:30.900Z", name="Ada King"))
    assert (out["status"], out["reason"]) == ("applied", "created")
    contact = only_contact(crm)
    state = state_of(sync_env, USER)
    assert state is not None
    assert state.contact_id == contact["id"]
    assert state.matched_by == "created"
    assert contact["name"] == "Ada King"


def test_update_before_create_applies_and_late_create_changes_nothing(
    sync_env: LocalResources, crm: CrmServer
) -> None:
    out = invoke(updated("evt_early", "2026-03-04T10:15:30.900Z", name="Ada King"))
    assert (out["status"], out["reason"]) == ("applied", "created")
    crm.reset_stats()
    out = invoke(created())  # updated_at 2026-01-10: older than what was applied
    assert (out["status"], out["reason"], out["crm_calls"]) == ("skipped", "stale", 0)
    assert only_contact(crm)["name"] == "Ada King"


def test_duplicate_delivery_applies_once(sync_env: LocalResources, crm: CrmServer) -> None:
    first = invoke(created())
    again = invoke(created())
    assert first["reason"] == "created"
    assert (again["status"], again["reason"], again["crm_calls"]) == ("skipped", "duplicate", 0)
    assert calls_by_method(crm) == {"POST": 1}


def test_delete_of_unknown_user_is_a_counted_skip_and_blocks_late_updates(
    sync_env: LocalResources, crm: CrmServer
) -> None:
    out = invoke(load_event("user_deleted_minimal"))
    assert (out["status"], out["reason"]) == ("skipped", "contact_missing")
    out = invoke(updated("evt_late", "2026-03-04T10:15:30.900Z"))
    # The tombstone found no contact, so the late event is looked up (auth0_user_id, then
    # email) in case it reveals one to deactivate; it creates nothing.
    assert (out["status"], out["reason"], out["crm_calls"]) == ("skipped", "deleted", 2)
    assert crm.contacts() == []


def test_anonymize_policy(
    sync_env: LocalResources, crm: CrmServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(Env.DELETE_POLICY, "anonymize")
    invoke(created())
    out = invoke(load_event("user_deleted_minimal"))
    assert out["reason"] == "anonymized"
    contact = only_contact(crm)
    # The whole contact, read back: nothing links it to the person or the Auth0 identity.
    personal = {k: v for k, v in contact.items() if k not in ("id", "created_at", "updated_at")}
    email = personal.pop("email")
    assert personal == {
        "status": "deactivated",
        "name": None,
        "given_name": None,
        "family_name": None,
        "phone": None,
        "auth0_user_id": "",
        "source_updated_at": "2026-03-05T12:00:00.000000+00:00",  # the delete's own time
    }
    assert email.startswith("deleted-")
    assert email.endswith("@anonymized.invalid")
    assert USER.split("|")[1] not in email
    # Our state keeps the order of the delete, not the contact or what was written.
    state = state_of(sync_env, USER)
    assert state is not None
    assert (state.contact_id, state.written, state.deleted_at) == (
        None,
        {},
        "2026-03-05T12:00:00.000000+00:00",
    )


def test_anonymized_addresses_cannot_be_linked_to_the_user(
    sync_env: LocalResources, crm: CrmServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two erasures of the same user id leave two unrelated addresses (no hash of the id)."""
    monkeypatch.setenv(Env.DELETE_POLICY, "anonymize")
    emails = []
    for life in range(2):
        crm.reset()
        lambda_app.service.cache_clear()
        signup = variant(created(), f"evt_life{life}", when=f"2026-03-0{life + 1}T00:00:00.000Z")
        signup["detail"]["time"] = f"2026-03-0{life + 1}T00:00:00.000Z"
        invoke(signup)
        gone = variant(load_event("user_deleted_minimal"), f"evt_gone{life}")
        gone["detail"]["data"]["object"]["deleted_at"] = f"2026-03-0{life + 1}T01:00:00.000Z"
        gone["detail"]["time"] = f"2026-03-0{life + 1}T01:00:00.000Z"
        invoke(gone)
        emails.append(only_contact(crm)["email"])
    assert emails[0] != emails[1]


def test_skip_policy_for_missing_contact_on_update(
    sync_env: LocalResources, crm: CrmServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(Env.MISSING_CONTACT_POLICY, "skip")
    out = invoke(updated("evt_skip", "2026-03-04T10:15:30.900Z"))
    assert (out["status"], out["reason"]) == ("skipped", "contact_missing")
    assert crm.contacts() == []


@pytest.mark.parametrize(
    ("fixture", "reason"), [("test_event", "test_event"), ("unknown_type", "unknown_type")]
)
def test_test_events_and_unknown_types_are_counted_and_write_nothing(
    sync_env: LocalResources, crm: CrmServer, fixture: str, reason: str
) -> None:
    out = invoke(load_event(fixture))
    assert (out["status"], out["reason"], out["crm_calls"]) == ("skipped", reason, 0)
    assert crm.stats()["total"] == 0
    assert state_of(sync_env, USER) is None


def test_malformed_event_goes_to_the_dlq_naming_the_field(
    sync_env: LocalResources, crm: CrmServer
) -> None:
    event = load_event("malformed_missing_user_id")
    out = invoke(event)
    assert (out["status"], out["reason"]) == ("dead_lettered", "invalid_event")
    [message] = dlq_messages(sync_env)
    assert message["body"] == event
    assert "detail.data.object.user_id: Field required" in message["attributes"][DLQ_ATTR_REASON]


def test_outcome_metrics_are_emitted(
    sync_env: LocalResources, crm: CrmServer, capsys: pytest.CaptureFixture[str]
) -> None:
    invoke(created())
    invoke(created())
    emitted = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line
    ]
    names = {
        m["Name"] for doc in emitted for d in doc["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]
    }
    assert {"ContactCreated", "CrmCalls", "EventSkipped"} <= names
    skipped = [doc for doc in emitted if "EventSkipped" in doc]
    assert skipped[0]["reason"] == "duplicate"


def test_missing_crm_secret_value_is_transient_and_named(
    sync_env: LocalResources,
    crm: CrmServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(Env.CRM_TOKEN_SECRET_ARN, sync_env.secret_arn + "-nope")
    with pytest.raises(TransientError, match=r"CRM token secret .*-nope cannot be read"):
        invoke(created())
    assert crm.contacts() == []
    assert retried(capsys.readouterr().out) == [("crm_token_unavailable", 1.0)]


def test_a_queue_batch_counts_each_record_handed_back_for_a_retry(
    sync_env: LocalResources, crm: CrmServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # Under 3 s left (MIN_RECORD_MILLIS) the user's first update is not started, and its
    # later one is held behind it: both come back, each counted with its reason.
    first = updated("evt_q1", "2026-03-04T10:15:30.100Z", name="Ada")
    second = updated("evt_q2", "2026-03-04T10:15:30.900Z", name="Ada King")
    batch = sqs_batch([first, second], queue="auth0-sync-UserUpdated")
    handler = lambda_app.make_handler(EventType.USER_UPDATED)
    context: Any = LocalContext("auth0-sync-UserUpdated", 2.0)  # as `invoke` passes it
    answer = handler(batch, context)
    assert len(answer["batchItemFailures"]) == 2
    assert retried(capsys.readouterr().out) == [
        ("lambda_timeout", 1.0),
        ("earlier_event_pending", 1.0),
    ]
    assert crm.contacts() == []
