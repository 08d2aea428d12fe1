"""The scheduled redrive of the buffered topology, against moto's in-process SQS and the
reference CRM: the events it chose go to their type's buffer queue with their DLQ history
(SendMessageBatch), a DLQ message is deleted only once its entry succeeded, and the
buffer's batch code then applies them. The DLQ holds what AWS writes there (Lambda's
on-failure records, messages SQS moved from a buffer queue, the handlers' own failures),
built from the documented shapes of tests/events/dlq (see its README)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from auth0_sync import lambda_app
from auth0_sync.names import REPLAY_HISTORY_KEY, CrmType, Env, RedriveEnv
from auth0_sync.redrive import RedrivePolicy, probe_for, redrive
from auth0_sync.replay.buffer_target import BufferSender
from auth0_sync.replay.queue import DlqReader
from auth0_sync.replay.replayer import Replayer
from auth0_sync.routing import ROUTES
from auth0_sync.settings import Settings
from auth0_sync_cli.buffered import BufferedRunner
from auth0_sync_cli.crm_server import CrmServer
from auth0_sync_cli.local_aws import LocalResources
from auth0_sync_cli.runner import LocalContext
from tests.integration.lambda_double import REDRIVE_FUNCTION
from tests.integration.test_redrive import by_event, put_failure, recent
from tests.integration.test_replay import (
    contacts_by_user,
    put_handler_failure,
    put_on_failure,
    user_event,
)

pytestmark = pytest.mark.integration

USER_TYPES = ("user.created", "user.updated", "user.deleted")


@pytest.fixture
def buffers(sync_env: LocalResources, monkeypatch: pytest.MonkeyPatch) -> BufferedRunner:
    """The user types' buffer queues (redrive policy to the DLQ, as infra/buffers.py), their
    URLs in the redrive function's environment as the stack writes them; no function to
    invoke (SYNC_FUNCTIONS unset): a run that invoked one would fail. A CRM that fails
    fails fast (a short retry budget), so an event's five receives take no time."""
    monkeypatch.setenv(Env.CRM_RETRY_BUDGET_SECONDS, "0.1")
    lambda_app.service.cache_clear()
    runner = BufferedRunner(
        lambda_app.service(),
        boto3.client("sqs"),
        sync_env.dlq_url,
        crm_type=CrmType.REST,
        timeout_seconds=5.0,
        time_scale=0.0,
    )
    routes = [r for r in ROUTES if r.event_type in USER_TYPES]
    urls = {str(r.event_type): runner._queue(r)[0] for r in routes}
    monkeypatch.setenv(RedriveEnv.BUFFER_QUEUES, json.dumps(urls))
    monkeypatch.delenv(RedriveEnv.SYNC_FUNCTIONS, raising=False)
    return runner


def queued(runner: BufferedRunner) -> dict[str, list[dict[str, Any]]]:
    """Each buffer queue's bodies by event type, leaving the messages visible."""
    sqs = boto3.client("sqs")
    found: dict[str, list[dict[str, Any]]] = {}
    for route, (url, _) in runner.queues.items():
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
        bodies = [json.loads(m["Body"]) for m in got.get("Messages", [])]
        found[str(route.event_type)] = sorted(bodies, key=lambda b: str(b["detail"]["id"]))
    return found


def put_moved(queue_url: str, body: dict[str, Any]) -> None:
    """A message SQS moved from a buffer queue (its redrive policy): the body as it was in
    the buffer queue, no message attribute (tests/events/dlq/sqs_redrive_...json)."""
    boto3.client("sqs").send_message(QueueUrl=queue_url, MessageBody=json.dumps(body))


def without_history(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != REPLAY_HISTORY_KEY}


def test_a_run_moves_the_transient_events_to_their_buffer_with_their_history(
    sync_env: LocalResources, crm: CrmServer, buffers: BufferedRunner
) -> None:
    # Two signups Lambda gave up on (on-failure records: 3 attempts, crm_503), a delete
    # likewise; an update SQS moved back from its buffer after an earlier redrive (its body
    # carries that history: 4 attempts, first failed a day ago).
    put_on_failure(sync_env.dlq_url, user_event(0))
    put_on_failure(sync_env.dlq_url, user_event(1))
    put_on_failure(sync_env.dlq_url, user_event(3, "user.deleted", minutes=5))
    first_failed = recent(days=1)
    moved = user_event(2, "user.updated", minutes=5)
    history = {"attempts": 4, "first_failure_at": first_failed}
    put_moved(sync_env.dlq_url, {**moved, REPLAY_HISTORY_KEY: history})
    # For a person: a permanent reason, and a transient one past the age limit.
    put_handler_failure(sync_env.dlq_url, user_event(8))  # crm_401
    put_failure(sync_env.dlq_url, user_event(9), "crm_503", first_failure_at=recent(days=5))
    before = by_event(sync_env)
    from auth0_sync.handlers import redrive as handler_module

    result = handler_module.handler({}, LocalContext(REDRIVE_FUNCTION, 120.0))

    assert (result["redriven"], result["still_failing"], result["left_for_a_person"]) == (4, 0, 2)
    assert result["queued"] == {"user.created": 2, "user.deleted": 1, "user.updated": 1}
    assert result["applied"] == {}
    # No CRM write from the redrive itself: the probe's one GET.
    assert crm.stats()["by_method"] == {"GET": 1, "POST": 0, "PATCH": 0}
    # Each event in its own type's queue, as EventBridge sent it, with its history.
    in_buffers = queued(buffers)
    assert {t: [without_history(b) for b in bodies] for t, bodies in in_buffers.items()} == {
        "user.created": [user_event(0), user_event(1)],
        "user.updated": [moved],
        "user.deleted": [user_event(3, "user.deleted", minutes=5)],
    }
    assert in_buffers["user.updated"][0][REPLAY_HISTORY_KEY] == {
        "attempts": 5,  # one more than the body said: its buffer's receives ended unanswered
        "first_failure_at": datetime.fromisoformat(first_failed).isoformat(),
    }
    lambda_attempts = {b[REPLAY_HISTORY_KEY]["attempts"] for b in in_buffers["user.created"]}
    assert lambda_attempts == {3}  # the record's approximateInvokeCount
    # The DLQ keeps only what is left for a person, untouched.
    assert by_event(sync_env) == {
        "evt_created0008m000": before["evt_created0008m000"],
        "evt_created0009m000": before["evt_created0009m000"],
    }

    # The buffer's batch code applies them (what the mapping runs), in the CRM once each
    # (the update upserts its user's contact; the delete finds none to deactivate).
    buffers.drain()

    contacts = contacts_by_user(crm)
    assert {user: len(found) for user, found in contacts.items()} == {
        "auth0|user0000": 1,
        "auth0|user0001": 1,
        "auth0|user0002": 1,
    }
    assert set(by_event(sync_env)) == {"evt_created0008m000", "evt_created0009m000"}


def test_an_event_that_fails_again_in_its_buffer_keeps_its_first_failure(
    sync_env: LocalResources, crm: CrmServer, buffers: BufferedRunner
) -> None:
    first_failed = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    put_failure(
        sync_env.dlq_url, user_event(4), "crm_503", first_failure_at=first_failed.isoformat()
    )
    from auth0_sync.handlers import redrive as handler_module

    handler_module.handler({}, LocalContext(REDRIVE_FUNCTION, 120.0))
    crm.set_outage(503)
    buffers.drain()  # five receives, the handler dead-letters it on the last

    (message,) = by_event(sync_env)["evt_created0004m000"]
    assert message["body"] == user_event(4)
    assert message["attributes"]["first_failure_at"] == first_failed.isoformat()
    assert message["attributes"]["attempts"] == str(1 + 5)


def _delay_entry_of(user_id: str) -> Any:
    """A botocore hook giving that user's entry a DelaySeconds SQS refuses (over 900):
    SendMessageBatch then answers that entry in `Failed` and sends the others."""

    def hook(params: dict[str, Any], **_: Any) -> None:
        for entry in params.get("Entries", []):
            if user_id in entry["MessageBody"]:
                entry["DelaySeconds"] = 901

    return hook


def test_a_failed_entry_leaves_its_dlq_message_and_is_counted(
    sync_env: LocalResources, crm: CrmServer, buffers: BufferedRunner
) -> None:
    for n in range(3):
        put_on_failure(sync_env.dlq_url, user_event(n))
    client = boto3.client("sqs")
    client.meta.events.register(
        "before-parameter-build.sqs.SendMessageBatch", _delay_entry_of("auth0|user0001")
    )
    queues = {str(route.event_type): url for route, (url, _) in buffers.queues.items()}
    replayer = Replayer(
        DlqReader(sync_env.dlq_url, wait_seconds=0),
        forward=BufferSender(queues, client=client),
    )

    report = redrive(replayer, probe_for(Settings.from_env(os.environ)), RedrivePolicy())

    assert (report.redriven, report.still_failing, report.left_for_a_person) == (2, 1, 0)
    assert report.to_dict()["failed"] == {"buffer_unavailable": 1}
    assert [without_history(b) for b in queued(buffers)["user.created"]] == [
        user_event(0),
        user_event(2),
    ]
    # Its message stays, released: the next run reads it at once.
    assert list(by_event(sync_env)) == ["evt_created0001m000"]
