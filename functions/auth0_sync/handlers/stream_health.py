"""Scheduled Lambda: check the Auth0 stream and its partner event source; publish the metrics.

FailedDeliveries, StreamEnabled and EventSourceActive, which the stack's alarms watch.
"""

from __future__ import annotations

import os
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger, single_metric
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.typing import LambdaContext

from auth0_sync.errors import ManagementApiError
from auth0_sync.names import (
    METRIC_SERVICE_DIMENSION,
    METRIC_STREAM_DIMENSION,
    METRICS_NAMESPACE,
    SERVICE_NAME,
    Env,
    StreamMetric,
)
from auth0_sync.streams.client import ManagementClient, ManagementCredentials
from auth0_sync.streams.health import HealthStatus, StreamHealth, check_health
from auth0_sync.streams.settings import HealthCheckSettings
from auth0_sync.streams.source import (
    UNKNOWN,
    EventSourceState,
    EventSourceUnreadable,
    describe_event_source,
    unreadable,
)

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient

# The credentials secret is read at most this often per warm container.
SECRET_MAX_AGE_SECONDS = 300

logger = Logger(service=SERVICE_NAME)


@cache
def settings() -> HealthCheckSettings:
    return HealthCheckSettings.from_env(os.environ)


def events_client() -> EventBridgeClient:
    # A client per run (every few minutes): created after any endpoint or mock is set.
    return boto3.client("events")


def read_event_source(name: str) -> EventSourceState:
    """The source's state; a failure to read it becomes an UNKNOWN state with the error."""
    try:
        return describe_event_source(name, events_client())
    except EventSourceUnreadable as exc:
        return unreadable(name, exc)


def publish(health: StreamHealth) -> None:
    """The metrics under {service, stream}, the dimensions the stack's alarms watch."""
    dimensions = {METRIC_SERVICE_DIMENSION: SERVICE_NAME, METRIC_STREAM_DIMENSION: health.stream_id}
    values = [
        (StreamMetric.FAILED_DELIVERIES, health.failed_deliveries),
        (StreamMetric.STREAM_ENABLED, 1 if health.enabled else 0),
    ]
    # Not read: no datapoint (the run fails, which HealthCheckFailing counts), never a guess.
    if health.source_delivers is not None:
        values.append((StreamMetric.EVENT_SOURCE_ACTIVE, 1 if health.source_delivers else 0))
    for name, value in values:
        with single_metric(
            name=name,
            unit=MetricUnit.Count,
            value=value,
            namespace=METRICS_NAMESPACE,
            default_dimensions=dimensions,
        ):
            pass


@logger.inject_lambda_context(clear_state=True)
def handler(_event: dict[str, Any], _context: LambdaContext) -> dict[str, Any]:
    config = settings()
    secret = parameters.get_secret(
        config.mgmt_secret_arn, transform="json", max_age=SECRET_MAX_AGE_SECONDS
    )
    client = ManagementClient(ManagementCredentials.from_secret(secret, Env.AUTH0_MGMT_SECRET_ARN))
    logger.append_keys(stream_id=config.stream_id)
    try:
        health = check_health(
            client,
            config.stream_id,
            read_source=lambda _stream: read_event_source(config.event_source_name),
        )
    except ManagementApiError as exc:
        # No metric: the run fails (Lambda Errors), and failed runs in a row raise the
        # stack's HealthCheckFailing alarm.
        logger.error(
            "stream health check failed",
            extra={"call": exc.call, "status": exc.status, "error": exc.message},
        )
        raise
    publish(health)
    log = logger.info if health.status is HealthStatus.HEALTHY else logger.warning
    log(
        "stream health",
        extra={
            "health": str(health.status),
            "stream_status": health.stream_status,
            "failed_deliveries": health.failed_deliveries,
            "event_source_state": health.event_source.state if health.event_source else None,
            "reasons": list(health.reasons),
        },
    )
    if health.event_source is not None and health.event_source.state == UNKNOWN:
        # Published what could be read; the run fails so that HealthCheckFailing sees it.
        raise EventSourceUnreadable(str(health.event_source.error))
    return health.to_dict()
