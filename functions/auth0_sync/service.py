"""One event in, one outcome out: parse, route, de-duplicate, apply, dead-letter.

This is what a Lambda handler (and the local runner) calls. Permanent failures go to the
DLQ here and the call returns normally, so no retry is wasted on them; transient failures
raise, so Lambda retries and finally hands the event to its on-failure destination.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol

from aws_lambda_powertools import Logger

from auth0_sync.dead_letter import Failure
from auth0_sync.errors import InternalError, PermanentError, TransientError
from auth0_sync.events import identity_of, parse_event
from auth0_sync.names import SERVICE_NAME, EventType, SkipReason
from auth0_sync.org_events import is_org_event, parse_org_event
from auth0_sync.organizations import OrganizationSync
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


class SyncService:
    """Runs one EventBridge event through the sync and reports its outcome."""

    def __init__(
        self,
        core: SyncCore,
        dead_letters: DeadLetters,
        *,
        on_outcome: Callable[[Outcome], None] | None = None,
        organizations: OrganizationSync | None = None,
    ) -> None:
        self.core = core
        self.dead_letters = dead_letters
        self.on_outcome = on_outcome
        # None: organization events are skipped (`organizations_unsupported`).
        self.organizations = organizations

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
        lease = context.get_remaining_time_in_millis() / 1000 + LEASE_MARGIN_SECONDS
        if is_org_event(event.event_type):
            org_event = parse_org_event(event)  # InvalidEvent (to the DLQ) names the field
            if event.detail.is_test:
                return Outcome("skipped", SkipReason.TEST_EVENT, event.event_id, event.event_type)
            if self.organizations is None:
                return Outcome(
                    "skipped",
                    SkipReason.ORGANIZATIONS_UNSUPPORTED,
                    event.event_id,
                    event.event_type,
                    org_event.user_id,
                )
            return self.organizations.apply(org_event, lease)
        if event.detail.is_test:
            return Outcome(
                "skipped", SkipReason.TEST_EVENT, event.event_id, event.event_type, event.user_id
            )
        # The user's state item de-duplicates (the last event id and its order key): no
        # idempotency table is needed beside it.
        outcome = self.core.apply(event, lease)
        if self.organizations is None:
            return outcome
        if event.event_type == EventType.USER_DELETED:
            # The user's memberships end with the user (each delivery: a rerun finishes).
            self.organizations.user_deleted(event.user_id, lease)
        else:
            # Memberships waiting for this user's contact (one read when none waits).
            self.organizations.contact_ready(event.user_id, lease)
        return outcome
