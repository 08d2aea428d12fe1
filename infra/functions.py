"""One Lambda function per routed event type, each with its own role, log group and limits."""

from __future__ import annotations

import json
from collections.abc import Sequence

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from auth0_sync.names import (
    ASYNC_RETRY_ATTEMPTS,
    FUNCTION_TIMEOUT_SECONDS,
    METRICS_NAMESPACE,
    SERVICE_NAME,
    Env,
)
from auth0_sync.routing import Route
from infra.bundling import ARCHITECTURE, RUNTIME, acknowledge_runtime, lambda_code
from infra.config import FUNCTION_MEMORY_MB, StackConfig
from infra.dead_letter import DeadLetterQueue
from infra.secret import CrmTokenSecret
from infra.state import SyncStateTables


def destination_environment(config: StackConfig, crm_token: CrmTokenSecret) -> dict[str, str]:
    """Which CRM and how to reach it (CRM_TYPE, CRM_BASE_URL, the secret's ARN): the
    handlers' variables, which the redrive function gets too so that its probe builds the
    same adapter with the same factory."""
    return {
        Env.CRM_TYPE: str(config.crm_type),
        Env.CRM_BASE_URL: config.crm_base_url,
        Env.CRM_TOKEN_SECRET_ARN: crm_token.secret_arn,
    }


class SyncFunctions(Construct):
    """The handlers: arm64, JSON logs with retention, X-Ray, a concurrency cap, least privilege.

    Processing failures are retried by Lambda (ASYNC_RETRY_ATTEMPTS) and then written to the
    DLQ by the on-failure destination; the handlers also send their permanent failures there.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StackConfig,
        routes: Sequence[Route],
        tables: SyncStateTables,
        dead_letter: DeadLetterQueue,
        crm_token: CrmTokenSecret,
    ) -> None:
        super().__init__(scope, construct_id)
        # Every value comes from the config or a resource attribute; the keys are the
        # Settings model's aliases, so the handlers validate exactly this at cold start.
        self.destination_environment = destination_environment(config, crm_token)
        environment = {
            **self.destination_environment,
            Env.FIELD_MAPPING: json.dumps(config.field_mapping, separators=(",", ":")),
            Env.CONTACT_ID_PATH: config.contact_id_path,
            Env.MISSING_CONTACT_POLICY: config.missing_contact_policy,
            Env.DELETE_POLICY: config.delete_policy,
            Env.SYNC_MODE: config.sync_mode,
            Env.DEACTIVATION_WINDOW_LIMIT: str(config.deactivation_window_limit),
            Env.ABSENT_FIELDS: config.absent_fields,
            Env.NO_EMAIL_POLICY: config.no_email_policy,
            Env.CLAIM_UNVERIFIED_EMAIL: "true" if config.claim_unverified_email else "false",
            Env.BLOCKED_POLICY: config.blocked_policy,
            Env.ORGANIZATIONS: "true" if config.organizations else "false",
            Env.SALESFORCE_MULTIPLE_ACCOUNTS: (
                "true" if config.salesforce_contacts_to_multiple_accounts else "false"
            ),
            Env.STATE_TABLE: tables.state_table.table_name,
            Env.DLQ_URL: dead_letter.queue.queue_url,
            Env.POWERTOOLS_SERVICE_NAME: SERVICE_NAME,
            Env.POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
        }
        # Shared by every function of the stack (the stream health check included).
        self.code = lambda_code()
        self.functions: dict[Route, lambda_.Function] = {}
        self.log_groups: list[logs.LogGroup] = []
        for route in routes:
            role = iam.Role(
                self,
                f"{route.construct_id}Role",
                assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                description=f"auth0-sync {route.event_type} handler",
            )
            log_group = logs.LogGroup(
                self,
                f"{route.construct_id}Logs",
                retention=config.log_retention,
                removal_policy=RemovalPolicy.DESTROY,
            )
            function = lambda_.Function(
                self,
                route.construct_id,
                description=f"auth0-sync: apply Auth0 {route.event_type} events to the CRM",
                runtime=RUNTIME,
                architecture=ARCHITECTURE,
                code=self.code,
                handler=route.handler,
                role=role,
                memory_size=FUNCTION_MEMORY_MB,
                timeout=Duration.seconds(FUNCTION_TIMEOUT_SECONDS),
                # The CRM's rate limit is shared: this caps the calls in flight (None, from
                # reservedConcurrency=none: no cap but the account's unreserved pool).
                reserved_concurrent_executions=config.reserved_concurrency,
                environment={str(k): str(v) for k, v in environment.items()},
                log_group=log_group,
                logging_format=lambda_.LoggingFormat.JSON,
                application_log_level_v2=lambda_.ApplicationLogLevel.INFO,
                system_log_level_v2=lambda_.SystemLogLevel.WARN,
                tracing=lambda_.Tracing.ACTIVE,
                retry_attempts=ASYNC_RETRY_ATTEMPTS,
                max_event_age=Duration.seconds(config.max_event_age_seconds),
                on_failure=dead_letter.on_failure_destination(),
            )
            Validations.of(role).acknowledge(
                Acknowledgment(
                    id="AwsSolutions::AwsSolutions-IAM5[Resource::*]",
                    reason="Only xray:PutTraceSegments and xray:PutTelemetryRecords, added by "
                    "active tracing: X-Ray has no resource-level permissions. Every data "
                    "action is scoped to one table, queue, secret or log group ARN.",
                )
            )
            acknowledge_runtime(function)
            Validations.of(function).acknowledge(
                Acknowledgment(
                    id="Serverless::Serverless-LambdaDLQ",
                    reason="Failed async invocations go to the on-failure destination (the "
                    "DLQ), whose record keeps the request and the error; a DeadLetterConfig "
                    "on top would put every failure in the DLQ twice.",
                )
            )
            log_group.grant_write(role)
            tables.grant_sync(role)
            dead_letter.grant_send(role)
            crm_token.grant_read(role)
            self.functions[route] = function
            self.log_groups.append(log_group)
