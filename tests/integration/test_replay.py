"""`dlq list` and `replay` against moto's DLQ and state table and the reference
CRM. Messages are written in the three shapes AWS and the handlers write (Lambda's and
EventBridge's from the documented records in tests/events/dlq); each test reads the effect
back from the CRM, the queue or the tables."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from auth0_sync.dead_letter import Failure, SqsDeadLetterQueue
from auth0_sync.names import (
    DLQ_ATTR_ATTEMPTS,
    DLQ_ATTR_ERROR_CLASS,
    DLQ_ATTR_FIRST_FAILURE,
    DLQ_ATTR_REASON,
    Env,
)
from auth0_sync.replay.pacing import TokenBucket
from auth0_sync.replay.replayer import Replayer, Selection
from auth0_sync.sync import Outcome
from auth0_sync_cli.crm_server import CrmServer
from auth0_sync_cli.dlq import DlqReader, list_letters
from auth0_sync_cli.local_aws import LocalAws, LocalResources
from auth0_sync_cli.main import main
from auth0_sync_cli.replay import make_replayer
from auth0_sync_cli.sample import EPOCH, bus_event
from tests.conftest import EVENTS_DIR

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def user_event(n: int, event_type: str = "user.created", minutes: int = 0) -> dict[str, Any]:
    """A valid event for user n; its id says which user, type and time it is."""
    moment = EPOCH + timedelta(minutes=minutes)
    stamp = moment.isoformat().replace("+00:00", "Z")
    user_id = f"auth0|user{n:04d}"
    if event_type == "user.deleted":
        obj: dict[str, Any] = {"user_id": user_id, "deleted_at": stamp}
    else:
        obj = {
            "user_id": user_id,
            "email": f"user{n}@example.com",
            "name": f"User {n} v{minutes}",
            "created_at": EPOCH.isoformat().replace("+00:00", "Z"),
            "updated_at": stamp,
            "identities": [],
        }
    kind = event_type.split(".")[1]
    return bus_event(event_type, obj, moment, f"evt_{kind}{n:04d}m{minutes:03d}")


def documented(name: str) -> dict[str, Any]:
    """A DLQ message of tests/events/dlq, written from AWS's documentation."""
    data: dict[str, Any] = json.loads((EVENTS_DIR / "dlq" / f"{name}.json").read_text("utf-8"))
    return data


def put_delivery_failure(queue_url: str, event: dict[str, Any]) -> None:
    """What EventBridge writes when it cannot deliver to the function (the documented
    attributes, with this event as the body)."""
    attributes = documented("eventbridge_delivery_failure")["MessageAttributes"]
    boto3.client("sqs").send_message(
        QueueUrl=queue_url, MessageBody=json.dumps(event), MessageAttributes=attributes
    )


def on_failure_record(event: dict[str, Any], **response: Any) -> dict[str, Any]:
    """Lambda's documented on-failure record of a function error, for this event."""
    record = documented("lambda_on_failure_function_error")
    record["requestPayload"] = event
    record["responsePayload"].update(response)
    return record


def put_on_failure(queue_url: str, event: dict[str, Any], **response: Any) -> None:
    """What Lambda's on-failure destination writes after the last retry (3 attempts, the
    CRM answering 503)."""
    boto3.client("sqs").send_message(
        QueueUrl=queue_url, MessageBody=json.dumps(on_failure_record(event, **response))
    )


FIRST_FAILURE = "2026-03-01T09:00:00+00:00"


def put_handler_failure(queue_url: str, event: dict[str, Any]) -> None:
    """What a handler writes for its own permanent failure."""
    failure = Failure(
        "CrmRejected",
        "crm_401",
        "crm POST /contacts: HTTP 401: wrong bearer token",
        "auth0-sync-UserCreated",
        1,
        FIRST_FAILURE,
    )
    SqsDeadLetterQueue(queue_url).send_permanent(event, failure)


PUT = {
    "delivery": put_delivery_failure,
    "on_failure": put_on_failure,
    "handler": put_handler_failure,
}


def replayer(aws: LocalResources, **options: Any) -> Replayer:
    options.setdefault("timeout", 5.0)
    return make_replayer(aws.dlq_url, wait_seconds=0, visibility_seconds=30, **options)


def messages(aws: LocalResources) -> list[dict[str, Any]]:
    """Every message as listed (bodies and attributes), leaving the queue as it is."""
    sqs = boto3.client("sqs")
    found = sqs.receive_message(
        QueueUrl=aws.dlq_url,
        MaxNumberOfMessages=10,
        MessageAttributeNames=["All"],
        VisibilityTimeout=0,
    ).get("Messages", [])
    return [
        {
            "body": json.loads(m["Body"]),
            "attributes": {k: v["StringValue"] for k, v in m.get("MessageAttributes", {}).items()},
        }
        for m in found
    ]


def listed(aws: LocalResources) -> list[tuple[str | None, str]]:
    return sorted(
        (x.event_id, x.shape) for x in list_letters(DlqReader(aws.dlq_url, wait_seconds=0))
    )


def table_items(name: str) -> list[dict[str, Any]]:
    return sorted(
        boto3.resource("dynamodb").Table(name).scan()["Items"],
        key=lambda item: json.dumps(item, default=str),
    )


def contacts_by_user(crm: CrmServer) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for contact in crm.contacts():
        found.setdefault(str(contact.get("auth0_user_id")), []).append(contact)
    return found


# dlq list -------------------------------------------------------------------------------


def test_dlq_list_reads_the_three_shapes_and_leaves_the_queue_as_it_was(
    sync_env: LocalResources, capsys: pytest.CaptureFixture[str]
) -> None:
    for n, put in enumerate(PUT.values()):
        put(sync_env.dlq_url, user_event(n))
    assert main(["dlq", "list", "--json"]) == 0
    records = {r["shape"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(records) == {"delivery", "on_failure", "handler"}
    delivery, on_failure, handler = (records[s] for s in ("delivery", "on_failure", "handler"))
    assert (delivery["event_id"], delivery["type"], delivery["user_id"]) == (
        "evt_created0000m000",
        "user.created",
        "auth0|user0000",
    )
    assert (delivery["error_class"], delivery["reason"], delivery["attempts"]) == (
        "NO_PERMISSIONS",
        "delivery_failed",
        185,
    )
    assert delivery["handler"] == "Auth0Sync-HandlersUserCreated-AbC123"
    assert (on_failure["event_id"], on_failure["error_class"], on_failure["attempts"]) == (
        "evt_created0001m000",
        "TransientError",
        3,
    )
    assert (on_failure["reason"], on_failure["detail"]) == (
        "crm_503",
        "crm POST /contacts: HTTP 503 after 5 attempt(s)",
    )
    assert (handler["event_id"], handler["error_class"], handler["attempts"]) == (
        "evt_created0002m000",
        "CrmRejected",
        1,
    )
    assert (handler["reason"], handler["detail"]) == (
        "crm_401",
        "crm POST /contacts: HTTP 401: wrong bearer token",
    )
    assert handler["first_failure_at"] == FIRST_FAILURE
    expected_age = (datetime.now(UTC) - datetime.fromisoformat(FIRST_FAILURE)).total_seconds()
    assert abs(handler["age_seconds"] - expected_age) < 60
    # Never removed, never hidden: the next reader sees all three at once.
    assert len(listed(sync_env)) == 3
    assert len(messages(sync_env)) == 3


def test_dlq_list_table_has_one_line_per_message(
    sync_env: LocalResources, capsys: pytest.CaptureFixture[str]
) -> None:
    put_on_failure(sync_env.dlq_url, user_event(7))
    put_on_failure(sync_env.dlq_url, user_event(8))
    assert main(["dlq", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["EVENT", "ID", "TYPE", "USER"]
    assert [line.split()[0] for line in lines[1:3]] == [
        "evt_created0007m000",
        "evt_created0008m000",
    ]
    assert "on_failure  TransientError  3" in lines[1]
    assert lines[3].startswith("2 message(s): crm_503 2 in ")


# replay -------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", sorted(PUT))
def test_replay_recovers_the_event_of_each_shape_and_deletes_it_once_applied(
    sync_env: LocalResources, crm: CrmServer, shape: str
) -> None:
    PUT[shape](sync_env.dlq_url, user_event(1))
    report = replayer(sync_env).run(Selection())
    [result] = report.results
    assert (result.status, result.reason, result.deleted) == ("applied", "created", 1)
    [contact] = crm.contacts()
    assert (contact["auth0_user_id"], contact["email"]) == ("auth0|user0001", "user1@example.com")
    assert messages(sync_env) == []


def test_a_message_replayed_twice_applies_once(sync_env: LocalResources, crm: CrmServer) -> None:
    event = user_event(2)
    # The same event failed twice (a redelivery): two messages, one event.
    put_delivery_failure(sync_env.dlq_url, event)
    put_on_failure(sync_env.dlq_url, event)
    report = replayer(sync_env).run(Selection())
    [result] = report.results
    assert (result.status, result.reason, result.messages, result.deleted) == (
        "applied",
        "created",
        2,
        2,
    )
    # It lands in the DLQ once more (say a stale copy) and is replayed again.
    put_handler_failure(sync_env.dlq_url, event)
    [again] = replayer(sync_env).run(Selection()).results
    assert (again.status, again.reason, again.crm_calls) == ("skipped", "duplicate", 0)
    assert crm.stats()["by_method"]["POST"] == 1
    assert len(crm.contacts()) == 1
    assert messages(sync_env) == []


def test_poison_message_stays_with_its_new_reason_and_history(
    sync_env: LocalResources, crm: CrmServer, capsys: pytest.CaptureFixture[str]
) -> None:
    poison = user_event(3)
    del poison["detail"]["data"]["object"]["user_id"]
    put_handler_failure(sync_env.dlq_url, poison)
    put_on_failure(sync_env.dlq_url, user_event(4))
    assert main(["replay", "--json", "--timeout", "5"]) == 1  # something is left
    report = json.loads(capsys.readouterr().out)
    assert report["applied"] == {"created": 1}
    assert report["failed"] == {"invalid_event": 1}
    [left] = report["left"]
    assert (left["event_id"], left["status"]) == ("evt_created0003m000", "failed")
    assert left["detail"] == "detail.data.object.user_id: Field required"
    [message] = messages(sync_env)
    assert message["body"] == poison
    attributes = message["attributes"]
    assert attributes[DLQ_ATTR_ERROR_CLASS] == "InvalidEvent"
    assert attributes[DLQ_ATTR_REASON] == (
        "invalid_event: detail.data.object.user_id: Field required"
    )
    # One more attempt, first failed when the original message said.
    assert attributes[DLQ_ATTR_ATTEMPTS] == "2"
    assert attributes[DLQ_ATTR_FIRST_FAILURE] == FIRST_FAILURE
    assert crm.stats()["by_method"] == {"GET": 0, "POST": 1, "PATCH": 0}


def test_crm_still_down_keeps_the_event_with_the_new_reason_then_drains(
    sync_env: LocalResources, crm: CrmServer
) -> None:
    put_delivery_failure(sync_env.dlq_url, user_event(5))
    crm.set_outage(503)
    [result] = replayer(sync_env, timeout=2.0).run(Selection()).results
    assert (result.status, result.reason) == ("failed", "crm_503")
    [message] = messages(sync_env)
    assert message["attributes"][DLQ_ATTR_ERROR_CLASS] == "TransientError"
    assert message["attributes"][DLQ_ATTR_REASON].startswith(
        "crm_503: crm POST /contacts: HTTP 503"
    )
    assert message["attributes"][DLQ_ATTR_ATTEMPTS] == "186"  # EventBridge's 185, then ours
    assert message["body"] == user_event(5)
    crm.set_outage(None)
    [result] = replayer(sync_env).run(Selection()).results
    assert (result.status, result.reason) == ("applied", "created")
    assert messages(sync_env) == []
    assert [c["auth0_user_id"] for c in crm.contacts()] == ["auth0|user0005"]


def test_dry_run_shows_the_crm_change_and_writes_nothing(
    sync_env: LocalResources, crm: CrmServer
) -> None:
    # User 6 is known (created earlier); user 7 is new; user 8's event is malformed.
    put_on_failure(sync_env.dlq_url, user_event(6))
    replayer(sync_env).run(Selection())
    existing = crm.contacts()[0]
    update, new, poison = user_event(6, "user.updated", 5), user_event(7), user_event(8)
    poison["detail"]["data"]["object"].pop("user_id")
    for event in (update, new, poison):
        put_on_failure(sync_env.dlq_url, event)
    before = (
        listed(sync_env),
        table_items(sync_env.state_table),
    )
    crm.reset_stats()

    report = replayer(sync_env, dry_run=True).run(Selection())

    by_id = {r.event_id: r for r in report.results}
    planned_update = by_id["evt_updated0006m005"]
    assert (planned_update.status, planned_update.reason) == ("applied", "updated")
    assert planned_update.planned == [
        f"PATCH /contacts/{existing['id']} "
        + json.dumps(
            {
                # Only what changed: the name (and the stamp of the change).
                "name": "User 6 v5",
                "source_updated_at": "2026-03-01T09:05:00.000000+00:00",
            },
            sort_keys=True,
        )
    ]
    planned_create = by_id["evt_created0007m000"]
    assert (planned_create.status, planned_create.reason) == ("applied", "created")
    assert planned_create.planned == [
        "POST /contacts "
        + json.dumps(
            {
                "auth0_user_id": "auth0|user0007",
                "email": "user7@example.com",
                "name": "User 7 v0",
                "source_updated_at": "2026-03-01T09:00:00.000000+00:00",
                "status": "active",
            },
            sort_keys=True,
        )
    ]
    failing = by_id["evt_created0008m000"]
    assert (failing.status, failing.reason) == ("failed", "invalid_event")
    # Nothing written anywhere: GETs only, the queue and the state table as before.
    # GET the contact to patch; GET by email (a POST of a taken email would link instead).
    assert crm.stats()["by_method"] == {"GET": 2, "POST": 0, "PATCH": 0}
    assert crm.contacts() == [existing]
    after = (
        listed(sync_env),
        table_items(sync_env.state_table),
    )
    assert after == before


def test_filters_by_type_user_and_max_leave_the_rest_visible(
    sync_env: LocalResources, crm: CrmServer
) -> None:
    for n in range(4):
        put_on_failure(sync_env.dlq_url, user_event(n))
    put_on_failure(sync_env.dlq_url, user_event(9, "user.deleted", 9))

    deleted = replayer(sync_env).run(Selection(types=frozenset({"user.deleted"})))
    assert [(r.event_id, r.reason) for r in deleted.results] == [
        ("evt_deleted0009m009", "contact_missing")
    ]
    one_user = replayer(sync_env).run(Selection(user_id="auth0|user0002"))
    assert [(r.user_id, r.reason) for r in one_user.results] == [("auth0|user0002", "created")]
    first_two = replayer(sync_env).run(Selection(max_events=2))
    assert len(first_two.results) == 2
    left = {event_id for event_id, _ in listed(sync_env)}
    replayed = {r.event_id for r in first_two.results} | {"evt_created0002m000"}
    assert left == {f"evt_created{n:04d}m000" for n in range(4)} - replayed
    assert len(left) == 1


def test_rate_limit_spaces_the_events(sync_env: LocalResources, crm: CrmServer) -> None:
    for n in range(5):
        put_on_failure(sync_env.dlq_url, user_event(n))
    now = [100.0]
    started_at: list[float] = []
    base = replayer(sync_env)
    assert base.invoke is not None
    real_invoke = base.invoke

    def invoke(raw: Any) -> Outcome:
        started_at.append(now[0])
        return real_invoke(raw)

    def sleep(seconds: float) -> None:
        now[0] += seconds

    base.invoke = invoke
    base.limiter = TokenBucket(2.0, clock=lambda: now[0], sleep=sleep)
    report = base.run(Selection())
    assert [r.reason for r in report.results] == ["created"] * 5
    # Two events per second: each starts half a second after the previous one.
    assert started_at == [100.0, 100.5, 101.0, 101.5, 102.0]


def test_rate_is_crm_calls_per_second_not_events(sync_env: LocalResources, crm: CrmServer) -> None:
    # Each user.updated of an unknown user costs three CRM calls (two searches, by user id
    # and by email, then the create): at 2 calls/s an event starts every 1.5 s, not every
    # half second.
    for n in range(3):
        put_on_failure(sync_env.dlq_url, user_event(n, "user.updated"))
    now = [100.0]
    started_at: list[float] = []
    base = replayer(sync_env)
    assert base.invoke is not None
    real_invoke = base.invoke

    def invoke(raw: Any) -> Outcome:
        started_at.append(now[0])
        return real_invoke(raw)

    def sleep(seconds: float) -> None:
        now[0] += seconds

    base.invoke = invoke
    base.limiter = TokenBucket(2.0, clock=lambda: now[0], sleep=sleep)
    crm.reset_stats()
    report = base.run(Selection())
    assert [r.reason for r in report.results] == ["created"] * 3
    assert crm.stats()["by_method"] == {"GET": 6, "POST": 3, "PATCH": 0}
    assert started_at == [100.0, 101.5, 103.0]


def test_crm_calls_of_an_event_that_fails_again_are_counted(
    sync_env: LocalResources, crm: CrmServer, capsys: pytest.CaptureFixture[str]
) -> None:
    put_on_failure(sync_env.dlq_url, user_event(7))
    crm.set_outage(503)
    crm.reset_stats()
    code = main(["replay", "--timeout", "2", "--json"])
    served = crm.stats()["by_status"]
    assert code == 1
    report = json.loads(capsys.readouterr().out)
    assert report["failed"] == {"crm_503": 1}
    assert served["503"] >= 1
    assert report["crm_calls"] == sum(served.values())


def test_interrupted_replay_releases_its_messages_and_a_rerun_applies_each_once(
    sync_env: LocalResources, crm: CrmServer
) -> None:
    for n in range(6):
        put_delivery_failure(sync_env.dlq_url, user_event(n))
    first = replayer(sync_env)
    assert first.invoke is not None
    real_invoke = first.invoke
    applied: list[str] = []

    def invoke_then_interrupt(raw: Any) -> Outcome:
        outcome = real_invoke(raw)
        applied.append(raw["detail"]["id"])
        if len(applied) == 3:
            # Ctrl-C after the CRM applied the third event, before its message is deleted.
            raise KeyboardInterrupt
        return outcome

    first.invoke = invoke_then_interrupt
    report = first.run(Selection())
    assert report.interrupted
    assert sum(r.deleted for r in report.results) == 2
    # The rest is visible again at once (released, not left hidden until a timeout).
    assert len(listed(sync_env)) == 4

    second = replayer(sync_env).run(Selection())
    outcomes = sorted((r.event_id, r.reason) for r in second.results)
    remaining = {f"evt_created{n:04d}m000" for n in range(6)} - set(applied[:2])
    # The event applied just before the interrupt is a duplicate now: applied once.
    assert outcomes == sorted((e, "duplicate" if e == applied[2] else "created") for e in remaining)
    assert messages(sync_env) == []
    assert crm.stats()["by_status"].get("201") == 6  # six contacts created, none twice
    assert all(len(found) == 1 for found in contacts_by_user(crm).values())
    assert len(crm.contacts()) == 6


# A replay killed with SIGKILL, in its own process ------------------------------------------


@pytest.fixture
def aws_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalResources]:
    """local-aws (moto's server) on a port the OS picks, for a replay in another process."""
    local = LocalAws(port=0)
    resources = local.start()
    for name, value in resources.environment().items():
        monkeypatch.setenv(name, value)
    yield resources
    local.stop()


def test_replay_killed_mid_run_then_rerun_applies_every_event_exactly_once(
    aws_server: LocalResources, crm: CrmServer
) -> None:
    events = [user_event(n) for n in range(12)]
    for event in events:
        put_on_failure(aws_server.dlq_url, event)
    env = {
        **os.environ,
        Env.CRM_BASE_URL: crm.base_url,
        "POWERTOOLS_LOG_LEVEL": "ERROR",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    env.pop(Env.CRM_API_TOKEN, None)
    crm.set_latency(150)  # slow enough to be killed in the middle
    # Batched (the default), two records a batch: six users in flight, three batches at once.
    command = [
        *(sys.executable, "-m", "auth0_sync_cli.main", "replay", "--visibility", "2"),
        *("--batch-size", "2"),
    ]
    process = subprocess.Popen(
        [*command, "--timeout", "1"], env=env, cwd=REPO, stdout=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 30
    while crm.stats()["by_method"]["POST"] < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    crm.set_latency(0)
    killed_after = len(crm.contacts())
    assert 4 <= killed_after < 12
    # The killed run's messages come back after their visibility timeout, and the user
    # lease and in-progress record of the event in flight expire with its time budget.
    time.sleep(6.5)
    rerun = subprocess.run(
        [*command, "--json"], env=env, cwd=REPO, capture_output=True, text=True, check=False
    )
    assert rerun.returncode == 0, rerun.stderr
    report = json.loads(rerun.stdout)
    assert sum(report["applied"].values()) + sum(report["skipped"].values()) == report["events"]
    # The events in flight when killed (six users at most) are "created" again if their
    # state was not yet committed: the CRM answers each with the first contact (same
    # idempotency key).
    assert 12 - killed_after <= report["applied"].get("created", 0) <= 18 - killed_after
    assert messages(aws_server) == []
    contacts = contacts_by_user(crm)
    assert sorted(contacts) == [f"auth0|user{n:04d}" for n in range(12)]
    assert all(len(found) == 1 for found in contacts.values())
    assert len(crm.contacts()) == 12
    # Each user's state records its one event as the last applied.
    applied = {
        item["user_id"]: item["last_event_id"]
        for item in table_items(aws_server.state_table)
        if not str(item["user_id"]).startswith("#")
    }
    assert applied == {f"auth0|user{n:04d}": e["detail"]["id"] for n, e in enumerate(events)}
