"""`auth0-sync process --topology buffered` against local AWS (in-process moto): events go to
a queue per type and are drained in batches through the handlers' batch code."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from auth0_sync.dead_letter import SqsDeadLetterQueue
from auth0_sync.handlers import user_created
from auth0_sync.names import LOCAL_BUFFER_QUEUE_PREFIX, CrmType, Env
from auth0_sync.outcome import Outcome
from auth0_sync.redrive import is_transient
from auth0_sync.replay.letters import read_letter
from auth0_sync_cli.buffered import BufferedRunner
from auth0_sync_cli.crm_server import CrmServer
from auth0_sync_cli.local_aws import LocalResources
from auth0_sync_cli.local_mode import build_local_sync
from auth0_sync_cli.main import main
from auth0_sync_cli.runner import LocalContext
from auth0_sync_cli.sample import generate, reconcile
from tests.builders import at, created, sqs_batch
from tests.conftest import load_event
from tests.integration.helpers import dlq_messages

pytestmark = pytest.mark.integration

# The deployed handler module of user.created (Lambda passes its own context type).
handler: Callable[..., dict[str, Any]] = user_created.handler


@pytest.fixture
def local_aws_env(
    crm: CrmServer, aws: LocalResources, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> LocalResources:
    """What `auth0-sync local-aws` prints to export, with the reference CRM."""
    for name, value in aws.environment().items():
        if name != "AWS_ENDPOINT_URL":
            monkeypatch.setenv(name, value)
    monkeypatch.setenv(Env.CRM_BASE_URL, crm.base_url)
    monkeypatch.delenv(Env.CRM_API_TOKEN, raising=False)  # the token comes from the secret
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")
    monkeypatch.chdir(tmp_path)
    return aws


def test_buffered_converges_and_one_bad_record_lands_in_the_dlq_with_its_reason(
    crm: CrmServer,
    local_aws_env: LocalResources,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sample = generate(4, seed=7, duplicate_share=0.0, specials=False)
    sample.seed_preexisting(lambda fields: crm.seed_contact(**fields))
    malformed = load_event("malformed_missing_user_id")
    stream = [*sample.events[:3], malformed, *sample.events[3:]]
    path = tmp_path / "stream.json"
    path.write_text(json.dumps(stream))

    assert main(["process", str(path), "--state", "aws", "--topology", "buffered", "--json"]) == 1
    out = capsys.readouterr().out
    result = json.loads(out[out.index("{\n") :])

    assert result["events"] == len(stream)
    assert result["failed"] == {"invalid_event": 1}
    assert reconcile(sample.truth, crm.contacts()) == []
    sqs = boto3.client("sqs")
    # The events went through their types' queues, and every queue was drained.
    queues = sqs.list_queues(QueueNamePrefix=LOCAL_BUFFER_QUEUE_PREFIX)["QueueUrls"]
    assert queues
    for url in queues:
        left = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert (
            left["ApproximateNumberOfMessages"],
            left["ApproximateNumberOfMessagesNotVisible"],
        ) == ("0", "0")
    (message,) = sqs.receive_message(
        QueueUrl=local_aws_env.dlq_url, MessageAttributeNames=["All"], MaxNumberOfMessages=10
    )["Messages"]
    letter = read_letter(message)
    assert (letter.shape, letter.reason, letter.event) == ("handler", "invalid_event", malformed)


def test_buffered_needs_local_aws(
    crm_without_aws: CrmServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "e.json"
    path.write_text(json.dumps(load_event("user_created")))

    assert main(["process", str(path), "--state", "memory", "--topology", "buffered"]) == 2
    assert "--topology buffered runs against local AWS" in capsys.readouterr().err


def test_the_lambda_entry_point_takes_a_queue_batch_and_reports_its_failures(
    sync_env: LocalResources, crm: CrmServer
) -> None:
    """The deployed handler module, given what an SQS event source mapping hands it."""

    good = created("auth0|b1", at(0), email="b1@example.com", name="B One")
    malformed = load_event("malformed_missing_user_id")
    batch = sqs_batch([good, malformed])

    answer = handler(batch, LocalContext("auth0-sync-UserCreated"))

    assert answer == {"batchItemFailures": []}
    assert [c["auth0_user_id"] for c in crm.contacts()] == ["auth0|b1"]
    (letter,) = dlq_messages(sync_env)
    assert letter["attributes"]["reason"].startswith("invalid_event")


def test_the_lambda_entry_point_reports_a_transient_failure_for_sqs_to_retry(
    sync_env: LocalResources, crm: CrmServer, monkeypatch: pytest.MonkeyPatch
) -> None:

    monkeypatch.setenv(Env.CRM_RETRY_BUDGET_SECONDS, "0.2")
    crm.set_outage(503)
    batch = sqs_batch([created("auth0|b2", at(0), email="b2@example.com")])

    answer = handler(batch, LocalContext("auth0-sync-UserCreated", 5.0))

    assert answer == {"batchItemFailures": [{"itemIdentifier": batch["Records"][0]["messageId"]}]}
    assert dlq_messages(sync_env) == []  # SQS delivers it again; not yet the DLQ's


def test_a_record_failing_on_every_receive_is_dead_lettered_with_its_reason_on_the_last(
    local_aws_env: LocalResources, crm: CrmServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through local SQS (moto keeps the receive count): reported four times, then on its
    fifth receive the handler sends it to the DLQ with its reason and the count."""
    monkeypatch.setenv(Env.CRM_RETRY_BUDGET_SECONDS, "0.1")
    outcomes: list[Outcome] = []
    local = build_local_sync("aws", on_outcome=outcomes.append, timeout_seconds=5.0)
    assert isinstance(local.dead_letters, SqsDeadLetterQueue)
    runner = BufferedRunner(
        local.runner.service,
        local.dead_letters.client,
        local_aws_env.dlq_url,
        crm_type=CrmType.REST,
        timeout_seconds=5.0,
        time_scale=0.0,  # a reported message is visible again at once
    )
    crm.set_outage(503)
    event = created("auth0|b3", at(0), email="b3@example.com")

    runner.run_all([event])

    assert runner.batches == 5  # one receive per batch, the redrive policy's five
    ((outcome),) = outcomes
    assert outcome.status == "dead_lettered"
    assert is_transient(outcome.reason)
    (letter,) = dlq_messages(local_aws_env)
    assert letter["body"] == event
    assert letter["attributes"]["attempts"] == "5"
    assert letter["attributes"]["reason"].startswith(f"{outcome.reason}: ")
