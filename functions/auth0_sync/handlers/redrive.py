"""Scheduled Lambda: redrive the DLQ's transient failures once the CRM answers again."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from auth0_sync.names import METRICS_NAMESPACE, SERVICE_NAME, RedriveMetric
from auth0_sync.redrive import RedriveReport, scheduled_redrive

logger = Logger(service=SERVICE_NAME)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)


def publish(report: RedriveReport) -> None:
    """The three counts of the run and the age of the oldest failure still held, under the
    service dimension (zeros included, so the alarms see every run)."""
    for name, value in (
        (RedriveMetric.REDRIVEN, report.redriven),
        (RedriveMetric.STILL_FAILING, report.still_failing),
        (RedriveMetric.LEFT_FOR_A_PERSON, report.left_for_a_person),
    ):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    metrics.add_metric(
        name=RedriveMetric.OLDEST_FAILURE_AGE,
        unit=MetricUnit.Seconds,
        value=round(report.oldest_failure_age_seconds),
    )


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(_event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = scheduled_redrive(os.environ, lambda: context.get_remaining_time_in_millis() / 1000)
    publish(report)
    summary = report.to_dict()
    log = logger.warning if report.left_for_a_person or report.still_failing else logger.info
    log("redrive run", extra={k: v for k, v in summary.items() if k != "warnings"})
    return summary
