"""Data at rest: the tables, the DLQ and the CRM token secret."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Template

from auth0_sync.names import STATE_TABLE_PK, Env
from auth0_sync.routing import ROUTES
from infra.dead_letter import DLQ_RETENTION_DAYS
from infra.state import STATE_TABLE_ACTIONS
from tests.infra.cfn import (
    as_list,
    function_for,
    logical_id,
    only,
    render,
    resources,
    role_statements,
)
from tests.infra.conftest import Synth

pytestmark = pytest.mark.infra


def _table(template: Template, partition_key: str) -> dict[str, Any]:
    (table,) = [
        t
        for t in resources(template, "AWS::DynamoDB::Table").values()
        if t["Properties"]["KeySchema"] == [{"AttributeName": partition_key, "KeyType": "HASH"}]
    ]
    return table


def test_the_one_table_is_on_demand_encrypted_with_point_in_time_recovery(
    template: Template,
) -> None:
    # The state item de-duplicates events: there is no idempotency table beside it.
    assert len(resources(template, "AWS::DynamoDB::Table")) == 1
    partition_key = STATE_TABLE_PK
    props = _table(template, partition_key)["Properties"]

    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"] == {"SSEEnabled": True}
    assert props["AttributeDefinitions"] == [{"AttributeName": partition_key, "AttributeType": "S"}]


def test_deleted_users_tombstones_age_out_by_the_tables_ttl(template: Template) -> None:
    # The sync sets `expires_at` on tombstones only (auth0_sync.state.tombstone_expiry).
    props = _table(template, STATE_TABLE_PK)["Properties"]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}


def test_the_state_table_outlives_the_stack(template: Template) -> None:
    table = _table(template, STATE_TABLE_PK)

    # Kept on delete and on replacement, but removed when the stack's creation rolls back,
    # so a failed first deploy can be retried.
    assert table["DeletionPolicy"] == "RetainExceptOnCreate"
    assert table["UpdateReplacePolicy"] == "Retain"


def test_dlq_is_encrypted_and_keeps_messages_14_days(template: Template) -> None:
    _, queue = only(template, "AWS::SQS::Queue")

    assert queue["Properties"] == {
        "MessageRetentionPeriod": DLQ_RETENTION_DAYS * 24 * 3600,
        "SqsManagedSseEnabled": True,
    }
    assert DLQ_RETENTION_DAYS == 14


def test_the_crm_secret_is_created_empty_with_instructions(template: Template) -> None:
    secret_id, secret = only(template, "AWS::SecretsManager::Secret")

    assert "GenerateSecretString" not in secret["Properties"]
    assert "SecretString" not in secret["Properties"]
    assert secret["DeletionPolicy"] == "RetainExceptOnCreate"
    assert secret["UpdateReplacePolicy"] == "Retain"
    output = template.to_json()["Outputs"]["SetCrmToken"]["Value"]["Fn::Join"][1]
    assert output[0] == "aws secretsmanager put-secret-value --secret-id "
    assert logical_id(output[1]) == secret_id
    assert output[2] == " --secret-string file://crm-token.txt"


RETAINED_TABLE = "Auth0Sync-StateState2D1D6C8B-1A2B3C4D5E6F"


def test_a_retained_state_table_is_imported_by_name_not_created(synth: Synth) -> None:
    template = synth(stateTableName=RETAINED_TABLE)

    # No table is created.
    assert resources(template, "AWS::DynamoDB::Table") == {}
    assert template.to_json()["Outputs"]["SyncStateTableName"]["Value"] == RETAINED_TABLE
    for route in ROUTES:
        _, function = function_for(template, route)
        assert function["Properties"]["Environment"]["Variables"][Env.STATE_TABLE] == (
            RETAINED_TABLE
        )
        role_id = logical_id(function["Properties"]["Role"])
        on_table = {
            action
            for statement in role_statements(template, role_id)
            for resource in as_list(statement["Resource"])
            if not isinstance(resource, str) or resource != "*"
            if _arn(resource) == f"arn:aws:dynamodb:eu-west-1:123456789012:table/{RETAINED_TABLE}"
            for action in as_list(statement["Action"])
        }
        assert on_table == set(STATE_TABLE_ACTIONS)


def _arn(resource: Any) -> str | None:
    try:
        return render(resource)
    except (KeyError, ValueError):
        return None  # a reference to a resource of the stack
