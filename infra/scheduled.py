"""The function shape shared by the scheduled jobs (the redrive, the stream health check):
the shared code asset on the handlers' runtime, JSON logs in a log group of its own with
retention, active tracing, no retry (the next run comes within minutes)."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from auth0_sync.names import METRICS_NAMESPACE, SERVICE_NAME, Env
from infra.bundling import ARCHITECTURE, RUNTIME, acknowledge_runtime

MEMORY_MB = 256


def scheduled_function(
    scope: Construct,
    *,
    description: str,
    code: lambda_.Code,
    handler: str,
    role: iam.IRole,
    timeout_seconds: int,
    environment: Mapping[str, str],
    log_retention: logs.RetentionDays,
) -> tuple[lambda_.Function, logs.LogGroup]:
    """`scope`'s "Function" and its "Logs" (the role may write them), Powertools' service
    name and namespace added to `environment`."""
    log_group = logs.LogGroup(
        scope, "Logs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY
    )
    log_group.grant_write(role)
    variables = {
        **environment,
        Env.POWERTOOLS_SERVICE_NAME: SERVICE_NAME,
        Env.POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
    }
    function = lambda_.Function(
        scope,
        "Function",
        description=description,
        # The runtime the shared code asset is built for (its wheels are version-specific).
        runtime=RUNTIME,
        architecture=ARCHITECTURE,
        code=code,
        handler=handler,
        role=role,
        memory_size=MEMORY_MB,
        timeout=Duration.seconds(timeout_seconds),
        environment={str(k): str(v) for k, v in variables.items()},
        log_group=log_group,
        logging_format=lambda_.LoggingFormat.JSON,
        application_log_level_v2=lambda_.ApplicationLogLevel.INFO,
        system_log_level_v2=lambda_.SystemLogLevel.WARN,
        tracing=lambda_.Tracing.ACTIVE,
        # A failed run is not worth retrying: the next one starts in a few minutes.
        retry_attempts=0,
    )
    acknowledge_runtime(function)
    return function, log_group
