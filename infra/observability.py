"""Dashboard, alarms to an SNS topic, and saved Logs Insights queries for the sync."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Acknowledgment, Aws, CfnOutput, Duration, RemovalPolicy, Stack, Validations
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from auth0_sync.names import (
    DLQ_ATTR_ERROR_CLASS,
    DLQ_ATTR_REASON,
    METRIC_REASON_DIMENSION,
    METRIC_SERVICE_DIMENSION,
    METRICS_NAMESPACE,
    REASON_DEACTIVATION_LIMIT,
    SERVICE_NAME,
    Metric,
    SkipReason,
)
from auth0_sync.routing import Route

PERIOD = Duration.minutes(5)
APPLIED_METRICS = (
    Metric.CONTACT_CREATED,
    Metric.CONTACT_LINKED,
    Metric.CONTACT_UPDATED,
    Metric.CONTACT_DEACTIVATED,
    Metric.CONTACT_ANONYMIZED,
    # Organizations (issue 24): companies and memberships.
    Metric.COMPANY_CREATED,
    Metric.COMPANY_UPDATED,
    Metric.COMPANY_DEACTIVATED,
    Metric.MEMBERSHIP_SET,
    Metric.MEMBERSHIP_REMOVED,
)
# Placeholder the operator replaces in the saved query before running it.
USER_ID_PLACEHOLDER = "auth0|REPLACE_WITH_USER_ID"
# The handlers log each outcome with a `status` (auth0_sync.sync.Status); this one means the
# event went to the DLQ. A test keeps the two in step.
DEAD_LETTERED_STATUS = "dead_lettered"
OUTCOME_STATUS_KEY = "status"


def _outcome(metric: Metric, **dimensions: str) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=metric,
        dimensions_map={METRIC_SERVICE_DIMENSION: SERVICE_NAME, **dimensions},
        statistic="Sum",
        period=PERIOD,
        label=dimensions.get(METRIC_REASON_DIMENSION, str(metric)),
    )


def _events_metric(name: str, bus_name: str, rule_name: str) -> cloudwatch.Metric:
    # Rules on a custom (partner) bus publish with both dimensions, RuleName being the name
    # (not the rule's Ref, which there is "bus|rule").
    return cloudwatch.Metric(
        namespace="AWS/Events",
        metric_name=name,
        dimensions_map={"EventBusName": bus_name, "RuleName": rule_name},
        statistic="Sum",
        period=PERIOD,
    )


def _this_accounts_alarms() -> str:
    """ARN pattern of every CloudWatch alarm of this account and region."""
    return f"arn:{Aws.PARTITION}:cloudwatch:{Aws.REGION}:{Aws.ACCOUNT_ID}:alarm:*"


class Observability(Construct):
    """Everything an operator looks at: one dashboard, alarms (to SNS), two saved queries."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: Mapping[Route, lambda_.Function],
        rule_names: Mapping[Route, str],
        event_bus_name: str,
        event_source_name: str,
        dead_letter_queue: sqs.IQueue,
        log_groups: Sequence[logs.ILogGroup],
        alarm_email: str | None,
        redrive: bool = False,
        crm_secret_arn: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = self._alarm_topic(alarm_email)
        self.alarms: list[cloudwatch.Alarm] = []

        dlq_depth = dead_letter_queue.metric_approximate_number_of_messages_visible(
            period=Duration.minutes(1), statistic="Maximum"
        )
        dlq_age = dead_letter_queue.metric_approximate_age_of_oldest_message(
            period=Duration.minutes(1), statistic="Maximum"
        )
        if not redrive:
            self._alarm(
                "DeadLetterQueueNotEmpty",
                dlq_depth,
                "An event could not be applied and waits in the DLQ: `auth0-sync dlq list`, "
                "fix the cause, then `auth0-sync replay`.",
            )
        # The CRM refused the credential in the secret, also after a fresh read: every
        # event fails until a person puts the current one there (the redrive then retries).
        self._alarm(
            "CrmCredentialsRejected",
            cloudwatch.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name=Metric.CRM_CREDENTIALS_REJECTED,
                dimensions_map={METRIC_SERVICE_DIMENSION: SERVICE_NAME},
                statistic="Sum",
                period=PERIOD,
            ),
            "The CRM refuses the credential in the CRM secret "
            f"{crm_secret_arn or '(CRM_TOKEN_SECRET_ARN)'}, also after re-reading it: put the "
            "current token (or Salesforce client secret) into that secret with `aws "
            "secretsmanager put-secret-value`; the redrive retries the failed events.",
        )
        # The live path's deactivation brake held deletes (auth0_sync.deactivation_window):
        # the redrive leaves them, a person decides (redrive on or off).
        self._alarm(
            "DeactivationsHeld",
            cloudwatch.Metric(  # no label: a plain metric alarm, not a math expression
                namespace=METRICS_NAMESPACE,
                metric_name=Metric.EVENT_DEAD_LETTERED,
                dimensions_map={
                    METRIC_SERVICE_DIMENSION: SERVICE_NAME,
                    METRIC_REASON_DIMENSION: REASON_DEACTIVATION_LIMIT,
                },
                statistic="Sum",
                period=PERIOD,
            ),
            "More user.deleted events than DEACTIVATION_WINDOW_LIMIT in one window: the excess "
            "deletes are held in the DLQ (reason deactivation_limit), their contacts untouched. "
            "Check they are real (`auth0-sync dlq list`), then `auth0-sync replay "
            "--allow-deactivations N`; if not, purge them.",
        )
        # With the redrive on, it alarms itself: on what it leaves for a person, and on the
        # age of the oldest failure it still holds (infra/redrive.py).
        # Alarms page a person only when a person has something to do: an event in the DLQ,
        # or one lost on its way there. A handler's errors and throttles are retried by
        # Lambda (a CRM 503, a 429 burst) and end applied or in the DLQ, which alarms then;
        # they are graphed on the dashboard, not alarmed.
        for route, function in functions.items():
            name = route.construct_id
            self._alarm(
                f"{name}AsyncEventsDropped",
                function.metric("AsyncEventsDropped", period=PERIOD, statistic="Sum"),
                f"Lambda gave up on {route.event_type} events (retries or age exhausted); "
                "they went to the on-failure destination, check the DLQ.",
            )
            self._alarm(
                f"{name}DestinationDeliveryFailures",
                function.metric("DestinationDeliveryFailures", period=PERIOD, statistic="Sum"),
                f"Lambda could not write a failed {route.event_type} event to the DLQ: the "
                "event is lost unless Auth0 redelivers it.",
            )
        for route, rule in rule_names.items():
            name = route.construct_id
            self._alarm(
                f"{name}RuleFailedInvocations",
                _events_metric("FailedInvocations", event_bus_name, rule),
                f"EventBridge could not deliver {route.event_type} events to the handler; "
                "they went to the DLQ.",
            )
            self._alarm(
                f"{name}RuleDeadLetterFailures",
                _events_metric("InvocationsFailedToBeSentToDlq", event_bus_name, rule),
                f"EventBridge could not deliver {route.event_type} events nor write them to "
                "the DLQ: they are lost unless Auth0 redelivers them.",
            )

        self.dashboard = self._dashboard(
            functions, rule_names, event_bus_name, event_source_name, dlq_depth, dlq_age
        )
        self._queries(log_groups)
        CfnOutput(
            scope,
            "DashboardUrl",
            description="The auth0-sync CloudWatch dashboard",
            value=f"https://{Aws.REGION}.console.aws.amazon.com/cloudwatch/home?region="
            f"{Aws.REGION}#dashboards/dashboard/{self.dashboard.dashboard_name}",
        )
        CfnOutput(scope, "AlarmTopicArn", value=self.topic.topic_arn)

    def add_alarm_row(self, title: str, alarms: Sequence[cloudwatch.IAlarm]) -> None:
        """Show another construct's alarms (already wired to the topic) on the dashboard."""
        self.dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title=title, alarms=list(alarms), width=24, height=3)
        )

    def _alarm_topic(self, alarm_email: str | None) -> sns.Topic:
        # CloudWatch cannot publish to a topic under the AWS-managed aws/sns key, so the topic
        # gets its own key that CloudWatch may use.
        key = kms.Key(
            self,
            "AlarmTopicKey",
            description="auth0-sync alarm topic",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.DESTROY,
            pending_window=Duration.days(7),
        )
        # CloudWatch, on behalf of this account's alarms only (confused-deputy guard).
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowThisAccountsCloudWatchToUseTheKey",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            )
        )
        topic = sns.Topic(
            self, "AlarmTopic", display_name="auth0-sync alarms", master_key=key, enforce_ssl=True
        )
        # enforce_ssl writes a topic policy, which replaces SNS's default one: without this
        # Allow, CloudWatch may not publish and every alarm action fails. Only this account's
        # alarms may (the confused-deputy conditions AWS recommends for service principals).
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowThisAccountsAlarmsToPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={
                    "ArnLike": {"aws:SourceArn": _this_accounts_alarms()},
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                },
            )
        )
        if alarm_email is not None:
            subscription = topic.add_subscription(subscriptions.EmailSubscription(alarm_email))
            Validations.of(subscription).acknowledge(
                Acknowledgment(
                    id="Serverless::Serverless-SNSRedrivePolicy",
                    reason="An email notification that fails to deliver needs no queue: the "
                    "alarm state stays on the dashboard and in CloudWatch.",
                )
            )
        return topic

    def _alarm(
        self,
        construct_id: str,
        metric: cloudwatch.IMetric,
        description: str,
        threshold: float = 1,
    ) -> None:
        """Alarm on any occurrence (>= 1 in a period, unless another `threshold`); no data
        means nothing happened."""
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        action = cloudwatch_actions.SnsAction(self.topic)
        alarm.add_alarm_action(action)
        alarm.add_ok_action(action)
        self.alarms.append(alarm)

    def _dashboard(
        self,
        functions: Mapping[Route, lambda_.Function],
        rule_names: Mapping[Route, str],
        event_bus_name: str,
        event_source_name: str,
        dlq_depth: cloudwatch.Metric,
        dlq_age: cloudwatch.Metric,
    ) -> cloudwatch.Dashboard:
        def per_type(title: str, make: str, statistic: str = "Sum") -> cloudwatch.GraphWidget:
            return cloudwatch.GraphWidget(
                title=title,
                width=8,
                left=[
                    fn.metric(make, period=PERIOD, statistic=statistic, label=str(r.event_type))
                    for r, fn in functions.items()
                ],
            )

        dead_lettered = cloudwatch.MathExpression(
            # Failure reasons are open-ended, so a search finds every one emitted.
            expression=(
                f"SEARCH('{{{METRICS_NAMESPACE},{METRIC_REASON_DIMENSION},"
                f'{METRIC_SERVICE_DIMENSION}}} MetricName="{Metric.EVENT_DEAD_LETTERED}"\', '
                f"'Sum', {int(PERIOD.to_seconds())})"
            ),
            label="",
            period=PERIOD,
        )
        dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=Stack.of(self).stack_name,
            default_interval=Duration.hours(6),
        )
        dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=self.alarms, width=24, height=4)
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Dead-letter queue: messages",
                left=[dlq_depth.with_(label="visible messages")],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Dead-letter queue: age of oldest message",
                left=[dlq_age.with_(label="age of oldest (s)")],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Events dead-lettered by reason", left=[dead_lettered], width=8
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Applied to the CRM",
                left=[_outcome(metric) for metric in APPLIED_METRICS],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Skipped by reason (unchanged, stale, duplicate, ...)",
                left=[
                    _outcome(Metric.EVENT_SKIPPED, **{METRIC_REASON_DIMENSION: reason})
                    for reason in SkipReason
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(title="CRM calls", left=[_outcome(Metric.CRM_CALLS)], width=8),
        )
        dashboard.add_widgets(
            per_type("Invocations", "Invocations"),
            per_type("Errors", "Errors"),
            per_type("Throttles", "Throttles"),
        )
        dashboard.add_widgets(
            per_type("Duration p99 (ms)", "Duration", statistic="p99"),
            per_type("Concurrent executions (max)", "ConcurrentExecutions", "Maximum"),
            per_type("Async events dropped", "AsyncEventsDropped"),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Events received from Auth0",
                left=[
                    cloudwatch.Metric(
                        namespace="AWS/Events",
                        metric_name="Events",
                        dimensions_map={"EventSourceName": event_source_name},
                        statistic="Sum",
                        period=PERIOD,
                    )
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Rule matches",
                left=[
                    _events_metric("MatchedEvents", event_bus_name, rule).with_(
                        label=str(route.event_type)
                    )
                    for route, rule in rule_names.items()
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Rule delivery failures",
                left=[
                    _events_metric("FailedInvocations", event_bus_name, rule).with_(
                        label=str(route.event_type)
                    )
                    for route, rule in rule_names.items()
                ],
                width=8,
            ),
        )
        return dashboard

    def _queries(self, log_groups: Sequence[logs.ILogGroup]) -> None:
        logs.QueryDefinition(
            self,
            "UserQuery",
            query_definition_name="auth0-sync/everything-about-one-auth0-user",
            log_groups=list(log_groups),
            query_string=logs.QueryString(
                fields=["@timestamp", "@log", "level", "message", "@message"],
                # Every log line that names the user, whatever key holds the id.
                filter_statements=[f'@message like "{USER_ID_PLACEHOLDER}"'],
                sort="@timestamp asc",
                limit=1000,
            ),
        )
        reason = (
            f"coalesce({DLQ_ATTR_REASON}, {DLQ_ATTR_ERROR_CLASS}, errorType, exception_name, "
            'record.status, "unclassified")'
        )
        logs.QueryDefinition(
            self,
            "FailuresQuery",
            query_definition_name="auth0-sync/failures-by-reason-last-hour",
            log_groups=list(log_groups),
            query_string=logs.QueryString(
                # Dead-lettered outcomes, transient failures (WARNING, retried by Lambda),
                # errors from the handlers and the runtime, and Lambda's own reports of a
                # timed-out or crashed invocation.
                filter_statements=[
                    f'{OUTCOME_STATUS_KEY} = "{DEAD_LETTERED_STATUS}" '
                    'or level in ["WARNING", "ERROR", "CRITICAL", "FATAL"] '
                    'or record.status in ["timeout", "error", "failure"]'
                ],
                fields=[f"{reason} as failure_reason"],
                stats_statements=[
                    f"count(*) as failures by failure_reason, {OUTCOME_STATUS_KEY}, @log"
                ],
                sort="failures desc",
            ),
        )
