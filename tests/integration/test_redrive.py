"""The automatic redrive against moto's DLQ and tables and the reference CRM over HTTP:
`auth0-sync redrive` (this process) and the scheduled function (through a real HTTP
double of Lambda's Invoke API running the handlers). Every test reads the effect back
from the queue, the CRM or the metrics the function prints."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
import pytest

from auth0_sync.dead_letter import Failure, SqsDeadLetterQueue
from auth0_sync.names import (
    DLQ_ATTR_ATTEMPTS,
    DLQ_ATTR_FIRST_FAILURE,
    DLQ_ATTR_REASON,
    METRICS_NAMESPACE,
    STACK_OUTPUT_REDRIVE_FUNCTION,
    RedriveMetric,
)
from auth0_sync_cli.crm_server import CrmServer
from auth0_sync_cli.local_aws import LocalResources
from auth0_sync_cli.main import main
from auth0_sync_cli.runner import LocalContext
from tests.integration.lambda_double import REDRIVE_FUNCTION, LambdaDouble
from tests.integration.test_replay import (
    contacts_by_user,
    documented,
    messages,
    put_handler_failure,
    put_on_failure,
    user_event,
)

pytestmark = pytest.mark.integration

FIRST_FAILURE = "2026-03-01T09:00:00+00:00"


def put_failure(
    queue_url: str,
    event: dict[str, Any],
    reason: str,
    *,
    attempts: int = 1,
    first_failure_at: str = FIRST_FAILURE,
    error_class: str = "TransientError",
) -> None:
    """A message in the handlers' shape (what a replay writes for a transient failure)."""
    failure = Failure(
        error_class,
        reason,
        f"{reason} happened",
        "auth0-sync-UserCreated",
        attempts,
        first_failure_at,
    )
    SqsDeadLetterQueue(queue_url).send_permanent(event, failure)


def recent(days: float = 0.0) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).isoformat()


def redrive(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    """`auth0-sync redrive --json` in this process; its exit code and report."""
    capsys.readouterr()
    code = main(["redrive", "--json", "--rate", "1000", "--timeout", "5", *args])
    return code, json.loads(capsys.readouterr().out)


def by_event(aws: LocalResources) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for message in messages(aws):
        body = message["body"]
        event = body.get("requestPayload", body)
        found.setdefault(event["detail"]["id"], []).append(message)
    return found


def test_redrive_waits_while_the_crm_is_down_then_drains_every_transient_message(
    sync_env: LocalResources, crm: CrmServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # Five events dead-lettered by Lambda during an outage (3 attempts, crm_503), and one
    # the CRM rejected for good.
    for n in range(5):
        put_on_failure(sync_env.dlq_url, user_event(n))
    put_handler_failure(sync_env.dlq_url, user_event(9))  # crm_401
    before = by_event(sync_env)
    crm.set_outage(503)

    code, report = redrive(capsys)

    assert code == 1
    assert (report["redriven"], report["still_failing"], report["left_for_a_person"]) == (0, 0, 1)
    assert report["stopped"] is not None
    assert report["stopped"].startswith("the CRM does not answer the probe: crm_503")
    # One cheap GET, nothing else; every message as it was.
    assert crm.stats()["by_method"] == {"GET": 1, "POST": 0, "PATCH": 0}
    assert by_event(sync_env) == before

    crm.set_outage(None)
    crm.reset_stats()
    code, report = redrive(capsys)

    assert code == 1  # the permanent one still needs a person
    assert (report["redriven"], report["still_failing"], report["left_for_a_person"]) == (5, 0, 1)
    assert report["left"] == {"crm_401": 1}
    assert report["applied"] == {"created": 5}
    # The CRM equals the truth: one contact per user, with the event's profile.
    contacts = contacts_by_user(crm)
    assert sorted(contacts) == [f"auth0|user{n:04d}" for n in range(5)]
    assert [(c[0]["email"], c[0]["name"]) for _, c in sorted(contacts.items())] == [
        (f"user{n}@example.com", f"User {n} v0") for n in range(5)
    ]
    # The five signups went in batch creates (the contract's POST /contacts/batch).
    assert crm.stats()["by_method"]["POST"] < 5
    # Only the permanent failure is left, untouched.
    assert by_event(sync_env) == {"evt_created0009m000": before["evt_created0009m000"]}


def test_a_transient_message_past_the_age_limit_stays_for_a_person(
    sync_env: LocalResources, crm: CrmServer, capsys: pytest.CaptureFixture[str]
) -> None:
    put_failure(sync_env.dlq_url, user_event(1), "crm_503", first_failure_at=recent(days=1))
    put_failure(sync_env.dlq_url, user_event(2), "crm_503", first_failure_at=recent(days=5))

    code, report = redrive(capsys, "--max-age-days", "4")

    assert code == 1
    assert (report["redriven"], report["left_for_a_person"], report["left"]) == (
        1,
        1,
        {"too_old": 1},
    )
    assert [c["auth0_user_id"] for c in crm.contacts()] == ["auth0|user0001"]
    [old] = messages(sync_env)
    assert old["body"] == user_event(2)
    assert old["attributes"][DLQ_ATTR_REASON] == "crm_503: crm_503 happened"

    # The limit is what kept it: with a longer one it goes too.
    code, report = redrive(capsys, "--max-age-days", "6")
    assert (code, report["redriven"], report["left_for_a_person"]) == (0, 1, 0)
    assert messages(sync_env) == []


def test_a_new_failure_keeps_the_attempt_count_and_the_first_failure(
    sync_env: LocalResources, crm: CrmServer, capsys: pytest.CaptureFixture[str]
) -> None:
    event = user_event(3)
    first = recent(days=2)
    put_failure(sync_env.dlq_url, event, "lease_held", attempts=4, first_failure_at=first)
    # Another invocation holds the user's lease for the next hour: the CRM answers, the
    # event fails again (transient).
    boto3.client("dynamodb").put_item(
        TableName=sync_env.state_table,
        Item={
            "user_id": {"S": "auth0|user0003"},
            "lease_owner": {"S": "another-invocation"},
            "lease_until": {"N": str(Decimal(round(time.time() + 3600)))},
        },
    )

    code, report = redrive(capsys)

    assert code == 1
    assert (report["redriven"], report["still_failing"], report["failed"]) == (
        0,
        1,
        {"lease_held": 1},
    )
    [message] = messages(sync_env)  # the old one replaced, not added to
    assert message["body"] == event
    assert message["attributes"][DLQ_ATTR_REASON].startswith("lease_held: ")
    assert message["attributes"][DLQ_ATTR_ATTEMPTS] == "5"
    assert message["attributes"][DLQ_ATTR_FIRST_FAILURE] == first
    assert crm.contacts() == []


def test_a_duplicate_group_is_replayed_once_and_deleted_together(
    sync_env: LocalResources, crm: CrmServer, capsys: pytest.CaptureFixture[str]
) -> None:
    event = user_event(4)
    # The same event dead-lettered twice: by Lambda, then after a redelivery.
    put_on_failure(sync_env.dlq_url, event)
    put_failure(sync_env.dlq_url, event, "crm_429", first_failure_at=recent(days=1))

    code, report = redrive(capsys)

    assert (code, report["redriven"], report["messages_deleted"]) == (0, 1, 2)
    assert crm.stats()["by_method"]["POST"] == 1
    assert [c["auth0_user_id"] for c in crm.contacts()] == ["auth0|user0004"]
    assert messages(sync_env) == []


def test_an_event_lambda_dropped_for_its_age_is_listed_as_such_and_redriven(
    sync_env: LocalResources, crm: CrmServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Lambda's documented EventAgeExceeded record (no responsePayload: the function never
    ran) is `event_age_exceeded` in `dlq list`, and the redrive applies it."""
    record = documented("lambda_on_failure_event_age_exceeded")
    record["requestPayload"] = user_event(4)
    boto3.client("sqs").send_message(QueueUrl=sync_env.dlq_url, MessageBody=json.dumps(record))
    capsys.readouterr()
    assert main(["dlq", "list", "--json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert (listed["event_id"], listed["error_class"], listed["reason"]) == (
        "evt_created0004m000",
        "EventAgeExceeded",
        "event_age_exceeded",
    )

    code, report = redrive(capsys)

    assert (code, report["redriven"], report["applied"]) == (0, 1, {"created": 1})
    assert sorted(contacts_by_user(crm)) == ["auth0|user0004"]
    assert messages(sync_env) == []


def test_an_empty_dlq_costs_no_crm_call(
    sync_env: LocalResources, crm: CrmServer, capsys: pytest.CaptureFixture[str]
) -> None:
    put_handler_failure(sync_env.dlq_url, user_event(5))  # permanent only
    code, report = redrive(capsys)
    assert (code, report["redriven"], report["left_for_a_person"]) == (1, 0, 1)
    assert crm.stats()["by_method"] == {"GET": 0, "POST": 0, "PATCH": 0}


# The scheduled function -------------------------------------------------------------------


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def emf_values(stdout: str) -> dict[str, float]:
    """The redrive metrics in the EMF documents Powertools printed (namespace, dimension)."""
    values: dict[str, float] = {}
    names = {str(m) for m in RedriveMetric}
    for line in stdout.splitlines():
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if not isinstance(document, dict) or "_aws" not in document:
            continue
        for directive in document["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == METRICS_NAMESPACE
            for metric in directive["Metrics"]:
                if metric["Name"] in names:
                    assert directive["Dimensions"] == [["service"]]
                    # Powertools writes a list of values: one add_metric, one value.
                    [values[metric["Name"]]] = as_list(document[metric["Name"]])
    return values


def test_the_scheduled_function_redrives_through_the_handlers_and_publishes_its_counts(
    sync_env: LocalResources,
    crm: CrmServer,
    redrive_function: LambdaDouble,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for n in range(3):
        put_on_failure(sync_env.dlq_url, user_event(n))
    put_handler_failure(sync_env.dlq_url, user_event(8))  # crm_401: a person's
    from auth0_sync.handlers import redrive as handler_module

    capsys.readouterr()
    result = handler_module.handler({}, LocalContext(REDRIVE_FUNCTION, 120.0))
    published = emf_values(capsys.readouterr().out)

    assert (result["redriven"], result["still_failing"], result["left_for_a_person"]) == (3, 0, 1)
    # Each event went to its handler function, synchronously.
    assert sorted(c["event_id"] for c in redrive_function.calls) == [
        f"evt_created{n:04d}m000" for n in range(3)
    ]
    assert {c["function"] for c in redrive_function.calls} == {"Auth0Sync-UserCreated"}
    assert sorted(contacts_by_user(crm)) == [f"auth0|user{n:04d}" for n in range(3)]
    assert list(by_event(sync_env)) == ["evt_created0008m000"]
    assert {k: v for k, v in published.items() if k != RedriveMetric.OLDEST_FAILURE_AGE} == {
        RedriveMetric.REDRIVEN: 3,
        RedriveMetric.STILL_FAILING: 0,
        RedriveMetric.LEFT_FOR_A_PERSON: 1,
    }


def test_the_scheduled_function_publishes_the_age_of_the_oldest_failure_it_still_holds(
    sync_env: LocalResources,
    crm: CrmServer,
    redrive_function: LambdaDouble,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The alarm's metric: seconds since the first failure of the oldest event left in
    the DLQ. An older event the run applied no longer counts; the queue's own
    ApproximateAgeOfOldestMessage would say "seconds" for a re-sent message."""
    known = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    # Left for a person (a permanent reason), first failed two hours ago ...
    put_failure(sync_env.dlq_url, user_event(8), "crm_401", first_failure_at=known.isoformat())
    # ... and older, but transient: redriven by this run, so no longer held.
    put_failure(sync_env.dlq_url, user_event(1), "crm_503", first_failure_at=recent(days=3.5))
    from auth0_sync.handlers import redrive as handler_module

    capsys.readouterr()
    before = (datetime.now(UTC) - known).total_seconds()
    result = handler_module.handler({}, LocalContext(REDRIVE_FUNCTION, 120.0))
    after = (datetime.now(UTC) - known).total_seconds()
    published = emf_values(capsys.readouterr().out)

    assert (result["redriven"], result["left_for_a_person"]) == (1, 1)
    assert before - 1 <= published[RedriveMetric.OLDEST_FAILURE_AGE] <= after + 1
    assert result["oldest_failure_age_seconds"] == published[RedriveMetric.OLDEST_FAILURE_AGE]

    # Once the last one is gone, the age is 0: the alarm clears on the next run.
    boto3.client("sqs").purge_queue(QueueUrl=sync_env.dlq_url)
    handler_module.handler({}, LocalContext(REDRIVE_FUNCTION, 120.0))
    assert emf_values(capsys.readouterr().out)[RedriveMetric.OLDEST_FAILURE_AGE] == 0


def test_redrive_with_stack_runs_the_deployed_function(
    sync_env: LocalResources,
    crm: CrmServer,
    redrive_function: LambdaDouble,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {STACK_OUTPUT_REDRIVE_FUNCTION: {"Value": REDRIVE_FUNCTION}},
    }
    boto3.client("cloudformation").create_stack(
        StackName="Auth0Sync", TemplateBody=json.dumps(template)
    )
    put_on_failure(sync_env.dlq_url, user_event(1))
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    capsys.readouterr()
    code = main(["redrive", "--stack", "Auth0Sync"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.splitlines()[0] == f"redrive ({REDRIVE_FUNCTION}):"
    assert "redriven               1   (created 1)" in out
    assert [c["function"] for c in redrive_function.calls] == [
        REDRIVE_FUNCTION,
        "Auth0Sync-UserCreated",
    ]
    assert messages(sync_env) == []


def test_redrive_with_stack_refuses_the_flags_of_a_local_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["redrive", "--stack", "Auth0Sync", "--rate", "2", "--limit", "5"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip() == (
        "auth0-sync redrive: --rate, --limit apply to a local run; with --stack the deployed "
        "function uses its own settings (context keys redriveMaxAgeDays, ...)"
    )
