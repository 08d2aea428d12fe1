"""The one dead-letter queue, fed by both failure layers and by the handlers themselves."""

from __future__ import annotations

from typing import Any

import jsii
from aws_cdk import Acknowledgment, Duration, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

# SQS's maximum: a long weekend of CRM outage plus time to replay.
DLQ_RETENTION_DAYS = 14


class DeadLetterQueue(Construct):
    """SQS queue (SSE-SQS, TLS only, 14 days) that receives every event nothing could apply.

    Writers: EventBridge (rule-target delivery failures, through the queue policy the rule
    targets add), Lambda (on-failure records) and the handlers (their permanent failures),
    both through the functions' roles.
    """

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        # SQS-managed SSE rather than a KMS key: EventBridge and Lambda can write to it
        # without key-policy grants, and the aws/sqs managed key would lock EventBridge out.
        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(DLQ_RETENTION_DAYS),
        )
        for rule in ("AwsSolutions::AwsSolutions-SQS3", "Serverless::Serverless-SQSRedrivePolicy"):
            Validations.of(self.queue).acknowledge(
                Acknowledgment(
                    id=rule,
                    reason="This queue is the dead-letter queue; failures end here, alarmed "
                    "on depth and replayed with `auth0-sync replay`.",
                )
            )

    def grant_send(self, grantee: iam.IGrantable) -> None:
        """sqs:SendMessage on this queue only (no GetQueueUrl/GetQueueAttributes)."""
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[self.queue.queue_arn])
        )

    def on_failure_destination(self) -> lambda_.IDestination:
        """Lambda on-failure destination; the function needs `grant_send` (done by the caller)."""
        return _QueueDestination(self.queue.queue_arn)


@jsii.implements(lambda_.IDestination)
class _QueueDestination:
    # lambda_destinations.SqsDestination would also grant GetQueueAttributes and GetQueueUrl;
    # Lambda needs only SendMessage, which `grant_send` gives.
    def __init__(self, queue_arn: str) -> None:
        self._queue_arn = queue_arn

    # Called as bind(scope, fn, options); the ARN is all Lambda needs.
    def bind(self, *_args: Any, **_kwargs: Any) -> lambda_.DestinationConfig:
        return lambda_.DestinationConfig(destination=self._queue_arn)
