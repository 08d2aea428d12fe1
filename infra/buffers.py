"""The buffered topology (context `topology=buffered`): one queue per routed type between its
rule and its function, read through an event source mapping sized to the destination."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Acknowledgment, Duration, Validations
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from auth0_sync.buffering import MAX_RECEIVE_COUNT, QUEUE_RETENTION_DAYS, BufferSizing
from auth0_sync.routing import Route
from infra.dead_letter import DeadLetterQueue

# A queue whose oldest event waited this long is not draining (the CRM refuses, the mapping
# is disabled, the function fails before it answers): a person looks.
BACKLOG_ALARM_MINUTES = 30


class EventBuffers(Construct):
    """Per route: an SQS queue (SSE-SQS, TLS only) whose redrive policy ends in the DLQ after
    MAX_RECEIVE_COUNT receives, and the function's event source mapping on it (batch size,
    batching window, maximum concurrency, partial batch responses)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: Mapping[Route, lambda_.Function],
        dead_letter: DeadLetterQueue,
        sizing: BufferSizing,
        max_concurrency: int,
    ) -> None:
        super().__init__(scope, construct_id)
        self.queues: dict[Route, sqs.Queue] = {}
        for route, function in functions.items():
            queue = sqs.Queue(
                self,
                f"{route.construct_id}Queue",
                # As the DLQ: EventBridge can send to SQS-managed SSE without a key policy.
                encryption=sqs.QueueEncryption.SQS_MANAGED,
                enforce_ssl=True,
                visibility_timeout=Duration.seconds(sizing.visibility_timeout_seconds),
                # Shorter than the DLQ's 14 days: a message keeps its first enqueue time there.
                retention_period=Duration.days(QUEUE_RETENTION_DAYS),
                dead_letter_queue=sqs.DeadLetterQueue(
                    max_receive_count=MAX_RECEIVE_COUNT, queue=dead_letter.queue
                ),
            )
            function.add_event_source(
                event_sources.SqsEventSource(
                    queue,
                    batch_size=sizing.batch_size,
                    max_batching_window=Duration.seconds(sizing.batching_window_seconds),
                    max_concurrency=max_concurrency,
                    report_batch_item_failures=True,
                )
            )
            for child in function.node.children:
                if isinstance(child, lambda_.EventSourceMapping):
                    Validations.of(child).acknowledge(
                        Acknowledgment(
                            id="Serverless::Serverless-LambdaEventSourceMappingDestination",
                            reason="An SQS mapping takes no on-failure destination (streams "
                            "and Kafka only): the queue's redrive policy moves a message that "
                            "keeps failing to the DLQ, and the handler sends its permanent "
                            "failures there itself, with their reason.",
                        )
                    )
            self.queues[route] = queue

    def add_alarms(self, topic: sns.ITopic) -> list[cloudwatch.Alarm]:
        """One alarm per queue on the age of its oldest event, to the stack's topic."""
        alarms = []
        for route, queue in self.queues.items():
            alarm = cloudwatch.Alarm(
                self,
                f"{route.construct_id}Backlog",
                alarm_description=f"{route.event_type} events have waited in their queue for "
                f"{BACKLOG_ALARM_MINUTES} minutes: the handler is not draining it (CRM "
                "refusing, function failing before it answers, mapping disabled). Check the "
                "function's logs and the DLQ.",
                metric=queue.metric_approximate_age_of_oldest_message(
                    period=Duration.minutes(5), statistic="Maximum"
                ),
                threshold=BACKLOG_ALARM_MINUTES * 60,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            action = cloudwatch_actions.SnsAction(topic)
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)
            alarms.append(alarm)
        self.alarms = alarms
        return alarms

    def dashboard_row(self) -> list[cloudwatch.IWidget]:
        """Events waiting per queue, and the oldest one's age."""
        period = Duration.minutes(1)
        return [
            cloudwatch.GraphWidget(
                title="Buffered: events waiting per queue",
                left=[
                    q.metric_approximate_number_of_messages_visible(
                        period=period, statistic="Maximum", label=str(r.event_type)
                    )
                    for r, q in self.queues.items()
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Buffered: oldest event waiting (s)",
                left=[
                    q.metric_approximate_age_of_oldest_message(
                        period=period, statistic="Maximum", label=str(r.event_type)
                    )
                    for r, q in self.queues.items()
                ],
                width=12,
            ),
        ]
