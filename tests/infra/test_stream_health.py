"""The stream health check construct, synthesized in a bare stack."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack, Validations
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Match, Template
from cdk_nag import AwsSolutionsChecks, ServerlessChecks

from auth0_sync.names import METRICS_NAMESPACE, SERVICE_NAME, Env
from infra.bundling import RUNTIME
from infra.stream_health import HANDLER, StreamHealthCheck
from tests.infra.cfn import render

pytestmark = pytest.mark.infra

SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:auth0-mgmt-AbCdEf"
STREAM_ID = "est_7W8uNfgHNxDzCgXVrt7JfH"
SOURCE = "aws.partner/auth0.com/acme-5c8d1e0b/auth0.events"


def build(tmp_path: Path, *, nag: bool = False) -> tuple[App, Stack]:
    asset = tmp_path / "asset"
    asset.mkdir()
    (asset / "placeholder.py").write_text("")
    app = App(context={"aws:cdk:bundling-stacks": []}, outdir=str(tmp_path / "cdk.out"))
    stack = Stack(app, "Bare")
    topic = sns.Topic(stack, "Alarms", enforce_ssl=True)
    StreamHealthCheck(
        stack,
        "StreamHealth",
        code=lambda_.Code.from_asset(str(asset)),
        mgmt_secret_arn=SECRET_ARN,
        stream_id=STREAM_ID,
        event_source_name=SOURCE,
        alarm_topic=topic,
        log_retention=logs.RetentionDays.TWO_WEEKS,
    )
    if nag:
        Validations.of(app).add_plugins(AwsSolutionsChecks(app), ServerlessChecks(app))
    return app, stack


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    _, stack = build(tmp_path_factory.mktemp("asset"))
    return Template.from_stack(stack)


def only(template: Template, kind: str) -> tuple[str, Mapping[str, Any]]:
    found = template.find_resources(kind)
    assert len(found) == 1, f"expected one {kind}, found {sorted(found)}"
    return next(iter(found.items()))


def test_function_runs_the_health_handler_with_its_configuration(template: Template) -> None:
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": HANDLER,
            "Runtime": RUNTIME.name,
            "Architectures": ["arm64"],
            "TracingConfig": {"Mode": "Active"},
            "LoggingConfig": Match.object_like({"LogFormat": "JSON"}),
            "Environment": {
                "Variables": {
                    Env.AUTH0_MGMT_SECRET_ARN: SECRET_ARN,
                    Env.AUTH0_STREAM_ID: STREAM_ID,
                    Env.AUTH0_EVENT_SOURCE_NAME: SOURCE,
                    Env.POWERTOOLS_SERVICE_NAME: SERVICE_NAME,
                    Env.POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
                }
            },
        },
    )
    assert HANDLER == "auth0_sync.handlers.stream_health.handler"


def test_schedule_invokes_the_function_every_five_minutes(template: Template) -> None:
    function_id, _ = only(template, "AWS::Lambda::Function")
    _, rule = only(template, "AWS::Events::Rule")
    assert rule["Properties"]["ScheduleExpression"] == "rate(5 minutes)"
    [target] = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}
    template.has_resource_properties(
        "AWS::Lambda::Permission",
        {"Principal": "events.amazonaws.com", "Action": "lambda:InvokeFunction"},
    )


def test_role_reads_that_one_secret_and_writes_its_own_log_group(template: Template) -> None:
    log_group_id, log_group = only(template, "AWS::Logs::LogGroup")
    assert log_group["Properties"]["RetentionInDays"] == 14
    _, function = only(template, "AWS::Lambda::Function")
    assert function["Properties"]["LoggingConfig"]["LogGroup"] == {"Ref": log_group_id}

    _, role = only(template, "AWS::IAM::Role")
    assert "ManagedPolicyArns" not in role["Properties"]
    _, policy = only(template, "AWS::IAM::Policy")
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    by_action: dict[str, Any] = {}
    for statement in statements:
        actions = statement["Action"]
        for action in [actions] if isinstance(actions, str) else actions:
            by_action[action] = statement["Resource"]
    assert by_action["secretsmanager:GetSecretValue"] == SECRET_ARN
    # The event-source ARN format of the service authorization reference: no account.
    assert render(by_action["events:DescribeEventSource"]) == (
        f"arn:aws:events:eu-west-1::event-source/{SOURCE}"
    )
    assert {a for a in by_action if a.startswith("events:")} == {"events:DescribeEventSource"}
    assert {a for a in by_action if a.startswith("secretsmanager:")} == {
        "secretsmanager:GetSecretValue"
    }
    assert {a for a in by_action if a.startswith("logs:")} == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    }
    assert by_action["logs:PutLogEvents"] == {"Fn::GetAtt": [log_group_id, "Arn"]}
    # Only X-Ray, which has no resource-level permissions, is granted on "*".
    assert {a for a, r in by_action.items() if r == "*"} == {
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    }


def test_alarms_fire_when_events_stop_reaching_the_bus(template: Template) -> None:
    alarms = template.find_resources("AWS::CloudWatch::Alarm")
    by_metric = {a["Properties"]["MetricName"]: a["Properties"] for a in alarms.values()}
    assert set(by_metric) == {"FailedDeliveries", "StreamEnabled", "EventSourceActive", "Errors"}
    topic_id, _ = only(template, "AWS::SNS::Topic")
    dimensions = [
        {"Name": "service", "Value": SERVICE_NAME},
        {"Name": "stream", "Value": STREAM_ID},
    ]

    failed = by_metric["FailedDeliveries"]
    assert failed["Namespace"] == METRICS_NAMESPACE
    assert sorted(failed["Dimensions"], key=lambda d: d["Name"]) == dimensions
    # One failed delivery is one event missing from the bus until it is redelivered.
    assert failed["Threshold"] == 1
    assert failed["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert failed["Statistic"] == "Maximum"
    assert failed["TreatMissingData"] == "notBreaching"

    for name in ("StreamEnabled", "EventSourceActive"):
        zero_or_one = by_metric[name]
        assert zero_or_one["Namespace"] == METRICS_NAMESPACE
        assert sorted(zero_or_one["Dimensions"], key=lambda d: d["Name"]) == dimensions
        assert zero_or_one["Threshold"] == 1
        assert zero_or_one["ComparisonOperator"] == "LessThanThreshold"
        assert zero_or_one["Statistic"] == "Minimum"
        assert zero_or_one["Period"] == 900
        # No data (a fresh deploy, a failed run) leaves the alarm as it was: no
        # ALARM-then-OK on every deploy. A check that cannot run is the next alarm's business.
        assert zero_or_one["TreatMissingData"] == "missing"

    function_id, _ = only(template, "AWS::Lambda::Function")
    failing = by_metric["Errors"]
    assert failing["Namespace"] == "AWS/Lambda"
    assert failing["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function_id}}]
    assert failing["Period"] == 300
    assert (failing["EvaluationPeriods"], failing["DatapointsToAlarm"]) == (3, 3)
    assert failing["Threshold"] == 1
    assert failing["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert failing["TreatMissingData"] == "notBreaching"

    for alarm in by_metric.values():
        assert alarm["AlarmActions"] == [{"Ref": topic_id}]
        assert alarm["OKActions"] == [{"Ref": topic_id}]


def test_cdk_nag_reports_no_unacknowledged_finding(tmp_path: Path) -> None:
    app, _ = build(tmp_path, nag=True)
    app.synth()  # raises ValidationFailed on any unacknowledged finding
    report = json.loads((tmp_path / "cdk.out" / "validation-report.json").read_text())
    plugins = {p["pluginName"]: p for p in report["pluginReports"]}
    assert set(plugins) == {"AwsSolutions", "Serverless"}
    for plugin in plugins.values():
        assert plugin["conclusion"] == "success"
        assert plugin["violations"] == []
