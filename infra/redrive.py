"""The automatic redrive: a scheduled function that replays the DLQ's transient failures once
the CRM answers again, its alarms (what it leaves to a person; an event still held an hour
after it first failed), and its dashboard row.

Direct topology: it runs each event in the deployed handler function (a synchronous
Invoke), not in its own process: the handlers' reserved concurrency then caps live traffic
and redrive together, so the CRM's rate limit is shared as the operator sized it; the
sync's configuration and its table and secret grants stay on the handlers alone; and a
redriven event is logged and counted by the same function as a live one. Its role
therefore holds: read, hold, delete and send on the DLQ; invoke the handler functions and
nothing else; read the CRM token, for the probe's one read of the configured CRM; write
its own logs (and X-Ray).

Buffered topology (`topology=buffered`): it sends each chosen event to its type's buffer
queue instead (SendMessageBatch, the event with its DLQ history), where the type's event
source mapping applies it with live traffic, in batches through the destination's batch
calls, at the maximum concurrency sized for the destination: that concurrency bounds the
redrive's CRM rate, not REDRIVE_RATE, and one invocation per event would be neither batched
nor paced with the buffer. The outcome is asynchronous, so a run does not stop after
failures in a row (the probe still gates it); what fails again comes back to the DLQ
through the handler or the queue's redrive policy. Its role then may send to those queues
(`grant_send_messages`) instead of invoking the functions.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Acknowledgment, Aws, CfnOutput, Duration, Stack, Validations
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from auth0_sync.names import (
    METRIC_SERVICE_DIMENSION,
    METRICS_NAMESPACE,
    REDRIVE_RATE_PER_SECOND,
    SERVICE_NAME,
    STACK_OUTPUT_REDRIVE_FUNCTION,
    Env,
    RedriveEnv,
    RedriveMetric,
)
from auth0_sync.routing import Route
from infra.dead_letter import DeadLetterQueue
from infra.scheduled import scheduled_function
from infra.secret import CrmTokenSecret

HANDLER = "auth0_sync.handlers.redrive.handler"
# A run stops starting events with one handler timeout (and the clean-up) left; the next
# run picks up where it stopped. Runs that overlap are safe: each holds what it reads.
TIMEOUT_SECONDS = 300
# Exactly what a redrive does with the DLQ: receive and hold (visibility), delete after
# success, send the new failure of an event that failed again.
# DeadLetterQueueNotDraining: an event first failed this long ago and is still held.
NOT_DRAINING_SECONDS = 3600
DLQ_ACTIONS = (
    "sqs:ReceiveMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:DeleteMessage",
    "sqs:SendMessage",
)


class Redrive(Construct):
    """Scheduled redrive function, its schedule, its "left for a person" and "not
    draining" alarms."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        code: lambda_.Code,
        dead_letter: DeadLetterQueue,
        functions: Mapping[Route, lambda_.IFunction],
        crm_token: CrmTokenSecret,
        destination_environment: Mapping[str, str],
        interval_minutes: int,
        max_age_days: int,
        alarm_topic: sns.ITopic,
        log_retention: logs.RetentionDays,
        buffers: Mapping[Route, sqs.IQueue] | None = None,
    ) -> None:
        """`buffers`: the buffered topology's queue per route, which the redrive sends the
        events it chose to (None: the direct topology, it invokes `functions`)."""
        super().__init__(scope, construct_id)
        self.interval = Duration.minutes(interval_minutes)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="auth0-sync redrive",
        )
        self.role.add_to_policy(
            iam.PolicyStatement(actions=list(DLQ_ACTIONS), resources=[dead_letter.queue.queue_arn])
        )
        crm_token.grant_read(self.role)
        environment: dict[str, str] = {
            Env.DLQ_URL: dead_letter.queue.queue_url,
            RedriveEnv.MAX_AGE_DAYS: str(max_age_days),
            # The probe's one read: the handlers' destination (CRM_TYPE, its URL, its
            # secret), so the probe builds the adapter they use.
            **destination_environment,
        }
        if buffers:
            for queue in buffers.values():
                queue.grant_send_messages(self.role)
            environment[RedriveEnv.BUFFER_QUEUES] = Stack.of(self).to_json_string(
                {str(route.event_type): queue.queue_url for route, queue in buffers.items()}
            )
        else:
            self.role.add_to_policy(
                iam.PolicyStatement(
                    actions=["lambda:InvokeFunction"],
                    resources=[function.function_arn for function in functions.values()],
                )
            )
            environment[RedriveEnv.SYNC_FUNCTIONS] = ",".join(
                f"{route.event_type}={function.function_name}"
                for route, function in functions.items()
            )
            environment[RedriveEnv.RATE] = str(REDRIVE_RATE_PER_SECOND)
        self.function, self.log_group = scheduled_function(
            self,
            description="auth0-sync: replay the DLQ's transient failures once the CRM answers",
            code=code,
            handler=HANDLER,
            role=self.role,
            timeout_seconds=TIMEOUT_SECONDS,
            environment=environment,
            log_retention=log_retention,
        )
        # EventBridge Scheduler with a role of its own that may invoke this function and
        # nothing else (the L2 target would also grant every qualified version, `:*`).
        self.schedule_role = iam.Role(
            self,
            "ScheduleRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            ),
            description="auth0-sync redrive schedule",
        )
        self.schedule_role.add_to_policy(
            iam.PolicyStatement(
                actions=["lambda:InvokeFunction"], resources=[self.function.function_arn]
            )
        )
        unit = "minute" if interval_minutes == 1 else "minutes"
        self.schedule = scheduler.CfnSchedule(
            self,
            "Schedule",
            description="auth0-sync: redrive the DLQ's transient failures",
            schedule_expression=f"rate({interval_minutes} {unit})",
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            target=scheduler.CfnSchedule.TargetProperty(
                arn=self.function.function_arn,
                role_arn=self.schedule_role.role_arn,
                # A missed run is not worth a late one: the next comes within the interval.
                retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                    maximum_retry_attempts=0, maximum_event_age_in_seconds=60
                ),
            ),
        )
        self.alarm = cloudwatch.Alarm(
            self,
            "LeftForAPersonAlarm",
            alarm_description=(
                "The DLQ holds events the redrive will not retry: a permanent reason (a "
                "rejected field, an ambiguous email, a wrong token) or failing for more than "
                f"{max_age_days} days. `auth0-sync dlq list`, `auth0-sync dlq show ID`; fix "
                "the cause, then `auth0-sync replay`, or `auth0-sync dlq delete ID --reason`."
            ),
            metric=self.metric(RedriveMetric.LEFT_FOR_A_PERSON, "Maximum"),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        # The queue's ApproximateAgeOfOldestMessage cannot say this: every run receives
        # every message and re-sends what fails again as a new one, so it never passes the
        # interval. Each run publishes the age of the oldest failure still held instead,
        # from the failures' own first time. A merely waiting event is the redrive's work
        # (and LeftForAPerson reports at once what it will not retry); one waiting an hour
        # is an outage that outlasts a dozen runs: somebody should know.
        self.not_draining_alarm = cloudwatch.Alarm(
            self,
            "DeadLetterQueueNotDraining",
            alarm_description=(
                "An event has waited in the DLQ for over an hour since it first failed: the "
                "redrive keeps retrying it (a CRM outage?). `auth0-sync dlq list` shows the "
                "reasons."
            ),
            metric=self.metric(RedriveMetric.OLDEST_FAILURE_AGE, "Maximum"),
            threshold=NOT_DRAINING_SECONDS,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        action = cloudwatch_actions.SnsAction(alarm_topic)
        for alarm in (self.alarm, self.not_draining_alarm):
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)
        CfnOutput(
            scope,
            STACK_OUTPUT_REDRIVE_FUNCTION,
            description="`auth0-sync redrive --stack <stack>` runs it now",
            value=self.function.function_name,
        )
        self._acknowledge()

    def metric(self, name: RedriveMetric, statistic: str = "Sum") -> cloudwatch.Metric:
        """One of the counts each run publishes, per schedule interval."""
        return cloudwatch.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name=name,
            dimensions_map={METRIC_SERVICE_DIMENSION: SERVICE_NAME},
            statistic=statistic,
            period=self.interval,
        )

    def dashboard_row(self) -> list[cloudwatch.IWidget]:
        """Redriven and still failing per interval; left for a person; the alarm."""
        return [
            cloudwatch.GraphWidget(
                title="Redrive: events redriven and failing again",
                left=[
                    self.metric(RedriveMetric.REDRIVEN),
                    self.metric(RedriveMetric.STILL_FAILING),
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Redrive: events left for a person; oldest failure held (s)",
                left=[self.metric(RedriveMetric.LEFT_FOR_A_PERSON, "Maximum")],
                right=[self.metric(RedriveMetric.OLDEST_FAILURE_AGE, "Maximum")],
                width=8,
            ),
            cloudwatch.AlarmStatusWidget(
                title="Redrive",
                alarms=[self.alarm, self.not_draining_alarm],
                width=8,
                height=6,
            ),
        ]

    def _acknowledge(self) -> None:
        Validations.of(self.role).acknowledge(
            Acknowledgment(
                id="AwsSolutions::AwsSolutions-IAM5[Resource::*]",
                reason="Only xray:PutTraceSegments and xray:PutTelemetryRecords, added by "
                "active tracing: X-Ray has no resource-level permissions. The queue, the "
                "secret, the functions and the log group are each named by ARN.",
            )
        )
        no_dead_letters = (
            "A failed redrive run is replaced by the next scheduled one; what it holds comes "
            "back to the DLQ when its visibility ends, so a dead letter would hold nothing."
        )
        for rule_id in (
            "Serverless::Serverless-LambdaDLQ",
            "Serverless::Serverless-LambdaAsyncFailureDestination",
        ):
            Validations.of(self.function).acknowledge(
                Acknowledgment(id=rule_id, reason=no_dead_letters)
            )
