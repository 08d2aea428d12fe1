"""One event in, one outcome out: parse, route, de-duplicate, apply, dead-letter.

This is what a Lambda handler (and the local runner) calls. Permanent failures go to the
DLQ here and the call returns normally, so no retry is wasted on them; transient failures
raise, so Lambda retries and finally hands the event to its on-failure destination.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol, cast

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from auth0_sync.dead_letter import Failure
from auth0_sync.errors import InternalError, PermanentError, TransientError
from auth0_sync.events import Auth0BusEvent, identity_of, parse_event
from auth0_sync.names import IDEMPOTENCY_EXPIRY_SECONDS, SERVICE_NAME, SkipReason
from auth0_sync.routing import route_for
from auth0_sync.sync import Outcome, SyncCore

logger = Logger(service=SERVICE_NAME, child=True)

# A lease outlives the invocation's remaining time a little, so a crashed invocation's
# lease expires by the time Lambda's retry (a minute later at the earliest) arrives.
LEASE_MARGIN_SECONDS = 5.0


class InvocationContext(Protocol):
    """The part of Lambda's context the sync uses (the local runner provides the same)."""

    @property
    def function_name(self) -> str: ...

    def get_remaining_time_in_millis(self) -> int: ...


class DeadLetters(Protocol):
    def send_permanent(self, event: Any, failure: Failure) -> None: ...


def _mark_duplicate(response: Any, idempotent_data: DataRecord) -> Any:
    """Powertools calls this when it answers from a completed idempotency record."""
    del idempotent_data
    if isinstance(response, dict) and response.get("status") != "dead_lettered":
        return {
            **response,
            "status": "skipped",
            "reason": SkipReason.DUPLICATE.value,
            "crm_calls": 0,
        }
    return response


class SyncService:
    """Runs one EventBridge event through the sync and reports its outcome."""

    def __init__(
        self,
        core: SyncCore,
        dead_letters: DeadLetters,
        *,
        idempotency_table: str | None = None,
        idempotency_client: Any = None,
        on_outcome: Callable[[Outcome], None] | None = None,
    ) -> None:
        self.core = core
        self.dead_letters = dead_letters
        self.on_outcome = on_outcome
        self._idempotency_config: IdempotencyConfig | None = None
        self._apply_once: Callable[..., dict[str, Any]] | None = None
        if idempotency_table:
            self._idempotency_config = IdempotencyConfig(
                event_key_jmespath="detail.id",
                raise_on_no_idempotency_key=True,
                expires_after_seconds=IDEMPOTENCY_EXPIRY_SECONDS,
                response_hook=_mark_duplicate,
            )
            persistence = DynamoDBPersistenceLayer(
                table_name=idempotency_table, boto3_client=idempotency_client
            )
            self._apply_once = idempotent_function(
                data_keyword_argument="event",
                config=self._idempotency_config,
                persistence_store=persistence,
            )(self._apply)

    def handle(self, raw: Any, context: InvocationContext) -> Outcome:
        """Process one event. Raises `TransientError` when a retry may succeed."""
        crm = self.core.crm
        crm.set_deadline(context.get_remaining_time_in_millis)
        calls_before = crm.calls_made()
        try:
            try:
                outcome = self._route(raw, context)
            except (PermanentError, TransientError):
                raise
            except Exception as exc:
                # Nobody foresaw this: keep the event (in the DLQ, with the class), never crash.
                logger.exception("unexpected error", extra=identity_of(raw))
                raise InternalError(exc) from exc
        except PermanentError as exc:
            failure = Failure(
                error_class=type(exc).__name__,
                reason=exc.reason,
                message=exc.message,
                handler=context.function_name,
            )
            self.dead_letters.send_permanent(raw, failure)
            ids = identity_of(raw)
            outcome = Outcome(
                status="dead_lettered",
                reason=exc.reason,
                message=exc.message,
                event_id=ids["event_id"],
                event_type=ids["event_type"],
                user_id=ids["user_id"],
            )
        except TransientError as exc:
            logger.warning(
                "transient failure; the event will be retried",
                extra={**identity_of(raw), "reason": exc.reason, "error": exc.message},
            )
            raise
        finally:
            crm.set_deadline(None)
        outcome = replace(outcome, crm_calls=crm.calls_made() - calls_before)
        # Ids and reasons only: never the profile (emails and phones stay out of logs).
        fields = {k: v for k, v in outcome.to_dict().items() if v is not None}
        fields["detail"] = fields.pop("message", None)
        logger.info(f"event {outcome.status}", extra=fields)
        if self.on_outcome is not None:
            self.on_outcome(outcome)
        return outcome

    def _route(self, raw: Any, context: InvocationContext) -> Outcome:
        event = parse_event(raw)
        if route_for(event.event_type) is None:
            return Outcome(
                "skipped", SkipReason.UNKNOWN_TYPE, event.event_id, event.event_type, user_id=None
            )
        if event.detail.is_test:
            return Outcome(
                "skipped", SkipReason.TEST_EVENT, event.event_id, event.event_type, event.user_id
            )
        lease = context.get_remaining_time_in_millis() / 1000 + LEASE_MARGIN_SECONDS
        if self._apply_once is None or self._idempotency_config is None:
            return Outcome.from_dict(self._apply(event=raw, parsed=event, lease_seconds=lease))
        # The in-progress record expires with this invocation, so a timed-out attempt
        # never blocks Lambda's retry.
        self._idempotency_config.register_lambda_context(cast(LambdaContext, context))
        try:
            result = self._apply_once(event=raw, parsed=event, lease_seconds=lease)
        except IdempotencyAlreadyInProgressError as exc:
            raise TransientError(
                f"event {event.event_id} is being processed by another invocation", "in_progress"
            ) from exc
        except IdempotencyPersistenceLayerError as exc:
            raise TransientError(f"idempotency table: {exc}", "idempotency_unavailable") from exc
        return Outcome.from_dict(result)

    def _apply(self, *, event: Any, parsed: Auth0BusEvent, lease_seconds: float) -> dict[str, Any]:
        # `event` (the raw dict) is what Powertools hashes: `detail.id` is the key.
        del event
        return self.core.apply(parsed, lease_seconds).to_dict()
