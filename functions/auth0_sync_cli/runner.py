"""Runs EventBridge events through the sync service the way Lambda would, in this process.

Lambda invokes an EventBridge target asynchronously: a function error is retried
(ASYNC_RETRY_ATTEMPTS more times), then the on-failure destination receives a record of
the event. The runner does the same with a shorter backoff, so a local run leaves the DLQ
exactly as AWS would.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from auth0_sync.dead_letter import lambda_on_failure_record
from auth0_sync.errors import TransientError
from auth0_sync.events import identity_of
from auth0_sync.names import (
    ASYNC_RETRY_ATTEMPTS,
    FUNCTION_TIMEOUT_SECONDS,
    LOCAL_REGION,
    SERVICE_NAME,
)
from auth0_sync.routing import route_for
from auth0_sync.service import SyncService
from auth0_sync.sync import Outcome

LOCAL_ACCOUNT = "000000000000"


@dataclass
class LocalContext:
    """The parts of Lambda's context the handlers and Powertools read."""

    function_name: str
    timeout_seconds: float = FUNCTION_TIMEOUT_SECONDS
    memory_limit_in_mb: int = 256
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    _deadline: float = field(init=False)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds

    @property
    def invoked_function_arn(self) -> str:
        return function_arn(self.function_name)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def function_arn(name: str) -> str:
    return f"arn:aws:lambda:{LOCAL_REGION}:{LOCAL_ACCOUNT}:function:{name}"


def function_name_for(raw: object) -> str:
    """The local stand-in for the function the event's rule targets."""
    route = route_for(identity_of(raw)["event_type"] or "")
    return f"{SERVICE_NAME}-{route.construct_id}" if route else f"{SERVICE_NAME}-unrouted"


class OnFailureDestination(Protocol):
    """Where the runner sends an event whose retries are exhausted (the DLQ)."""

    def send_on_failure(self, record: Mapping[str, Any]) -> None: ...


class LocalRunner:
    """Invoke, retry transient failures like Lambda, then hand the event to the DLQ."""

    def __init__(
        self,
        service: SyncService,
        on_failure: OnFailureDestination,
        *,
        retry_attempts: int = ASYNC_RETRY_ATTEMPTS,
        backoff_seconds: float = 0.2,
        timeout_seconds: float = FUNCTION_TIMEOUT_SECONDS,
    ) -> None:
        self.service = service
        self.on_failure = on_failure
        self.retry_attempts = retry_attempts
        self.backoff_seconds = backoff_seconds
        self.timeout_seconds = timeout_seconds

    def invoke(self, raw: object) -> Outcome:
        """One synchronous invocation: the outcome, or `TransientError` (used by replay)."""
        context = LocalContext(function_name_for(raw), self.timeout_seconds)
        return self.service.handle(raw, context)

    def run(self, raw: object) -> Outcome:
        """An asynchronous invocation: retried, then dead-lettered; never raises transient."""
        attempts = self.retry_attempts + 1
        for attempt in range(1, attempts + 1):
            try:
                return self.invoke(raw)
            except TransientError as exc:
                last = exc
                if attempt < attempts:
                    time.sleep(self.backoff_seconds * 2 ** (attempt - 1))
        record = lambda_on_failure_record(
            raw, last, attempts=attempts, function_arn=function_arn(function_name_for(raw))
        )
        self.on_failure.send_on_failure(record)
        ids = identity_of(raw)
        outcome = Outcome(
            status="dead_lettered",
            reason=last.reason,
            event_id=ids["event_id"],
            event_type=ids["event_type"],
            user_id=ids["user_id"],
            message=last.message,
        )
        if self.service.on_outcome is not None:
            self.service.on_outcome(outcome)
        return outcome
