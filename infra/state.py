"""The DynamoDB table of per-user sync state (it also de-duplicates: no idempotency table)."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from constructs import Construct

from auth0_sync.names import STATE_TABLE_PK, STATE_TTL_ATTRIBUTE

# What the sync does with the table, and nothing more: the state store reads an item and
# writes it with conditional UpdateItem calls only (no PutItem, Scan, Query or Batch*).
STATE_TABLE_ACTIONS = ("dynamodb:GetItem", "dynamodb:UpdateItem")


def _table(
    scope: Construct,
    construct_id: str,
    partition_key: str,
    removal_policy: RemovalPolicy,
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
        # Deleted users' tombstones age out (`auth0_sync.state.tombstone_expiry`).
        time_to_live_attribute=STATE_TTL_ATTRIBUTE,
        removal_policy=removal_policy,
    )


class SyncStateTables(Construct):
    """The state table: what was applied per user, tombstones, contact claims.

    Its items de-duplicate the events too (the last event id and order key of each user),
    so no table exists only for that (Powertools Idempotency is not used).

    The state table is retained when the stack is deleted; `imported_state_table_name`
    (context `stateTableName`) reuses such a table instead of creating an empty one (its
    TTL on `expires_at` is then the owner's to enable: CloudFormation does not manage it).
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
            # RETAIN_ON_UPDATE_OR_DELETE (DeletionPolicy RetainExceptOnCreate): a first
            # deploy that rolls back removes the table it just made, so the retry can
            # create it again; once created, it outlives the stack.
            self.state_table = _table(
                self, "State", STATE_TABLE_PK, RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE
            )

    def grant_sync(self, grantee: iam.IGrantable) -> None:
        """The item-level actions a sync handler uses, on the table's ARN only."""
        self.state_table.grant(grantee, *STATE_TABLE_ACTIONS)
