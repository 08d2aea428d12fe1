"""`replay --target lambda`: boto3's synchronous Invoke against a real HTTP double of the
Lambda Invoke API that runs our handlers in process (moto cannot run Python functions
without Docker). Checks what is sent and what the replay does with each kind of answer."""

from __future__ import annotations

import importlib
import json
import threading
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from flask import Flask, Response, request
from werkzeug.serving import make_server

from auth0_sync.dead_letter import SqsDeadLetterQueue
from auth0_sync.errors import ConfigError
from auth0_sync.names import (
    DLQ_ATTR_ATTEMPTS,
    DLQ_ATTR_ERROR_CLASS,
    DLQ_ATTR_REASON,
    STACK_OUTPUT_DLQ_URL,
    STACK_OUTPUT_REPLAY_FUNCTIONS,
    Env,
)
from auth0_sync.routing import ROUTES
from auth0_sync_cli.crm_server import CrmServer
from auth0_sync_cli.dlq import DlqReader
from auth0_sync_cli.local_aws import LocalResources
from auth0_sync_cli.main import main
from auth0_sync_cli.replay import LambdaInvoker, Replayer, Selection
from auth0_sync_cli.runner import LocalContext
from tests.integration.test_replay import messages, put_delivery_failure, put_on_failure, user_event

pytestmark = pytest.mark.integration

FUNCTIONS = {str(route.event_type): f"Auth0Sync-{route.construct_id}" for route in ROUTES}
MODULES = {f"Auth0Sync-{route.construct_id}": route.module for route in ROUTES}


@dataclass
class LambdaDouble:
    """POST /2015-03-31/functions/{name}/invocations, answered by the real handler."""

    url: str = ""
    calls: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def lambda_api(sync_env: LocalResources) -> Iterator[LambdaDouble]:
    double = LambdaDouble()
    app = Flask(__name__)

    @app.post("/2015-03-31/functions/<name>/invocations")
    def invoke(name: str) -> Response:
        event = json.loads(request.get_data())
        double.calls.append(
            {
                "function": name,
                "invocation_type": request.headers.get("X-Amz-Invocation-Type"),
                "event_id": event["detail"]["id"],
            }
        )
        handler = importlib.import_module(MODULES[name]).handler
        try:
            result = handler(event, LocalContext(name, 3.0))
        except Exception as exc:  # what Lambda answers for an unhandled error
            error = {
                "errorType": type(exc).__name__,
                "errorMessage": str(exc),
                "stackTrace": traceback.format_tb(exc.__traceback__),
            }
            return Response(json.dumps(error), headers={"X-Amz-Function-Error": "Unhandled"})
        return Response(json.dumps(result), headers={"X-Amz-Executed-Version": "$LATEST"})

    @app.get("/2015-03-31/functions/<name>/configuration")
    def configuration(name: str) -> Response:
        if name not in MODULES:
            message = {"Type": "User", "Message": f"Function not found: {name}"}
            return Response(
                json.dumps(message),
                status=404,
                headers={"x-amzn-ErrorType": "ResourceNotFoundException"},
            )
        return Response(json.dumps({"FunctionName": name}))

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    double.url = f"http://127.0.0.1:{server.server_port}"
    yield double
    server.shutdown()
    thread.join(timeout=5)


def lambda_replayer(aws: LocalResources, double: LambdaDouble, **functions: str) -> Replayer:
    client = boto3.client("lambda", endpoint_url=double.url)
    invoker = LambdaInvoker(functions or FUNCTIONS, client=client)
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
    assert lambda_api.calls == [
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
    [contact] = crm.contacts()
    assert (contact["auth0_user_id"], contact["status"]) == ("auth0|user0001", "deactivated")
    assert messages(sync_env) == []


def test_a_function_error_leaves_a_new_message_with_the_error(
    sync_env: LocalResources, crm: CrmServer, lambda_api: LambdaDouble
) -> None:
    put_delivery_failure(sync_env.dlq_url, user_event(2))
    crm.set_outage(503)
    [result] = lambda_replayer(sync_env, lambda_api).run(Selection()).results
    assert (result.status, result.reason) == ("failed", "transient")
    assert result.detail is not None
    assert result.detail.startswith(
        "Auth0Sync-UserCreated: TransientError: crm_503: crm POST /contacts"
    )
    [message] = messages(sync_env)
    assert message["body"] == user_event(2)
    assert message["attributes"][DLQ_ATTR_ERROR_CLASS] == "TransientError"
    assert message["attributes"][DLQ_ATTR_REASON].startswith(
        "transient: Auth0Sync-UserCreated: TransientError: crm_503: crm POST /contacts: HTTP 503"
    )
    assert message["attributes"][DLQ_ATTR_ATTEMPTS] == "186"


def test_a_permanent_failure_is_dead_lettered_by_the_function_itself(
    sync_env: LocalResources, crm: CrmServer, lambda_api: LambdaDouble
) -> None:
    poison = user_event(3)
    poison["detail"]["data"]["object"].pop("user_id")
    put_on_failure(sync_env.dlq_url, poison)
    [result] = lambda_replayer(sync_env, lambda_api).run(Selection()).results
    assert (result.status, result.reason, result.deleted) == ("failed", "invalid_event", 1)
    # The old message is gone; the one the handler wrote carries the new reason.
    [message] = messages(sync_env)
    assert message["attributes"][DLQ_ATTR_ERROR_CLASS] == "InvalidEvent"
    assert message["attributes"][DLQ_ATTR_REASON] == (
        "invalid_event: detail.data.object.user_id: Field required"
    )


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
    client = boto3.client("lambda", endpoint_url=lambda_api.url)
    invoker = LambdaInvoker({"user.created": "nope"}, client=client)
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
