"""Lambda wiring: Powertools logger and metrics around the sync service.

Traces come from the function's active tracing (Lambda records each invocation's segment
itself); the X-Ray SDK, in maintenance mode since February 2026, is not loaded: it cost
about 190 ms of every cold start.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cache, wraps
from typing import Any

from aws_lambda_powertools import Logger, Metrics, single_metric
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from auth0_sync.errors import CredentialsRejected, TransientError
from auth0_sync.names import (
    METRIC_REASON_DIMENSION,
    METRIC_SERVICE_DIMENSION,
    METRICS_NAMESPACE,
    SERVICE_NAME,
    EventType,
    Metric,
    OrgEventType,
)
from auth0_sync.queue_batches import handle_queue_batch, is_queue_batch
from auth0_sync.runtime import build_service
from auth0_sync.service import SyncService
from auth0_sync.settings import Settings
from auth0_sync.sync import Applied, Outcome

logger = Logger(service=SERVICE_NAME)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)

APPLIED_METRICS = {
    Applied.CREATED: Metric.CONTACT_CREATED,
    Applied.LINKED: Metric.CONTACT_LINKED,
    Applied.UPDATED: Metric.CONTACT_UPDATED,
    Applied.DEACTIVATED: Metric.CONTACT_DEACTIVATED,
    Applied.ANONYMIZED: Metric.CONTACT_ANONYMIZED,
    Applied.REACTIVATED: Metric.CONTACT_REACTIVATED,
    # An archive is the deactivation HubSpot offers: counted as one.
    Applied.ARCHIVED: Metric.CONTACT_DEACTIVATED,
    Applied.ERASED: Metric.CONTACT_DEACTIVATED,
    Applied.COMPANY_CREATED: Metric.COMPANY_CREATED,
    Applied.COMPANY_UPDATED: Metric.COMPANY_UPDATED,
    Applied.COMPANY_DEACTIVATED: Metric.COMPANY_DEACTIVATED,
    Applied.MEMBERSHIP_SET: Metric.MEMBERSHIP_SET,
    Applied.MEMBERSHIP_REMOVED: Metric.MEMBERSHIP_REMOVED,
}


def publish(outcome: Outcome) -> None:
    """One metric per business outcome; skips and dead letters carry their reason."""
    metrics.add_metric(name=Metric.CRM_CALLS, unit=MetricUnit.Count, value=outcome.crm_calls)
    if outcome.status == "applied":
        metrics.add_metric(
            name=APPLIED_METRICS[Applied(outcome.reason)], unit=MetricUnit.Count, value=1
        )
        return
    name = Metric.EVENT_SKIPPED if outcome.status == "skipped" else Metric.EVENT_DEAD_LETTERED
    _count_with_reason(name, outcome.reason)


def retried(error: TransientError, events: int = 1) -> None:
    """Events handed back for a retry after a transient failure, counted with its reason
    (Lambda retries the invocation, or SQS redelivers the record)."""
    _count_with_reason(Metric.EVENT_RETRIED, error.reason, events)


def _count_with_reason(name: Metric, reason: str, value: int = 1) -> None:
    # Its own EMF document: the reason is a dimension of this metric only.
    with single_metric(
        name=name,
        unit=MetricUnit.Count,
        value=value,
        namespace=METRICS_NAMESPACE,
        default_dimensions={
            METRIC_SERVICE_DIMENSION: SERVICE_NAME,
            METRIC_REASON_DIMENSION: reason,
        },
    ):
        pass


Handler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]


def _flushed(handler: Handler) -> Handler:
    """Powertools' `log_metrics` without its "No application metrics to publish" warning
    when the invocation's counts all went out as documents of their own (`single_metric`:
    an event retried, skipped or dead-lettered carries its reason); a set left empty is
    cleared, not printed."""

    @wraps(handler)
    def flushing(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        try:
            return handler(event, context)
        finally:
            if metrics.metric_set:
                metrics.flush_metrics()
            else:
                metrics.clear_metrics()

    return flushing


@cache
def service() -> SyncService:
    """Built on the first event of a cold start; a bad setting fails here, named."""
    return build_service(Settings.from_env(os.environ), on_outcome=publish)


def make_handler(event_type: EventType | OrgEventType) -> Handler:
    """The Lambda entry point for one event type (the rule only sends it that type): one
    EventBridge event (direct topology, a replay, the redrive), or a batch of them read
    from the type's queue (buffered topology, `auth0_sync.queue_batches`)."""

    @logger.inject_lambda_context(clear_state=True)
    @_flushed
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        logger.append_keys(handler_type=str(event_type))
        batch = is_queue_batch(event)
        try:
            if batch:
                return handle_queue_batch(service(), event, context, on_retry=retried)
            return service().handle(event, context).to_dict()
        except TransientError as exc:
            # Lambda retries the invocation (a batch: SQS redelivers all its records).
            retried(exc, len(event["Records"]) if batch else 1)
            if isinstance(exc, CredentialsRejected):
                # Then the DLQ keeps it (transient: the redrive retries it); the metric's
                # alarm names the secret a person must update.
                metrics.add_metric(
                    name=Metric.CRM_CREDENTIALS_REJECTED, unit=MetricUnit.Count, value=1
                )
            raise

    return handler
