"""Scheduled Lambda: check the Auth0 event stream and publish FailedDeliveries, StreamEnabled."""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Tracer, single_metric
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

# The credentials secret is read at most this often per warm container.
SECRET_MAX_AGE_SECONDS = 300

logger = Logger(service=SERVICE_NAME)
tracer = Tracer(service=SERVICE_NAME)


@cache
def settings() -> HealthCheckSettings:
    return HealthCheckSettings.from_env(os.environ)


def publish(health: StreamHealth) -> None:
    """Both metrics under {service, stream}, the dimensions the stack's alarms watch."""
    dimensions = {METRIC_SERVICE_DIMENSION: SERVICE_NAME, METRIC_STREAM_DIMENSION: health.stream_id}
    for name, value in (
        (StreamMetric.FAILED_DELIVERIES, health.failed_deliveries),
        (StreamMetric.STREAM_ENABLED, 1 if health.enabled else 0),
    ):
        with single_metric(
            name=name,
            unit=MetricUnit.Count,
            value=value,
            namespace=METRICS_NAMESPACE,
            default_dimensions=dimensions,
        ):
            pass


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(_event: dict[str, Any], _context: LambdaContext) -> dict[str, Any]:
    config = settings()
    secret = parameters.get_secret(
        config.mgmt_secret_arn, transform="json", max_age=SECRET_MAX_AGE_SECONDS
    )
    client = ManagementClient(ManagementCredentials.from_secret(secret, Env.AUTH0_MGMT_SECRET_ARN))
    logger.append_keys(stream_id=config.stream_id)
    try:
        health = check_health(client, config.stream_id)
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
            "reasons": list(health.reasons),
        },
    )
    return health.to_dict()
