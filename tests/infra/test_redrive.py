"""The automatic redrive in the synthesized stack: its schedule, its role's exact grants
(the DLQ and the handler functions, nothing else), its alarm and its dashboard row."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Template

from auth0_sync.names import CrmType, Env
from auth0_sync.routing import ROUTES
from auth0_sync.settings import Settings
from infra.bundling import ASSET_ROOT
from tests.infra.cfn import as_list, function_for, logical_id, only, resources, role_statements
from tests.infra.conftest import Synth

pytestmark = pytest.mark.infra

HANDLER = "auth0_sync.handlers.redrive.handler"
# What the adapter factory (auth0_sync.destinations.factory.build_crm) reads of Settings.
DESTINATION_VARIABLES = {
    "CRM_TYPE",
    "CRM_BASE_URL",
    "CRM_TOKEN_SECRET_ARN",
    "CRM_API_TOKEN",
    "CRM_TIMEOUT_SECONDS",
    "CRM_RETRY_BUDGET_SECONDS",
}
XRAY_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}


def redrive_function(template: Template) -> tuple[str, dict[str, Any]]:
    found = [
        (lid, res)
        for lid, res in resources(template, "AWS::Lambda::Function").items()
        if res["Properties"]["Handler"] == HANDLER
    ]
    assert len(found) == 1, found
    return found[0]


def grants(statements: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Resource (logical id or literal) -> the actions allowed on it."""
    found: dict[str, set[str]] = {}
    for statement in statements:
        assert statement["Effect"] == "Allow"
        assert "Condition" not in statement
        for resource in as_list(statement["Resource"]):
            key = resource if isinstance(resource, str) else logical_id(resource)
            found.setdefault(key, set()).update(as_list(statement["Action"]))
    return found


def test_the_redrive_runs_every_five_minutes_by_default(template: Template) -> None:
    function_id, function = redrive_function(template)
    _, schedule = only(template, "AWS::Scheduler::Schedule")
    props = schedule["Properties"]

    assert props["ScheduleExpression"] == "rate(5 minutes)"
    assert props["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert props.get("State", "ENABLED") == "ENABLED"
    target = props["Target"]
    assert logical_id(target["Arn"]) == function_id
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": 60}
    # The handler it names is in the code asset.
    module = function["Properties"]["Handler"].rpartition(".")[0]
    assert (ASSET_ROOT / (module.replace(".", "/") + ".py")).is_file()


@pytest.mark.parametrize(
    ("minutes", "expression"), [("1", "rate(1 minute)"), ("15", "rate(15 minutes)")]
)
def test_the_interval_is_a_context_key(synth: Synth, minutes: str, expression: str) -> None:
    _, schedule = only(synth(redriveIntervalMinutes=minutes), "AWS::Scheduler::Schedule")
    assert schedule["Properties"]["ScheduleExpression"] == expression


def test_redrive_false_turns_it_off(synth: Synth) -> None:
    template = synth(redrive="false")
    assert resources(template, "AWS::Scheduler::Schedule") == {}
    handlers = {
        f["Properties"]["Handler"] for f in resources(template, "AWS::Lambda::Function").values()
    }
    assert HANDLER not in handlers
    assert "RedriveFunction" not in template.to_json()["Outputs"]


def test_the_function_gets_the_queue_the_handlers_and_the_age_limit(
    template: Template, synth: Synth
) -> None:
    _, function = redrive_function(template)
    props = function["Properties"]
    env = props["Environment"]["Variables"]
    queue_id, _ = only(template, "AWS::SQS::Queue")
    secret_id, _ = only(template, "AWS::SecretsManager::Secret")

    assert set(env) == {
        "DLQ_URL",
        "SYNC_FUNCTIONS",
        "REDRIVE_MAX_AGE_DAYS",
        "REDRIVE_RATE",
        "CRM_TYPE",
        "CRM_BASE_URL",
        "CRM_TOKEN_SECRET_ARN",
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_METRICS_NAMESPACE",
    }
    assert logical_id(env["DLQ_URL"]) == queue_id
    assert logical_id(env["CRM_TOKEN_SECRET_ARN"]) == secret_id
    assert env["CRM_BASE_URL"] == "https://crm.example.com"
    assert env["REDRIVE_MAX_AGE_DAYS"] == "4"
    # "user.created=<name>,user.updated=<name>,user.deleted=<name>", names by reference.
    parts = env["SYNC_FUNCTIONS"]["Fn::Join"][1]
    named = [logical_id(p) for p in parts if isinstance(p, dict)]
    assert named == [function_for(template, route)[0] for route in ROUTES]
    assert [p for p in parts if isinstance(p, str)] == [
        "user.created=",
        ",user.updated=",
        ",user.deleted=",
        ",organization.created=",
        ",organization.updated=",
        ",organization.deleted=",
        ",organization.member.added=",
        ",organization.member.deleted=",
        ",organization.member.role.assigned=",
        ",organization.member.role.deleted=",
    ]
    assert props["Timeout"] == 300
    assert props["TracingConfig"] == {"Mode": "Active"}
    configs = [
        c["Properties"]
        for c in resources(template, "AWS::Lambda::EventInvokeConfig").values()
        if logical_id(c["Properties"]["FunctionName"]) == redrive_function(template)[0]
    ]
    assert configs == [
        {
            "FunctionName": {"Ref": redrive_function(template)[0]},
            "MaximumRetryAttempts": 0,
            "Qualifier": "$LATEST",
        }
    ]
    seven = redrive_function(synth(redriveMaxAgeDays="7"))[1]
    assert seven["Properties"]["Environment"]["Variables"]["REDRIVE_MAX_AGE_DAYS"] == "7"


@pytest.mark.parametrize(
    ("context", "crm_type"),
    [
        ({}, CrmType.REST),
        ({"crmType": "hubspot"}, CrmType.HUBSPOT),
        ({"crmType": "salesforce", "crmBaseUrl": "https://acme.my.salesforce.com"},
         CrmType.SALESFORCE),
    ],
)  # fmt: skip
def test_the_redrive_gets_the_handlers_destination_environment(
    synth: Synth, context: dict[str, str], crm_type: CrmType
) -> None:
    """The probe builds the configured destination's adapter: the function has every
    variable of the handlers that the adapter factory reads, with the same values."""
    template = synth(**context)
    environment = redrive_function(template)[1]["Properties"]["Environment"]["Variables"]
    destination = {k: v for k, v in environment.items() if k in DESTINATION_VARIABLES}
    for route in ROUTES:
        handler = function_for(template, route)[1]["Properties"]["Environment"]["Variables"]
        assert destination == {k: v for k, v in handler.items() if k in DESTINATION_VARIABLES}
    assert destination[Env.CRM_TYPE] == crm_type
    resolved = {k: v if isinstance(v, str) else "resolved" for k, v in environment.items()}
    settings = Settings.from_env(resolved)  # what the redrive's probe reads
    assert settings.crm_type is crm_type


def test_its_role_may_use_the_dlq_invoke_the_handlers_and_read_the_token_only(
    template: Template,
) -> None:
    _, function = redrive_function(template)
    role_id = logical_id(function["Properties"]["Role"])
    queue_id, _ = only(template, "AWS::SQS::Queue")
    secret_id, _ = only(template, "AWS::SecretsManager::Secret")
    log_group_id = logical_id(function["Properties"]["LoggingConfig"]["LogGroup"])
    handler_ids = [function_for(template, route)[0] for route in ROUTES]

    assert grants(role_statements(template, role_id)) == {
        "*": XRAY_ACTIONS,
        log_group_id: {"logs:CreateLogStream", "logs:PutLogEvents"},
        queue_id: {
            "sqs:ReceiveMessage",
            "sqs:ChangeMessageVisibility",
            "sqs:DeleteMessage",
            "sqs:SendMessage",
        },
        secret_id: {"secretsmanager:GetSecretValue"},
        **{handler_id: {"lambda:InvokeFunction"} for handler_id in handler_ids},
    }
    role = resources(template, "AWS::IAM::Role")[role_id]["Properties"]
    assert "ManagedPolicyArns" not in role
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "lambda.amazonaws.com"
    }


def test_the_schedule_may_invoke_the_redrive_function_and_nothing_else(
    template: Template,
) -> None:
    function_id, _ = redrive_function(template)
    _, schedule = only(template, "AWS::Scheduler::Schedule")
    role_id = logical_id(schedule["Properties"]["Target"]["RoleArn"])

    assert grants(role_statements(template, role_id)) == {function_id: {"lambda:InvokeFunction"}}
    [trust] = resources(template, "AWS::IAM::Role")[role_id]["Properties"][
        "AssumeRolePolicyDocument"
    ]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}


def test_an_alarm_says_when_something_is_left_for_a_person(template: Template) -> None:
    topic_id, _ = only(template, "AWS::SNS::Topic")
    [alarm] = [
        a["Properties"]
        for a in resources(template, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == "LeftForAPerson"
    ]

    assert alarm["Namespace"] == "Auth0Sync"
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "auth0-sync"}]
    assert (alarm["Statistic"], alarm["Period"], alarm["Threshold"]) == ("Maximum", 300, 1)
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["EvaluationPeriods"] == 1
    assert alarm["TreatMissingData"] == "notBreaching"
    assert [logical_id(a) for a in alarm["AlarmActions"]] == [topic_id]
    assert [logical_id(a) for a in alarm["OKActions"]] == [topic_id]
    assert "auth0-sync dlq show" in alarm["AlarmDescription"]


def _dashboard(template: Template) -> dict[str, Any]:
    """The dashboard body as JSON, each CloudFormation reference as "<logical id>"."""
    _, dashboard = only(template, "AWS::CloudWatch::Dashboard")
    parts = dashboard["Properties"]["DashboardBody"]["Fn::Join"][1]
    text = "".join(
        p
        if isinstance(p, str)
        else f"<{logical_id(p)}>"
        if "Ref" in p or "Fn::GetAtt" in p
        else "<?>"
        for p in parts
    )
    body: dict[str, Any] = json.loads(text)
    return body


def test_an_alarm_says_when_the_oldest_held_failure_outlasts_an_hour(template: Template) -> None:
    """DeadLetterQueueNotDraining watches the age each run publishes of the oldest failure
    it still holds (from the failures' first time), not the queue's own message age."""
    [alarm] = [
        a["Properties"]
        for lid, a in resources(template, "AWS::CloudWatch::Alarm").items()
        if lid.startswith("RedriveDeadLetterQueueNotDraining")
    ]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("Auth0Sync", "OldestFailureAge")
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "auth0-sync"}]
    assert alarm["Statistic"] == "Maximum"
    assert alarm["Period"] == 300  # one redrive interval: every period has a run's value
    assert alarm["Threshold"] == 3600  # seconds since the first failure
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["EvaluationPeriods"] == 1
    topic_id, _ = only(template, "AWS::SNS::Topic")
    assert [logical_id(a) for a in alarm["AlarmActions"]] == [topic_id]
    assert [logical_id(a) for a in alarm["OKActions"]] == [topic_id]


def test_the_dashboard_has_a_redrive_row(template: Template) -> None:
    alarm_ids = {
        a["Properties"].get("MetricName"): lid
        for lid, a in resources(template, "AWS::CloudWatch::Alarm").items()
    }
    widgets = _dashboard(template)["widgets"]
    last_row = max(w["y"] for w in widgets)
    row = sorted((w for w in widgets if w["y"] == last_row), key=lambda w: w["x"])

    titles = [w["properties"]["title"] for w in row]
    assert titles == [
        "Redrive: events redriven and failing again",
        "Redrive: events left for a person; oldest failure held (s)",
        "Redrive",
    ]
    redriven, left, status = (w["properties"] for w in row)
    assert [m[:2] for m in redriven["metrics"]] == [
        ["Auth0Sync", "Redriven"],
        ["Auth0Sync", "RedriveStillFailing"],
    ]
    assert all(m[2:4] == ["service", "auth0-sync"] for m in redriven["metrics"])
    assert [m[:2] for m in left["metrics"]] == [
        ["Auth0Sync", "LeftForAPerson"],
        ["Auth0Sync", "OldestFailureAge"],
    ]
    assert [m[4]["stat"] for m in left["metrics"]] == ["Maximum", "Maximum"]
    assert left["metrics"][1][4]["yAxis"] == "right"
    assert status["alarms"] == [
        f"<{alarm_ids['LeftForAPerson']}>",
        f"<{alarm_ids['OldestFailureAge']}>",
    ]


def test_the_stack_names_the_function_for_redrive_with_stack(template: Template) -> None:
    function_id, _ = redrive_function(template)
    output = template.to_json()["Outputs"]["RedriveFunction"]
    assert output["Value"] == {"Ref": function_id}
