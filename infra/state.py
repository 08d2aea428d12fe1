"""DynamoDB tables: per-user sync state and Powertools idempotency records."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from constructs import Construct

from auth0_sync.names import IDEMPOTENCY_TABLE_PK, IDEMPOTENCY_TTL_ATTRIBUTE, STATE_TABLE_PK

# What the sync does with each table, and nothing more (no Scan, Query or Batch*).
STATE_TABLE_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem")
IDEMPOTENCY_TABLE_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
)


def _table(
    scope: Construct,
    construct_id: str,
    partition_key: str,
    removal_policy: RemovalPolicy,
    ttl_attribute: str | None = None,
) -> dynamodb.Table:
    return dynamodb.Table(
        scope,
        construct_id,
        partition_key=dynamodb.Attribute(name=partition_key, type=dynamodb.AttributeType.STRING),
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True
        ),
        encryption=dynamodb.TableEncryption.AWS_MANAGED,
        time_to_live_attribute=ttl_attribute,
        removal_policy=removal_policy,
    )


class SyncStateTables(Construct):
    """The state table (what was applied per user, tombstones) and the idempotency table.

    The state table is retained when the stack is deleted; `imported_state_table_name`
    (context `stateTableName`) reuses such a table instead of creating an empty one.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, imported_state_table_name: str | None = None
    ) -> None:
        super().__init__(scope, construct_id)
        # Retained on stack deletion: it holds the CRM contact mapping and the delete
        # tombstones that stop a late update from resurrecting a contact.
        self.state_table: dynamodb.ITable
        if imported_state_table_name is not None:
            self.state_table = dynamodb.Table.from_table_name(
                self, "State", imported_state_table_name
            )
        else:
            self.state_table = _table(self, "State", STATE_TABLE_PK, RemovalPolicy.RETAIN)
        # Records expire after a day (TTL); nothing of value is lost with the stack.
        self.idempotency_table = _table(
            self,
            "Idempotency",
            IDEMPOTENCY_TABLE_PK,
            RemovalPolicy.DESTROY,
            ttl_attribute=IDEMPOTENCY_TTL_ATTRIBUTE,
        )

    def grant_sync(self, grantee: iam.IGrantable) -> None:
        """The item-level actions a sync handler uses, on the two table ARNs only."""
        self.state_table.grant(grantee, *STATE_TABLE_ACTIONS)
        self.idempotency_table.grant(grantee, *IDEMPOTENCY_TABLE_ACTIONS)
