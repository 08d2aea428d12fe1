"""Alarms (to an encrypted SNS topic), the dashboard's content and the saved queries."""

from __future__ import annotations

import json
from fnmatch import fnmatchcase
from typing import Any, get_args

import pytest
from aws_cdk.assertions import Template

from auth0_sync.names import (
    METRIC_REASON_DIMENSION,
    METRICS_NAMESPACE,
    Metric,
    SkipReason,
)
from auth0_sync.routing import ROUTES
from auth0_sync.sync import Status
from infra.config import StackConfig
from infra.observability import DEAD_LETTERED_STATUS
from tests.infra.cfn import PSEUDO, as_list, function_for, logical_id, only, render, resources
from tests.infra.conftest import Synth

pytestmark = pytest.mark.infra


def _alarms(template: Template) -> list[dict[str, Any]]:
    return [a["Properties"] for a in resources(template, "AWS::CloudWatch::Alarm").values()]


def _alarms_on(template: Template, metric_name: str) -> list[dict[str, Any]]:
    return [a for a in _alarms(template) if a.get("MetricName") == metric_name]


def _dimension(alarm: dict[str, Any], name: str) -> Any:
    (value,) = [d["Value"] for d in alarm["Dimensions"] if d["Name"] == name]
    return value


def test_without_the_redrive_the_dlq_alarm_fires_on_one_visible_message(synth: Synth) -> None:
    template = synth(redrive=False)
    queue_id, _ = only(template, "AWS::SQS::Queue")

    (alarm,) = _alarms_on(template, "ApproximateNumberOfMessagesVisible")

    assert alarm["Namespace"] == "AWS/SQS"
    assert logical_id(_dimension(alarm, "QueueName")) == queue_id
    assert alarm["Threshold"] == 1
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["EvaluationPeriods"] == 1
    assert _alarms_on(template, "ApproximateAgeOfOldestMessage") == []


def test_with_the_redrive_no_alarm_watches_the_queue_itself(template: Template) -> None:
    # The redrive clears transient failures by itself and alarms on what it leaves for a
    # person and on the age of the oldest failure it holds (tests/infra/test_redrive.py):
    # the queue's depth and its ApproximateAgeOfOldestMessage (reset by every run's
    # re-sends) page nobody.
    assert _alarms_on(template, "ApproximateNumberOfMessagesVisible") == []
    assert _alarms_on(template, "ApproximateAgeOfOldestMessage") == []


def test_deletes_held_by_the_deactivation_brake_alarm_at_once(template: Template) -> None:
    (alarm,) = [
        a
        for a in _alarms_on(template, "EventDeadLettered")
        if {"Name": "reason", "Value": "deactivation_limit"} in a["Dimensions"]
    ]

    assert alarm["Namespace"] == METRICS_NAMESPACE
    assert (alarm["Threshold"], alarm["Statistic"]) == (1, "Sum")
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert "replay --allow-deactivations" in alarm["AlarmDescription"]


@pytest.mark.parametrize("metric_name", ["AsyncEventsDropped", "DestinationDeliveryFailures"])
def test_every_function_has_an_alarm_on(template: Template, metric_name: str) -> None:
    alarms = _alarms_on(template, metric_name)

    alarmed = {logical_id(_dimension(a, "FunctionName")) for a in alarms}

    assert alarmed == {function_for(template, route)[0] for route in ROUTES}
    for alarm in alarms:
        assert alarm["Namespace"] == "AWS/Lambda"
        assert alarm["Statistic"] == "Sum"
        assert alarm["Threshold"] == 1


def _rule_names(template: Template) -> set[str]:
    names = {r["Properties"]["Name"] for r in resources(template, "AWS::Events::Rule").values()}
    # Literal names: CloudWatch publishes the rule metrics under the name, and a rule's Ref
    # on a custom bus is "bus|rule", which no metric carries.
    assert all(isinstance(name, str) for name in names), names
    return names


@pytest.mark.parametrize("metric_name", ["Errors", "Throttles"])
def test_what_lambda_retries_is_graphed_not_alarmed(template: Template, metric_name: str) -> None:
    # A transient CRM failure or a burst raises Errors or Throttles on every retry; the
    # event then ends applied, or in the DLQ, whose alarm is the one that pages.
    assert _alarms_on(template, metric_name) == []
    assert f'\\"AWS/Lambda\\",\\"{metric_name}\\"' in _dashboard_body(template)


@pytest.mark.parametrize("metric_name", ["FailedInvocations", "InvocationsFailedToBeSentToDlq"])
def test_every_rule_has_an_alarm_on(template: Template, metric_name: str) -> None:
    alarms = _alarms_on(template, metric_name)

    alarmed = {_dimension(a, "RuleName") for a in alarms}

    assert alarmed == _rule_names(template)
    assert len(alarmed) == len(ROUTES)
    for alarm in alarms:
        assert alarm["Namespace"] == "AWS/Events"
        assert _dimension(alarm, "EventBusName") == StackConfig().event_source_name


def test_the_dashboard_graphs_each_rule_under_its_name(template: Template) -> None:
    body = _dashboard_body(template)

    for name in _rule_names(template):
        for metric in ("MatchedEvents", "FailedInvocations"):
            assert f'\\"{metric}\\",\\"EventBusName\\",' in body, metric
            assert f'\\"RuleName\\",\\"{name}\\"' in body, name
    for rule_id in resources(template, "AWS::Events::Rule"):
        assert f'"Ref": "{rule_id}"' not in body


def test_every_alarm_notifies_the_encrypted_topic(template: Template) -> None:
    topic_id, topic = only(template, "AWS::SNS::Topic")
    key_id, key = only(template, "AWS::KMS::Key")

    assert logical_id(topic["Properties"]["KmsMasterKeyId"]) == key_id
    assert key["Properties"]["EnableKeyRotation"] is True
    (cloudwatch_may_use_key,) = [
        s
        for s in key["Properties"]["KeyPolicy"]["Statement"]
        if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert cloudwatch_may_use_key["Effect"] == "Allow"
    assert set(cloudwatch_may_use_key["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    # Only on behalf of this account (confused-deputy guard).
    assert cloudwatch_may_use_key["Condition"] == {
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    }
    alarms = _alarms(template)
    # The DLQ; the refused CRM credential; per function dropped events and failed DLQ
    # writes; per rule the same two; the redrive's "left for a person" (test_redrive.py);
    # the deletes the brake held.
    assert len(alarms) == 1 + 1 + 2 * len(ROUTES) + 2 * len(ROUTES) + 1 + 1
    for alarm in alarms:
        assert [logical_id(a) for a in alarm["AlarmActions"]] == [topic_id]
        assert alarm["TreatMissingData"] == "notBreaching"


def test_cloudwatch_may_publish_to_the_topic_for_this_accounts_alarms_only(
    template: Template,
) -> None:
    # A topic policy replaces SNS's default one, so it must allow CloudWatch itself.
    topic_id, _ = only(template, "AWS::SNS::Topic")
    _, policy = only(template, "AWS::SNS::TopicPolicy")
    assert [logical_id(t) for t in policy["Properties"]["Topics"]] == [topic_id]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]

    (allow,) = [s for s in statements if s["Effect"] == "Allow"]
    (deny,) = [s for s in statements if s["Effect"] == "Deny"]

    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert as_list(allow["Action"]) == ["sns:Publish"]
    assert logical_id(allow["Resource"]) == topic_id
    pattern = render(allow["Condition"]["ArnLike"]["aws:SourceArn"])
    assert pattern == "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:*"
    # An alarm ARN as CloudWatch documents it matches; another account's does not.
    assert fnmatchcase("arn:aws:cloudwatch:eu-west-1:123456789012:alarm:Auth0Sync-Dlq", pattern)
    assert not fnmatchcase("arn:aws:cloudwatch:eu-west-1:210987654321:alarm:X", pattern)
    assert (
        render(allow["Condition"]["StringEquals"]["aws:SourceAccount"]) == PSEUDO["AWS::AccountId"]
    )
    # Beside it, the TLS-only Deny.
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_alarm_email_subscribes_only_when_given(template: Template, synth: Synth) -> None:
    assert resources(template, "AWS::SNS::Subscription") == {}

    with_email = synth(alarmEmail="oncall@example.com")

    _, subscription = only(with_email, "AWS::SNS::Subscription")
    assert subscription["Properties"]["Protocol"] == "email"
    assert subscription["Properties"]["Endpoint"] == "oncall@example.com"


def _dashboard_body(template: Template) -> str:
    _, dashboard = only(template, "AWS::CloudWatch::Dashboard")
    return json.dumps(dashboard["Properties"]["DashboardBody"])


def test_dashboard_shows_outcomes_by_reason_and_the_dlq(template: Template) -> None:
    body = _dashboard_body(template)

    for metric in (
        Metric.CONTACT_CREATED,
        Metric.CONTACT_UPDATED,
        Metric.CONTACT_DEACTIVATED,
        Metric.COMPANY_CREATED,
        Metric.MEMBERSHIP_SET,
        Metric.MEMBERSHIP_REMOVED,
        Metric.EVENT_SKIPPED,
        "ApproximateNumberOfMessagesVisible",
        "ApproximateAgeOfOldestMessage",
    ):
        assert f'\\"{metric}\\"' in body, metric
    for reason in (
        SkipReason.UNCHANGED,
        SkipReason.STALE,
        SkipReason.DUPLICATE,
        SkipReason.MEMBERSHIP_PENDING,
        SkipReason.ORGANIZATIONS_UNSUPPORTED,
    ):
        assert f'\\"{METRIC_REASON_DIMENSION}\\",\\"{reason}\\"' in body, reason
    assert f'MetricName=\\\\\\"{Metric.EVENT_DEAD_LETTERED}\\\\\\"' in body
    assert f"SEARCH('{{{METRICS_NAMESPACE},{METRIC_REASON_DIMENSION}," in body


def test_the_dashboard_is_named_after_the_stack(template: Template) -> None:
    _, dashboard = only(template, "AWS::CloudWatch::Dashboard")

    assert dashboard["Properties"]["DashboardName"] == "Auth0Sync"


def test_dashboard_shows_each_function_health(template: Template) -> None:
    body = _dashboard_body(template)

    for metric in ("Invocations", "Errors", "Duration", "Throttles", "ConcurrentExecutions"):
        assert f'\\"AWS/Lambda\\",\\"{metric}\\"' in body, metric
    for route in ROUTES:
        function_id, _ = function_for(template, route)
        assert f'"Ref": "{function_id}"' in body


def test_saved_queries_cover_every_handler_log_group(template: Template) -> None:
    queries = {
        q["Properties"]["Name"]: q["Properties"]
        for q in resources(template, "AWS::Logs::QueryDefinition").values()
    }
    log_groups = {
        logical_id(function_for(template, r)[1]["Properties"]["LoggingConfig"]["LogGroup"])
        for r in ROUTES
    }

    assert set(queries) == {
        "auth0-sync/everything-about-one-auth0-user",
        "auth0-sync/failures-by-reason-last-hour",
    }
    for query in queries.values():
        assert {logical_id(ref) for ref in query["LogGroupNames"]} == log_groups
    user_query = queries["auth0-sync/everything-about-one-auth0-user"]["QueryString"]
    assert 'filter @message like "auth0|REPLACE_WITH_USER_ID"' in user_query
    failures = queries["auth0-sync/failures-by-reason-last-hour"]["QueryString"]
    assert f'filter status = "{DEAD_LETTERED_STATUS}" or level in ["WARNING", ' in failures
    assert "stats count(*) as failures by failure_reason, status, @log" in failures


def test_the_failures_query_matches_the_handlers_outcome_status() -> None:
    assert DEAD_LETTERED_STATUS in get_args(Status)


def test_a_refused_crm_credential_alarms_naming_the_secret(template: Template) -> None:
    secret_id, _ = only(template, "AWS::SecretsManager::Secret")

    (alarm,) = _alarms_on(template, Metric.CRM_CREDENTIALS_REJECTED)

    assert alarm["Namespace"] == METRICS_NAMESPACE
    assert _dimension(alarm, "service") == "auth0-sync"
    assert alarm["Statistic"] == "Sum"
    assert alarm["Threshold"] == 1
    # The description names the secret a person must update: its ARN, joined in.
    description = json.dumps(alarm["AlarmDescription"])
    assert f'{{"Ref": "{secret_id}"}}' in description
    assert "put-secret-value" in description
