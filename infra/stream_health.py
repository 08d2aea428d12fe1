"""Optional scheduled check of the Auth0 event stream, alarmed before Auth0 disables it.

Every few minutes a function reads the stream and its failed deliveries through the
Management API (credentials from a Secrets Manager secret), and the partner event source's
state through EventBridge, and publishes FailedDeliveries, StreamEnabled and
EventSourceActive. Alarms go to the alarm topic: any failed delivery, a stream that is not
enabled, a source that is not ACTIVE, and a check that keeps failing.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Aws, Duration, Validations
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from constructs import Construct

from auth0_sync.names import (
    METRIC_SERVICE_DIMENSION,
    METRIC_STREAM_DIMENSION,
    METRICS_NAMESPACE,
    SERVICE_NAME,
    STREAM_HEALTH_INTERVAL_MINUTES,
    Env,
    StreamMetric,
)
from auth0_sync.streams.health import DEFAULT_THRESHOLDS
from infra.scheduled import scheduled_function

HANDLER = "auth0_sync.handlers.stream_health.handler"
# Paging up to 5,000 failed deliveries is 50 calls; Retry-After waits are capped at 10 s.
TIMEOUT_SECONDS = 60
# StreamEnabled is judged over three runs, so one late or lost run does not page anyone.
# Missing data keeps the alarm where it was (a fresh deploy starts with no data and must not
# go ALARM then OK); a check that cannot run raises HealthCheckFailing instead.
ENABLED_PERIOD = Duration.minutes(3 * STREAM_HEALTH_INTERVAL_MINUTES)
FAILURES_PERIOD = Duration.minutes(STREAM_HEALTH_INTERVAL_MINUTES)
# The check fails this many runs in a row (bad credentials, a missing scope, Auth0 down)
# before someone is paged; one failed run is replaced by the next.
FAILING_RUNS_TO_ALARM = 3


class StreamHealthCheck(Construct):
    """Scheduled stream health function, its schedule, and its two alarms."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        code: lambda_.Code,
        mgmt_secret_arn: str,
        stream_id: str,
        event_source_name: str,
        alarm_topic: sns.ITopic,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="auth0-sync stream health check",
        )
        # The complete secret ARN (six-character suffix included): this secret and no other.
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["secretsmanager:GetSecretValue"], resources=[mgmt_secret_arn]
            )
        )
        # The partner event source's state (is anything reaching the bus?); the resource is
        # the event-source ARN of the service authorization reference (no account in it).
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["events:DescribeEventSource"],
                resources=[
                    f"arn:{Aws.PARTITION}:events:{Aws.REGION}::event-source/{event_source_name}"
                ],
            )
        )
        environment: dict[str, str] = {
            Env.AUTH0_MGMT_SECRET_ARN: mgmt_secret_arn,
            Env.AUTH0_STREAM_ID: stream_id,
            Env.AUTH0_EVENT_SOURCE_NAME: event_source_name,
        }
        self.function, self.log_group = scheduled_function(
            self,
            description="auth0-sync: check the Auth0 event stream and its failed deliveries",
            code=code,
            handler=HANDLER,
            role=role,
            timeout_seconds=TIMEOUT_SECONDS,
            environment=environment,
            log_retention=log_retention,
        )
        self.rule = events.Rule(
            self,
            "Schedule",
            description="auth0-sync: run the stream health check",
            schedule=events.Schedule.rate(Duration.minutes(STREAM_HEALTH_INTERVAL_MINUTES)),
            targets=[targets.LambdaFunction(self.function, retry_attempts=0)],
        )

        dimensions = {METRIC_SERVICE_DIMENSION: SERVICE_NAME, METRIC_STREAM_DIMENSION: stream_id}
        thresholds = DEFAULT_THRESHOLDS
        self.failed_deliveries_alarm = cloudwatch.Alarm(
            self,
            "FailedDeliveriesAlarm",
            alarm_description=(
                f"Auth0 failed to deliver events of stream {stream_id}: they are not on the "
                "bus until redelivered. Check the bus and the partner source, then `auth0-sync "
                f"streams deliveries {stream_id}` and `streams redeliver {stream_id} --all`. "
                f"Auth0 disables the stream at {thresholds.consecutive_limit} consecutive or "
                f"{thresholds.total_limit} total failures."
            ),
            metric=self._metric(StreamMetric.FAILED_DELIVERIES, dimensions, "Maximum"),
            # Any failed delivery is an event missing until someone redelivers it.
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.stream_not_enabled_alarm = self._below_one(
            "StreamNotEnabledAlarm",
            self._metric(StreamMetric.STREAM_ENABLED, dimensions, "Minimum", ENABLED_PERIOD),
            f"Auth0 event stream {stream_id} is not enabled: no identity change reaches the "
            f"CRM. `auth0-sync streams health {stream_id}`; after fixing the cause, redeliver "
            "and `streams enable`.",
        )
        self.event_source_not_active_alarm = self._below_one(
            "EventSourceNotActiveAlarm",
            self._metric(StreamMetric.EVENT_SOURCE_ACTIVE, dimensions, "Minimum", ENABLED_PERIOD),
            f"The partner event source {event_source_name} is not ACTIVE (or stream "
            f"{stream_id} publishes elsewhere): EventBridge accepts Auth0's events and delivers "
            f"none. `auth0-sync streams health {stream_id}`; associate the source with the "
            "bus (or recreate the stream), then `streams redeliver --all`.",
        )
        self.check_failing_alarm = cloudwatch.Alarm(
            self,
            "HealthCheckFailingAlarm",
            alarm_description=(
                f"The stream health check of {stream_id} failed {FAILING_RUNS_TO_ALARM} runs in "
                "a row: nothing watches the stream. Its log group says why (the Management API "
                "client's credentials in the secret, its read:event_streams and "
                "read:event_deliveries scopes, or Auth0 itself)."
            ),
            metric=self.function.metric_errors(period=FAILURES_PERIOD, statistic="Sum"),
            threshold=1,
            evaluation_periods=FAILING_RUNS_TO_ALARM,
            datapoints_to_alarm=FAILING_RUNS_TO_ALARM,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.alarms = [
            self.failed_deliveries_alarm,
            self.stream_not_enabled_alarm,
            self.event_source_not_active_alarm,
            self.check_failing_alarm,
        ]
        action = cloudwatch_actions.SnsAction(alarm_topic)
        for alarm in self.alarms:
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)
        self._acknowledge(role)

    @staticmethod
    def _metric(
        name: StreamMetric,
        dimensions: dict[str, str],
        statistic: str,
        period: Duration = FAILURES_PERIOD,
    ) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name=name,
            dimensions_map=dimensions,
            statistic=statistic,
            period=period,
        )

    def _below_one(
        self, construct_id: str, metric: cloudwatch.Metric, description: str
    ) -> cloudwatch.Alarm:
        """A 0/1 health metric that went to 0 over the period (three runs)."""
        return cloudwatch.Alarm(
            self,
            construct_id,
            alarm_description=description,
            metric=metric,
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.MISSING,
        )

    def _acknowledge(self, role: iam.Role) -> None:
        Validations.of(role).acknowledge(
            Acknowledgment(
                id="AwsSolutions::AwsSolutions-IAM5[Resource::*]",
                reason="Only xray:PutTraceSegments and xray:PutTelemetryRecords, added by "
                "active tracing: X-Ray has no resource-level permissions. The secret read is "
                "scoped to one secret ARN, log writes to one log group.",
            )
        )
        no_dead_letters = (
            "A failed health check run is replaced by the next scheduled one, and failed runs "
            "in a row raise the HealthCheckFailing alarm; a dead letter would hold nothing."
        )
        for rule_id in (
            "Serverless::Serverless-LambdaDLQ",
            "Serverless::Serverless-LambdaAsyncFailureDestination",
        ):
            Validations.of(self.function).acknowledge(
                Acknowledgment(id=rule_id, reason=no_dead_letters)
            )
        Validations.of(self.rule).acknowledge(
            Acknowledgment(id="Serverless::Serverless-EventBusDLQ", reason=no_dead_letters)
        )
