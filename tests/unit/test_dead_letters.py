"""Reading the DLQ's three shapes, from records written by hand after AWS's documentation
(tests/events/dlq), and the rules the redrive decides by."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from auth0_sync.dead_letter import (
    Failure,
    History,
    lambda_on_failure_record,
    permanent_failure_message,
    with_history,
)
from auth0_sync.errors import TransientError
from auth0_sync.names import REPLAY_HISTORY_KEY
from auth0_sync.redrive import RedrivePolicy, is_transient
from auth0_sync.replay.letters import DeadLetter, group_by_event, read_letter
from auth0_sync_cli.dlq import MASK, _describe, mask_event, render_table
from tests.conftest import EVENTS_DIR, load_event

pytestmark = pytest.mark.unit

DLQ_FIXTURES = Path(EVENTS_DIR) / "dlq"
SENT = datetime(2026, 1, 10, 8, 21, 1, tzinfo=UTC)


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DLQ_FIXTURES / f"{name}.json").read_text("utf-8"))
    return data


def received(body: Any, attributes: dict[str, str] | None = None, n: int = 1) -> dict[str, Any]:
    """A message as SQS ReceiveMessage returns it (the body as sent)."""
    return {
        "MessageId": f"m-{n}",
        "ReceiptHandle": f"r-{n}",
        "Body": body if isinstance(body, str) else json.dumps(body),
        "Attributes": {"SentTimestamp": str(int(SENT.timestamp() * 1000))},
        "MessageAttributes": {
            k: {"DataType": "String", "StringValue": v} for k, v in (attributes or {}).items()
        },
    }


# Lambda's on-failure record -------------------------------------------------------------


def test_the_documented_example_record_is_an_internal_error_of_my_function() -> None:
    letter = read_letter(received(fixture("lambda_on_failure_documented")))
    assert (letter.shape, letter.reason, letter.attempts, letter.handler) == (
        "on_failure",
        "internal_error",
        3,
        "my-function",
    )
    assert letter.detail == (
        "RequestId: e4b46cbf-b738-xmpl-8880-a18cdf61200e Process exited before completing request"
    )
    # Its request is not an Auth0 event: recovered as it is, with no ids.
    assert letter.event == {
        "ORDER_IDS": fixture("lambda_on_failure_documented")["requestPayload"]["ORDER_IDS"]
    }
    assert (letter.event_id, letter.event_type) == (None, None)


def test_a_function_error_of_ours_gives_its_reason_from_the_error_message() -> None:
    letter = read_letter(received(fixture("lambda_on_failure_function_error")))
    assert (letter.shape, letter.error_class, letter.reason) == (
        "on_failure",
        "TransientError",
        "crm_503",
    )
    assert letter.detail == "crm POST /contacts: HTTP 503 after 5 attempt(s)"
    assert (letter.attempts, letter.handler) == (3, "Auth0Sync-HandlersUserCreated-AbC123")
    assert letter.event == load_event("user_created")
    assert (letter.event_id, letter.event_type, letter.user_id) == (
        "evt_1aB2cD3eF4gH5iJ6kL7mN8",
        "user.created",
        "auth0|65e5a1f0c2b7d94e1a3f0c11",
    )


def test_a_reason_field_in_the_response_payload_is_not_read() -> None:
    record = fixture("lambda_on_failure_function_error")
    record["responsePayload"]["reason"] = "crm_401"
    assert read_letter(received(record)).reason == "crm_503"
    record["responsePayload"]["errorMessage"] = "crm POST /contacts: HTTP 503"
    assert read_letter(received(record)).reason == "internal_error"


def test_a_timed_out_invocation_is_lambda_timeout() -> None:
    letter = read_letter(received(fixture("lambda_on_failure_timeout")))
    assert (letter.reason, letter.error_class, letter.attempts) == (
        "lambda_timeout",
        "Sandbox.Timedout",
        3,
    )


def test_an_error_type_that_is_not_ours_is_internal_even_if_it_reads_like_a_reason() -> None:
    letter = read_letter(received(fixture("lambda_on_failure_foreign_error")))
    assert (letter.reason, letter.error_class, letter.attempts) == ("internal_error", "KeyError", 2)
    assert letter.detail == "crm_503: 'email'"


def test_an_event_lambda_dropped_after_its_maximum_age_is_transient() -> None:
    """`condition: EventAgeExceeded` with no `responsePayload`: throttled until its age ran
    out, the event never failed; the redrive may run it again."""
    letter = read_letter(received(fixture("lambda_on_failure_event_age_exceeded")))
    assert (letter.shape, letter.error_class, letter.reason, letter.attempts) == (
        "on_failure",
        "EventAgeExceeded",
        "event_age_exceeded",
        0,
    )
    assert letter.detail.startswith("Lambda dropped the event after its maximum event age")
    assert letter.handler == "Auth0Sync-HandlersUserCreated-AbC123"
    assert letter.event == load_event("user_created")
    assert is_transient(letter.reason)
    now = SENT + timedelta(hours=1)
    assert RedrivePolicy(max_age_seconds=86400).verdict([letter], now) == "redrive"


def test_with_a_function_error_the_error_decides_whatever_the_condition() -> None:
    retries = read_letter(received(fixture("lambda_on_failure_function_error")))
    assert (retries.error_class, retries.reason) == ("TransientError", "crm_503")
    record = fixture("lambda_on_failure_function_error")
    record["requestContext"]["condition"] = "EventAgeExceeded"
    assert read_letter(received(record)).reason == "crm_503"
    record["responsePayload"] = {"errorType": "KeyError", "errorMessage": "'email'"}
    assert read_letter(received(record)).reason == "internal_error"


def test_the_local_runner_writes_the_documented_shape_and_no_field_of_ours() -> None:
    documented = fixture("lambda_on_failure_function_error")
    try:
        raise TransientError("crm POST /contacts: HTTP 503 after 5 attempt(s)", "crm_503")
    except TransientError as exc:
        record = lambda_on_failure_record(
            load_event("user_created"),
            exc,
            attempts=3,
            function_arn="arn:aws:lambda:us-east-1:000000000000:function:auth0-sync-UserCreated",
        )

    def keys(value: Any) -> Any:
        return {k: keys(v) for k, v in value.items()} if isinstance(value, dict) else None

    # Same fields at every level as AWS's record (the request is the event itself).
    assert {k: v for k, v in keys(record).items() if k != "requestPayload"} == {
        k: v for k, v in keys(documented).items() if k != "requestPayload"
    }
    assert record["requestPayload"] == load_event("user_created")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["timestamp"])
    assert record["requestContext"]["functionArn"] == (
        "arn:aws:lambda:us-east-1:000000000000:function:auth0-sync-UserCreated:$LATEST"
    )
    assert (
        record["requestContext"]["condition"],
        record["requestContext"]["approximateInvokeCount"],
    ) == ("RetriesExhausted", 3)
    assert record["responsePayload"]["errorType"] == "TransientError"
    assert record["responsePayload"]["errorMessage"] == (
        "crm_503: crm POST /contacts: HTTP 503 after 5 attempt(s)"
    )
    assert record["responsePayload"]["stackTrace"][0].startswith("  File ")
    assert record["responseContext"] == documented["responseContext"]


# EventBridge's rule-target DLQ ----------------------------------------------------------


def test_an_eventbridge_delivery_failure_keeps_its_code_attempts_and_target() -> None:
    message = fixture("eventbridge_delivery_failure")
    message["Body"] = json.dumps(message["Body"])
    letter = read_letter(message)
    assert (letter.shape, letter.reason, letter.error_class, letter.attempts) == (
        "delivery",
        "delivery_failed",
        "NO_PERMISSIONS",
        185,
    )
    assert letter.detail.startswith("User: arn:aws:sts::123456789012:assumed-role/")
    assert letter.handler == "Auth0Sync-HandlersUserCreated-AbC123"
    assert letter.event == load_event("user_created")
    assert letter.sent_at == SENT
    assert letter.attributes["RULE_ARN"].startswith("arn:aws:events:eu-west-1:123456789012:rule/")


# SQS's redrive policy (buffered topology) --------------------------------------------------


def test_a_message_sqs_moved_from_a_buffered_queue_is_a_transient_queue_letter() -> None:
    message = fixture("sqs_redrive_receive_count_exceeded")
    message["Body"] = json.dumps(message["Body"])
    letter = read_letter(message)

    assert (letter.shape, letter.reason, letter.error_class) == (
        "queue",
        "receive_count_exceeded",
        "ReceiveCountExceeded",
    )
    assert "Auth0Sync-BuffersUserCreatedQueue0743AB1A-Xy12Ab34Cd56" in letter.detail
    assert letter.event == load_event("user_created")
    assert letter.sent_at == SENT
    assert is_transient(letter.reason)
    now = SENT + timedelta(hours=1)
    assert RedrivePolicy().verdict([letter], now) == "redrive"


def test_a_bare_bus_event_without_the_source_attribute_reads_the_same() -> None:
    """moto does not set DeadLetterQueueSourceArn: the body alone says it."""
    letter = read_letter(received(load_event("user_created")))

    assert (letter.shape, letter.reason) == ("queue", "receive_count_exceeded")
    assert letter.event == load_event("user_created")


def test_a_body_that_is_no_bus_event_and_has_no_attributes_stays_unknown() -> None:
    letter = read_letter(received({"hello": "world"}))

    assert (letter.shape, letter.reason) == ("unknown", "unknown")


# The handlers' own message, and the history a replay carries -----------------------------


def test_a_permanent_failure_of_a_replayed_event_keeps_its_history_out_of_the_body() -> None:
    event = load_event("user_created")
    replayed = with_history(event, History(4, "2026-01-10T08:00:02+00:00"))
    failure = Failure("InvalidEvent", "invalid_event", "detail.id: Field required", "fn")
    body, attributes = permanent_failure_message(replayed, failure)
    assert json.loads(body) == event
    assert REPLAY_HISTORY_KEY not in json.loads(body)
    letter = read_letter(received(body, attributes))
    assert (letter.shape, letter.reason, letter.detail) == (
        "handler",
        "invalid_event",
        "detail.id: Field required",
    )
    assert letter.attempts == 5
    assert letter.first_failure_at == datetime(2026, 1, 10, 8, 0, 2, tzinfo=UTC)


def test_a_listing_never_prints_a_line_break_from_the_event_or_its_reason() -> None:
    event = load_event("user_created")
    event["detail"]["id"] = "evt_1\r\nevt_forged"
    event["detail"]["data"]["object"]["user_id"] = "auth0|1\nforged"
    failure = Failure("InvalidEvent", "invalid_event", "detail.id: bad\r\nforged line", "fn")
    letter = read_letter(received(*permanent_failure_message(event, failure)))

    table = render_table([letter], now=SENT)
    shown = "\n".join(_describe(letter, SENT))

    assert len(table.split("\n")) == 2  # the header and one row
    assert "\r" not in table
    assert "evt_1\\r\\nevt_forged" in table
    assert "auth0|1\\nforged" in table
    assert "\r" not in shown
    assert "bad\\r\\nforged line" in shown


def test_messages_of_one_event_group_together_in_reading_order() -> None:
    event, other = load_event("user_created"), load_event("user_updated")
    letters = [
        read_letter(received(body, n=n))
        for n, body in enumerate([event, other, {"not": "an event"}, event])
    ]
    groups = group_by_event(letters)
    assert [[x.message_id for x in group] for group in groups] == [
        ["m-0", "m-3"],
        ["m-1"],
        ["m-2"],
    ]


# What the redrive may retry ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "transient"),
    [
        ("crm_503", True),
        ("crm_500", True),
        ("crm_599", True),
        ("crm_429", True),
        ("crm_408", True),
        ("crm_timeout", True),
        ("lease_held", True),
        ("email_conflict", True),
        ("lambda_timeout", True),
        ("event_age_exceeded", True),
        ("crm_401", False),
        ("crm_422", False),
        ("crm_5031", False),
        ("invalid_event", False),
        ("internal_error", False),
        ("delivery_failed", False),
        ("owned_by_other", True),  # retried: the other user's delete or link may be on its way
        ("transient", False),
    ],
)
def test_transient_reasons(reason: str, transient: bool) -> None:
    assert is_transient(reason) is transient


def _letter(reason: str, first: datetime | None, event: Any = None, n: int = 1) -> DeadLetter:
    body = load_event("user_created") if event is None else event
    attributes = {"error_class": "TransientError", "reason": f"{reason}: x"}
    if first is not None:
        attributes["first_failure_at"] = first.isoformat()
    return read_letter(received(body, attributes, n))


def test_the_policy_redrives_young_transient_events_only() -> None:
    now = datetime(2026, 1, 20, tzinfo=UTC)
    policy = RedrivePolicy(max_age_seconds=4 * 86400)
    young, old = now - timedelta(days=1), now - timedelta(days=4, seconds=1)
    assert policy.verdict([_letter("crm_503", young)], now) == "redrive"
    assert policy.verdict([_letter("crm_503", young), _letter("crm_401", young, n=2)], now) == (
        "permanent"
    )
    assert policy.verdict([_letter("crm_503", old)], now) == "too_old"
    assert policy.verdict([_letter("crm_503", young), _letter("crm_429", old, n=2)], now) == (
        "too_old"
    )
    assert policy.verdict([_letter("crm_503", young, event="[1]")], now) == "no_event"


# Masking for `dlq show` ------------------------------------------------------------------


def test_masking_hides_the_profile_and_keeps_ids_times_and_the_envelope() -> None:
    event = load_event("user_created")
    event["detail"]["data"]["previous_object"] = {"email": "old@example.com", "phone_number": None}
    original = copy.deepcopy(event)
    masked = mask_event(event)
    obj = masked["detail"]["data"]["object"]
    assert obj["user_id"] == "auth0|65e5a1f0c2b7d94e1a3f0c11"
    assert obj["created_at"] == "2026-01-10T08:00:00.000Z"
    assert obj["identities"] == original["detail"]["data"]["object"]["identities"]
    for name in ("email", "name", "given_name", "family_name", "phone_number"):
        assert obj[name] == MASK
    assert obj["user_metadata"] == {"company": MASK}
    assert obj["email_verified"] is True
    assert masked["detail"]["data"]["previous_object"] == {"email": MASK, "phone_number": None}
    assert {k: v for k, v in masked.items() if k != "detail"} == {
        k: v for k, v in original.items() if k != "detail"
    }
    assert masked["detail"]["id"] == original["detail"]["id"]
    assert "ada@example.com" not in json.dumps(masked)
    assert event == original  # the event itself is left as it was


def test_an_invalid_event_reason_is_our_error_type() -> None:
    # InvalidEvent is ours: its record keeps its reason.
    record = fixture("lambda_on_failure_function_error")
    record["responsePayload"].update(
        errorType="InvalidEvent", errorMessage="invalid_event: detail.id: Field required"
    )
    letter = read_letter(received(record))
    assert (letter.reason, letter.detail) == ("invalid_event", "detail.id: Field required")
