"""A real HTTP double of Lambda's Invoke API that runs our handlers in this process (moto
cannot run Python functions without Docker): what boto3 sends, answered as Lambda does."""

from __future__ import annotations

import importlib
import json
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from flask import Flask, Response, request
from werkzeug.serving import make_server

from auth0_sync.dead_letter import error_message
from auth0_sync.names import REPLAY_HISTORY_KEY
from auth0_sync.routing import ROUTES
from auth0_sync_cli.runner import LocalContext

FUNCTIONS = {str(route.event_type): f"Auth0Sync-{route.construct_id}" for route in ROUTES}
MODULES = {f"Auth0Sync-{route.construct_id}": route.module for route in ROUTES}
# The scheduled redrive, as the tests name it when the double runs it.
REDRIVE_FUNCTION = "Auth0Sync-Redrive"
# Each function's timeout in the double (the handlers': a few seconds here).
TIMEOUTS: dict[str, float] = {}


@dataclass
class LambdaDouble:
    """POST /2015-03-31/functions/{name}/invocations, answered by the real handler."""

    url: str = ""
    calls: list[dict[str, Any]] = field(default_factory=list)
    # Answer every invoke as Lambda does when the function's concurrency is used up.
    throttled: bool = False

    def client(self) -> Any:
        """A Lambda client of this double, one attempt per call (as LambdaInvoker's)."""
        return boto3.client(
            "lambda", endpoint_url=self.url, config=Config(retries={"max_attempts": 1})
        )


@contextmanager
def serve_lambda_double() -> Iterator[LambdaDouble]:
    """POST .../functions/{name}/invocations and GET .../configuration on a free port."""
    double = LambdaDouble()
    app = Flask(__name__)

    @app.post("/2015-03-31/functions/<name>/invocations")
    def invoke(name: str) -> Response:
        if double.throttled:
            message = {
                "Type": "User",
                "message": "Rate Exceeded.",
                "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded",
            }
            return Response(
                json.dumps(message),
                status=429,
                headers={"x-amzn-ErrorType": "TooManyRequestsException"},
            )
        event = json.loads(request.get_data())
        double.calls.append(
            {
                "function": name,
                "invocation_type": request.headers.get("X-Amz-Invocation-Type"),
                "event_id": event.get("detail", {}).get("id"),
                "history": event.get(REPLAY_HISTORY_KEY),
            }
        )
        handler = importlib.import_module(MODULES[name]).handler
        try:
            result = handler(event, LocalContext(name, TIMEOUTS.get(name, 3.0)))
        except Exception as exc:  # what Lambda answers for an unhandled error
            error = {
                "errorType": type(exc).__name__,
                # The runtime's str(exc): ours start with their reason (contract item 1).
                "errorMessage": error_message(exc),
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
    try:
        yield double
    finally:
        server.shutdown()
        thread.join(timeout=5)
