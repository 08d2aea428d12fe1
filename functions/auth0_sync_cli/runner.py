"""Runs EventBridge events through the sync service the way Lambda would, in this process.

Lambda invokes an EventBridge target asynchronously: a function error is retried
(ASYNC_RETRY_ATTEMPTS more times, about 1 and then 2 minutes later, while other events go
on), then the on-failure destination receives a record of the event. The runner does the
same on a faster clock (Lambda's delays times `time_scale`), so a local run leaves the DLQ
exactly as AWS would.
"""

from __future__ import annotations

import heapq
import itertools
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from auth0_sync.crm import CIRCUIT_COOL_DOWN_SECONDS, CircuitBreaker
from auth0_sync.dead_letter import lambda_on_failure_record
from auth0_sync.errors import LeaseHeld, TransientError
from auth0_sync.events import identity_of
from auth0_sync.names import (
    ASYNC_RETRY_ATTEMPTS,
    FUNCTION_TIMEOUT_SECONDS,
    LOCAL_REGION,
    SERVICE_NAME,
)
from auth0_sync.routing import route_for
from auth0_sync.service import LEASE_MARGIN_SECONDS, SyncService
from auth0_sync.sync import Outcome

LOCAL_ACCOUNT = "000000000000"
# Lambda's asynchronous retries come about this long after the previous attempt failed.
LAMBDA_RETRY_DELAYS_SECONDS = (60.0, 120.0)
# Locally a minute lasts a second: longer than a slow CRM call (so a concurrent duplicate
# finds the first attempt done), short enough for a demo.
DEFAULT_TIME_SCALE = 1 / 60
# The longest lease an invocation takes: a killed run's lease has ended after this.
MAX_LEASE_SECONDS = FUNCTION_TIMEOUT_SECONDS + LEASE_MARGIN_SECONDS
LEASE_END_MARGIN_SECONDS = 0.2


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
        time_scale: float = DEFAULT_TIME_SCALE,
        backoff_seconds: float | None = None,
        timeout_seconds: float = FUNCTION_TIMEOUT_SECONDS,
    ) -> None:
        self.service = service
        self.on_failure = on_failure
        self.retry_attempts = retry_attempts
        if backoff_seconds is not None:  # the first delay; Lambda doubles it for the second
            time_scale = backoff_seconds / LAMBDA_RETRY_DELAYS_SECONDS[0]
        self.delays = [d * time_scale for d in LAMBDA_RETRY_DELAYS_SECONDS][:retry_attempts]
        self.timeout_seconds = timeout_seconds
        # The CRM's circuit breaker cools down on the same clock: in AWS a retry a minute
        # later finds the circuit ready for a probe, and so does the scaled retry here.
        breaker = getattr(service.core.crm, "breaker", None)
        if isinstance(breaker, CircuitBreaker):
            breaker.cool_down = CIRCUIT_COOL_DOWN_SECONDS * time_scale

    def invoke(self, raw: object) -> Outcome:
        """One synchronous invocation: the outcome, or `TransientError` (used by replay)."""
        context = LocalContext(function_name_for(raw), self.timeout_seconds)
        return self.service.handle(raw, context)

    def run(self, raw: object) -> Outcome:
        """An asynchronous invocation: retried, then dead-lettered; never raises transient."""
        calls = 0
        for attempt in range(1, self.retry_attempts + 2):
            outcome, failure, spent = self._attempt(raw)
            calls += spent
            if outcome is not None:
                return outcome
            assert failure is not None
            if attempt > self.retry_attempts:
                return self._dead_letter(raw, failure, calls)
            time.sleep(self._delay(attempt, failure))
        raise AssertionError("unreachable")

    def run_all(self, events: Iterable[object]) -> None:
        """Events as EventBridge hands them to Lambda: a failed one is retried later while
        the next ones go on, so an outage costs the retry delays once, not per event."""
        order = itertools.count()
        waiting: list[tuple[float, int, object, int, int]] = []  # due, seq, event, attempt, calls

        def attempt(raw: object, number: int, calls: int) -> None:
            outcome, failure, spent = self._attempt(raw)
            if outcome is not None:
                return
            assert failure is not None
            if number <= self.retry_attempts:
                due = time.monotonic() + self._delay(number, failure)
                heapq.heappush(waiting, (due, next(order), raw, number + 1, calls + spent))
            else:
                self._dead_letter(raw, failure, calls + spent)

        def run_due() -> None:
            while waiting and waiting[0][0] <= time.monotonic():
                _, _, raw, number, calls = heapq.heappop(waiting)
                attempt(raw, number, calls)

        for raw in events:
            run_due()
            attempt(raw, 1, 0)
        while waiting:
            time.sleep(max(0.0, waiting[0][0] - time.monotonic()))
            run_due()

    def _delay(self, number: int, failure: TransientError) -> float:
        """Seconds before retry `number`: Lambda's delay on this clock; but Lambda's retries
        come a minute or more later, past any lease a dead invocation left (a killed run's),
        so the last retry of an event refused for a held lease waits for that lease to end
        (at most one lease). The earlier ones keep the short delay: a live holder, another
        run on the same users, is usually done by then."""
        delay = self.delays[number - 1]
        if number == self.retry_attempts and isinstance(failure, LeaseHeld) and failure.until:
            left = min(failure.until - time.time(), MAX_LEASE_SECONDS)
            delay = max(delay, left + LEASE_END_MARGIN_SECONDS)
        return delay

    def _attempt(self, raw: object) -> tuple[Outcome | None, TransientError | None, int]:
        crm = self.service.core.crm
        before = crm.calls_made()
        try:
            outcome = self.invoke(raw)
        except TransientError as exc:
            return None, exc, crm.calls_made() - before
        return outcome, None, crm.calls_made() - before

    def _dead_letter(self, raw: object, last: TransientError, calls: int) -> Outcome:
        attempts = self.retry_attempts + 1
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
            crm_calls=calls,
        )
        if self.service.on_outcome is not None:
            self.service.on_outcome(outcome)
        return outcome
