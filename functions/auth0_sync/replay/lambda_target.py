"""Replay in the deployed handler function: a synchronous Invoke, its answer read back.

The answers, and what the replay makes of them:
- the handler's outcome (applied, skipped, or dead-lettered by the handler itself);
- a function error (`X-Amz-Function-Error`): the runtime's `errorType` and `errorMessage`,
  whose reason is read the way the DLQ reader reads Lambda's on-failure record
  (`FunctionFailed`, so the replay writes the new failure with the old history);
- Lambda refused or could not be reached (throttled by the reserved concurrency live
  traffic is using, a service error): nothing ran, `Deferred`, the message stays as it is.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from auth0_sync.errors import ConfigError
from auth0_sync.events import identity_of, normalise_type
from auth0_sync.names import SkipReason
from auth0_sync.replay.letters import reason_of_function_error
from auth0_sync.replay.replayer import Deferred, FunctionFailed, NotReplayable
from auth0_sync.routing import ROUTES, route_for
from auth0_sync.sync import Outcome

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient


def parse_functions(text: str) -> dict[str, str]:
    """`user.created=fn-a,user.updated=fn-b` -> {event type: function name}; `ValueError`
    naming the item that is wrong."""
    functions: dict[str, str] = {}
    known = {str(route.event_type) for route in ROUTES}  # the one routing table
    for item in filter(None, (part.strip() for part in text.split(","))):
        event_type, sep, name = item.partition("=")
        event_type = normalise_type(event_type.strip())
        if not sep or not name.strip():
            raise ValueError(f"{item!r}: expected TYPE=FUNCTION_NAME")
        if event_type not in known:
            raise ValueError(f"{item!r}: unknown event type {event_type!r}; one of {sorted(known)}")
        functions[event_type] = name.strip()
    if not functions:
        raise ValueError("give at least one TYPE=FUNCTION_NAME")
    return functions


class LambdaInvoker:
    """Invokes the deployed function for the event's type, synchronously (RequestResponse)."""

    def __init__(self, functions: Mapping[str, str], client: LambdaClient | None = None) -> None:
        self.functions = dict(functions)
        self._client = client

    @property
    def client(self) -> LambdaClient:
        if self._client is None:
            # No SDK retries: a retried invoke would run the event twice (idempotent, but
            # the outcome would read "duplicate"); wait as long as a function may run.
            config = Config(read_timeout=910, retries={"max_attempts": 1, "mode": "standard"})
            self._client = boto3.client("lambda", config=config)
        return self._client

    def check(self) -> None:
        """Fail early, naming the function, when one of them cannot be found."""
        for event_type, name in self.functions.items():
            try:
                self.client.get_function_configuration(FunctionName=name)
            except (ClientError, BotoCoreError) as exc:
                raise ConfigError(f"--functions {event_type}={name}: {exc}") from exc

    def name_for(self, raw: Any) -> str:
        """The function the event goes to (for the failure record), or "lambda"."""
        route = route_for(identity_of(raw)["event_type"] or "")
        return (self.functions.get(route.event_type.value) if route else None) or "lambda"

    def invoke(self, raw: Any) -> Outcome:
        """The handler's outcome; `FunctionFailed` when it raised, `Deferred` when Lambda
        did not run it."""
        ids = identity_of(raw)
        event_type = ids["event_type"]
        if event_type is None:
            raise NotReplayable("the event has no detail.type: no function to send it to")
        route = route_for(event_type)
        if route is None:
            # What the handlers answer for a type they do not handle.
            return Outcome(
                "skipped", SkipReason.UNKNOWN_TYPE, ids["event_id"], event_type, ids["user_id"]
            )
        name = self.functions.get(route.event_type.value)
        if name is None:
            raise NotReplayable(
                f"no function given for {route.event_type}: add it to --functions "
                f"({route.event_type}=FUNCTION_NAME)"
            )
        try:
            response = self.client.invoke(
                FunctionName=name,
                InvocationType="RequestResponse",
                Payload=json.dumps(raw).encode("utf-8"),
            )
            answer = response["Payload"].read()
        except (ClientError, BotoCoreError) as exc:
            # Nothing ran (or its answer was lost: running it again is a duplicate, safe).
            raise Deferred(f"lambda invoke {name}: {exc}") from exc
        try:
            payload = json.loads(answer or b"null")
        except ValueError as exc:
            raise FunctionFailed("BadAnswer", "bad_answer", f"{name}: not JSON: {exc}") from exc
        if response.get("FunctionError"):
            # Permanent failures return normally; an error is what Lambda would retry.
            error = payload if isinstance(payload, dict) else {}
            error_type = str(error.get("errorType", "")) or "FunctionError"
            reason, detail = reason_of_function_error(
                error_type, str(error.get("errorMessage", payload))
            )
            raise FunctionFailed(error_type, reason, f"{name}: {detail}")
        if not isinstance(payload, dict) or "status" not in payload:
            raise FunctionFailed(
                "BadAnswer", "bad_answer", f"{name}: unexpected answer {str(payload)[:200]}"
            )
        return Outcome.from_dict(payload)
