"""Least privilege: the exact actions each handler role gets, and on which resource."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aws_cdk.assertions import Template

from auth0_sync.routing import ROUTES
from infra.bundling import REPO_ROOT
from infra.state import STATE_TABLE_ACTIONS
from tests.infra.cfn import as_list, function_for, logical_id, only, resources, role_statements
from tests.infra.conftest import Synth

pytestmark = pytest.mark.infra

XRAY_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:crm-token-AbC123"
KEY_ARN = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def _role_id(template: Template, route_index: int) -> str:
    _, function = function_for(template, ROUTES[route_index])
    return logical_id(function["Properties"]["Role"])


def _grants(statements: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Resource (logical id or literal) -> the actions allowed on it."""
    grants: dict[str, set[str]] = {}
    for statement in statements:
        assert statement["Effect"] == "Allow"
        for resource in as_list(statement["Resource"]):
            key = resource if isinstance(resource, str) else logical_id(resource)
            grants.setdefault(key, set()).update(as_list(statement["Action"]))
    return grants


def _ids(template: Template) -> dict[str, str]:
    return {
        "state": only(template, "AWS::DynamoDB::Table")[0],
        "queue": only(template, "AWS::SQS::Queue")[0],
    }


def test_each_handler_role_gets_exactly_its_grants(template: Template) -> None:
    ids = _ids(template)
    secret_id, _ = only(template, "AWS::SecretsManager::Secret")
    log_groups = resources(template, "AWS::Logs::LogGroup")
    for index, route in enumerate(ROUTES):
        _, function = function_for(template, route)
        log_group_id = logical_id(function["Properties"]["LoggingConfig"]["LogGroup"])
        assert log_group_id in log_groups

        grants = _grants(role_statements(template, _role_id(template, index)))

        assert grants == {
            "*": XRAY_ACTIONS,
            log_group_id: {"logs:CreateLogStream", "logs:PutLogEvents"},
            ids["state"]: set(STATE_TABLE_ACTIONS),
            ids["queue"]: {"sqs:SendMessage"},
            secret_id: {"secretsmanager:GetSecretValue"},
        }


def test_table_grants_are_item_level_only(template: Template) -> None:
    assert set(STATE_TABLE_ACTIONS) == {"dynamodb:GetItem", "dynamodb:UpdateItem"}


DYNAMODB_CALL = re.compile(
    r"\.(get_item|put_item|update_item|delete_item|query|scan|batch_get_item|"
    r"batch_write_item|transact_get_items|transact_write_items)\("
)


def test_the_table_grant_is_what_the_lambda_code_calls() -> None:
    # Every DynamoDB item call in the Lambda package's modules that speak to DynamoDB (the
    # CLI runs on the operator's credentials, not on these roles; the DLQ reader's `scan` is
    # SQS), as the action IAM names it.
    sources = [
        text
        for path in (REPO_ROOT / "functions" / "auth0_sync").rglob("*.py")
        if "dynamodb" in (text := path.read_text()).lower()
    ]
    called = {
        "dynamodb:" + "".join(part.title() for part in name.split("_"))
        for text in sources
        for name in DYNAMODB_CALL.findall(text)
    }

    assert called == set(STATE_TABLE_ACTIONS)


def test_no_wildcard_action_anywhere_and_wildcard_resources_only_for_xray(
    template: Template,
) -> None:
    for policy in resources(template, "AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = as_list(statement["Action"])

            assert not any("*" in action for action in actions), statement
            if "*" in as_list(statement["Resource"]):
                assert set(actions) <= XRAY_ACTIONS, statement


def test_roles_have_no_managed_policies(template: Template) -> None:
    for role in resources(template, "AWS::IAM::Role").values():
        assert "ManagedPolicyArns" not in role["Properties"]
        # Functions' roles, and the redrive schedule's (EventBridge Scheduler).
        assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] in (
            {"Service": "lambda.amazonaws.com"},
            {"Service": "scheduler.amazonaws.com"},
        )


def test_an_imported_secret_is_read_by_its_full_arn_and_decrypted_only_via_secrets_manager(
    synth: Synth,
) -> None:
    template = synth(crmTokenSecretArn=SECRET_ARN, crmTokenSecretKmsKeyArn=KEY_ARN)

    statements = role_statements(template, _role_id(template, 0))

    assert resources(template, "AWS::SecretsManager::Secret") == {}
    (read,) = [s for s in statements if s["Action"] == "secretsmanager:GetSecretValue"]
    assert read["Resource"] == SECRET_ARN
    (decrypt,) = [s for s in statements if s["Action"] == "kms:Decrypt"]
    assert decrypt["Resource"] == KEY_ARN
    assert decrypt["Condition"] == {
        "StringEquals": {
            "kms:ViaService": {
                "Fn::Join": ["", ["secretsmanager.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]
            }
        }
    }


def test_the_dlq_refuses_plain_http(template: Template) -> None:
    _, policy = only(template, "AWS::SQS::QueuePolicy")

    (deny,) = [
        s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"
    ]

    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert deny["Principal"] == {"AWS": "*"}
