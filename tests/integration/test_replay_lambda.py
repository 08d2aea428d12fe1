"""`replay --target lambda`: boto3's synchronous Invoke against a real HTTP double of the
Lambda Invoke API that runs our handlers in process (moto cannot run Python functions
without Docker). Checks what is sent and what the replay does with each kind of answer."""

from __future__ import annotations

import json

import boto3
import pytest

from auth0_sync.dead_letter import SqsDeadLetterQueue
from auth0_sync.errors import ConfigError
from auth0_sync.names import (
    DLQ_ATTR_ATTEMPTS,
    DLQ_ATTR_ERROR_CLASS,
    DLQ_ATTR_FIRST_FAILURE,
    DLQ_ATTR_REASON,
    STACK_OUTPUT_DLQ_URL,
    STACK_OUTPUT_REPLAY_FUNCTIONS,
    Env,
)
from auth0_sync.replay.lambda_target import LambdaInvoker
from auth0_sync.replay.queue import DlqReader
from auth0_sync.replay.replayer import Replayer, Selection
from auth0_sync_cli.crm_server import CrmServer
from auth0_sync_cli.local_aws import LocalResources
from auth0_sync_cli.main import main
from tests.integration.lambda_double import FUNCTIONS, LambdaDouble
from tests.integration.test_replay import (
    FIRST_FAILURE,
    messages,
    put_delivery_failure,
    put_handler_failure,
    put_on_failure,
    user_event,
)

pytestmark = pytest.mark.integration


def lambda_replayer(aws: LocalResources, double: LambdaDouble, **functions: str) -> Replayer:
    invoker = LambdaInvoker(functions or FUNCTIONS, client=double.client())
    invoker.check()
    return Replayer(
        DlqReader(aws.dlq_url, wait_seconds=0),
        invoke=invoker.invoke,
        failures=SqsDeadLetterQueue(aws.dlq_url),
        name_for=invoker.name_for,
    )


def test_invokes_the_function_of_the_type_synchronously_and_deletes_on_success(
    sync_env: LocalResources, crm: CrmServer, lambda_api: LambdaDouble
) -> None:
    put_on_failure(sync_env.dlq_url, user_event(1))
    put_delivery_failure(sync_env.dlq_url, user_event(1, "user.deleted", 5))
    report = lambda_replayer(sync_env, lambda_api).run(Selection())
    assert [(r.status, r.reason) for r in report.results] == [
        ("applied", "created"),
        ("applied", "deactivated"),
    ]
    assert [{k: v for k, v in c.items() if k != "history"} for c in lambda_api.calls] == [
        {
            "function": "Auth0Sync-UserCreated",
            "invocation_type": "RequestResponse",
            "event_id": "evt_created0001m000",
        },
        {
            "function": "Auth0Sync-UserDeleted",
            "invocation_type": "RequestResponse",
            "event_id": "evt_deleted0001m005",
        },
    ]
    # Each event carries its attempts so far: Lambda's 3, EventBridge's 185.
    assert [c["history"]["attempts"] for c in lambda_api.calls] == [3, 185]
    [contact] = crm.contacts()
    assert (contact["auth0_user_id"], contact["status"]) == ("auth0|user0001", "deactivated")
    assert messages(sync_env) == []


def test_a_function_error_leaves_a_new_message_with_its_reason_and_one_more_attempt(
    sync_env: LocalResources, crm: CrmServer, lambda_api: LambdaDouble
) -> None:
    put_delivery_failure(sync_env.dlq_url, user_event(2))
    crm.set_outage(503)
    [result] = lambda_replayer(sync_env, lambda_api).run(Selection()).results
    # The reason is read from the function's errorMessage, as from Lambda's own record.
    assert (result.status, result.reason) == ("failed", "crm_503")
    assert result.detail is not None
    assert result.detail.startswith("Auth0Sync-UserCreated: crm POST /contacts: HTTP 503")
    [message] = messages(sync_env)
    assert message["body"] == user_event(2)
    assert message["attributes"][DLQ_ATTR_ERROR_CLASS] == "TransientError"
    assert message["attributes"][DLQ_ATTR_REASON].startswith(
        "crm_503: Auth0Sync-UserCreated: crm POST /contacts: HTTP 503"
    )
    assert message["attributes"][DLQ_ATTR_ATTEMPTS] == "186"  # EventBridge's 185, then ours


def test_a_permanent_failure_is_dead_lettered_by_the_function_with_the_history_kept(
    sync_env: LocalResources, crm: CrmServer, lambda_api: LambdaDouble
) -> None:
    poison = user_event(3)
    poison["detail"]["data"]["object"].pop("user_id")
    put_handler_failure(sync_env.dlq_url, poison)  # attempt 1, first failed FIRST_FAILURE
    [result] = lambda_replayer(sync_env, lambda_api).run(Selection()).results
    assert (result.status, result.reason, result.deleted) == ("failed", "invalid_event", 1)
    # The old message is gone; the one the function wrote has the new reason, one more
    # attempt and the first failure of the old one, and the event as it was.
    [message] = messages(sync_env)
    assert message["body"] == poison
    assert message["attributes"][DLQ_ATTR_ERROR_CLASS] == "InvalidEvent"
    assert message["attributes"][DLQ_ATTR_REASON] == (
        "invalid_event: detail.data.object.user_id: Field required"
    )
    assert message["attributes"][DLQ_ATTR_ATTEMPTS] == "2"
    assert message["attributes"][DLQ_ATTR_FIRST_FAILURE] == FIRST_FAILURE


def test_a_throttled_function_leaves_the_messages_as_they_were_and_stops(
    sync_env: LocalResources, crm: CrmServer, lambda_api: LambdaDouble
) -> None:
    put_on_failure(sync_env.dlq_url, user_event(5))
    put_on_failure(sync_env.dlq_url, user_event(6))
    before = sorted(json.dumps(m, sort_keys=True) for m in messages(sync_env))
    lambda_api.throttled = True
    report = lambda_replayer(sync_env, lambda_api).run(Selection())
    assert report.results == []
    assert report.stopped is not None
    assert "TooManyRequestsException" in report.stopped
    assert sorted(json.dumps(m, sort_keys=True) for m in messages(sync_env)) == before
    assert crm.contacts() == []


def test_a_type_without_a_function_is_left_untouched(
    sync_env: LocalResources, crm: CrmServer, lambda_api: LambdaDouble
) -> None:
    put_on_failure(sync_env.dlq_url, user_event(4, "user.updated", 1))
    replay = lambda_replayer(sync_env, lambda_api, **{"user.created": "Auth0Sync-UserCreated"})
    [result] = replay.run(Selection()).results
    assert (result.status, result.reason) == ("not_replayed", "not_replayable")
    assert lambda_api.calls == []
    [message] = messages(sync_env)
    assert message["body"]["requestPayload"] == user_event(4, "user.updated", 1)


def test_an_unknown_function_name_is_refused_before_anything_runs(
    sync_env: LocalResources, lambda_api: LambdaDouble
) -> None:
    invoker = LambdaInvoker({"user.created": "nope"}, client=lambda_api.client())
    with pytest.raises(ConfigError, match=r"--functions user.created=nope: .*Function not found"):
        invoker.check()


def test_the_cli_finds_the_queue_and_the_functions_in_the_stack_outputs(
    sync_env: LocalResources,
    crm: CrmServer,
    lambda_api: LambdaDouble,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    outputs = {
        STACK_OUTPUT_DLQ_URL: sync_env.dlq_url,
        STACK_OUTPUT_REPLAY_FUNCTIONS: ",".join(f"{t}={n}" for t, n in FUNCTIONS.items()),
    }
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    boto3.client("cloudformation").create_stack(
        StackName="Auth0Sync", TemplateBody=json.dumps(template)
    )
    monkeypatch.delenv(Env.DLQ_URL)  # only the stack says where the queue is
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", lambda_api.url)  # boto3's per-service URL
    # The double runs the handlers in this process: keep their metrics off our stdout.
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    put_on_failure(sync_env.dlq_url, user_event(5))

    code = main(["replay", "--target", "lambda", "--stack", "Auth0Sync", "--json"])

    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["applied"], report["messages_deleted"]) == ({"created": 1}, 1)
    assert [call["function"] for call in lambda_api.calls] == ["Auth0Sync-UserCreated"]
    assert messages(sync_env) == []
