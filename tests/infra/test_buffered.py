"""The buffered topology (`topology=buffered`): a queue per routed type between its rule and
its function, its redrive policy ending in the one DLQ, an event source mapping sized to
the destination. One synth for the module (cdk-nag runs in it), shared with cfn-lint."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Template
from cfnlint.api import ManualArgs, lint

from auth0_sync.routing import ROUTES
from infra.config import ConfigurationError, read_config
from tests.infra.cfn import function_for, logical_id, resources, role_statements
from tests.infra.conftest import CDK_JSON_CONTEXT, Synth
from tests.infra.test_cfn_lint import ACCEPTED_WARNINGS, REGIONS
from tests.infra.test_redrive import grants, redrive_function

pytestmark = pytest.mark.infra

# Lambda's documented advice for a function reading SQS: the queue's visibility timeout at
# least six times the function's timeout (30 s here).
LEAST_VISIBILITY_SECONDS = 6 * 30


@pytest.fixture(scope="module")
def buffered(synth: Synth) -> Template:
    return synth(topology="buffered")


def _dlq_id(template: Template) -> str:
    (dlq,) = [lid for lid in resources(template, "AWS::SQS::Queue") if "DeadLetter" in lid]
    return dlq


def _buffers(template: Template) -> dict[str, dict[str, Any]]:
    dlq = _dlq_id(template)
    return {lid: q for lid, q in resources(template, "AWS::SQS::Queue").items() if lid != dlq}


def _rule_target(template: Template, route_type: str) -> dict[str, Any]:
    (rule,) = [
        r["Properties"]
        for r in resources(template, "AWS::Events::Rule").values()
        if route_type in r["Properties"]["EventPattern"]["detail"]["type"]
    ]
    (target,) = rule["Targets"]
    return dict(target)


def _mapping_of(template: Template, function_id: str) -> dict[str, Any]:
    (mapping,) = [
        m["Properties"]
        for m in resources(template, "AWS::Lambda::EventSourceMapping").values()
        if logical_id(m["Properties"]["FunctionName"]) == function_id
    ]
    return dict(mapping)


def test_each_rule_targets_a_queue_of_its_own_which_its_function_reads(
    buffered: Template,
) -> None:
    queues = _buffers(buffered)
    assert len(queues) == len(ROUTES) == 10
    read = set()
    for route in ROUTES:
        function_id, _ = function_for(buffered, route)
        target = _rule_target(buffered, str(route.event_type))
        queue_id = logical_id(target["Arn"])

        assert queue_id in queues
        assert logical_id(_mapping_of(buffered, function_id)["EventSourceArn"]) == queue_id
        read.add(queue_id)
    assert read == set(queues)


def test_every_queue_is_encrypted_tls_only_and_ends_in_the_one_dlq(buffered: Template) -> None:
    dlq = _dlq_id(buffered)
    policies = resources(buffered, "AWS::SQS::QueuePolicy").values()
    for queue_id, queue in _buffers(buffered).items():
        properties = queue["Properties"]

        assert properties["SqsManagedSseEnabled"] is True
        assert properties["VisibilityTimeout"] >= LEAST_VISIBILITY_SECONDS
        assert logical_id(properties["RedrivePolicy"]["deadLetterTargetArn"]) == dlq
        assert properties["RedrivePolicy"]["maxReceiveCount"] == 5
        statements = [
            s
            for p in policies
            if queue_id in {logical_id(q) for q in p["Properties"]["Queues"]}
            for s in p["Properties"]["PolicyDocument"]["Statement"]
        ]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
        )
        assert any(
            s["Effect"] == "Allow" and s["Principal"] == {"Service": "events.amazonaws.com"}
            for s in statements
        )


def test_rule_delivery_failures_still_go_to_the_dlq(buffered: Template) -> None:
    dlq = _dlq_id(buffered)
    for route in ROUTES:
        target = _rule_target(buffered, str(route.event_type))

        assert logical_id(target["DeadLetterConfig"]["Arn"]) == dlq


def test_mappings_are_sized_to_the_destination_and_report_partial_failures(
    buffered: Template,
) -> None:
    for route in ROUTES:
        function_id, _ = function_for(buffered, route)
        mapping = _mapping_of(buffered, function_id)

        # The generic contract's sizing (auth0_sync.buffering), written out by hand.
        assert mapping["BatchSize"] == 50
        assert mapping["MaximumBatchingWindowInSeconds"] == 5
        assert mapping["ScalingConfig"] == {"MaximumConcurrency": 5}
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_each_function_may_consume_only_its_own_queue(buffered: Template) -> None:
    for route in ROUTES:
        _, function = function_for(buffered, route)
        queue_id = logical_id(_rule_target(buffered, str(route.event_type))["Arn"])
        role_id = logical_id(function["Properties"]["Role"])

        receives = [
            logical_id(s["Resource"])
            for s in role_statements(buffered, role_id)
            if "sqs:ReceiveMessage" in s["Action"]
        ]
        assert receives == [queue_id]


def test_each_queue_alarms_when_it_stops_draining(buffered: Template) -> None:
    alarmed = {
        a["Properties"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
        for a in resources(buffered, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == "ApproximateAgeOfOldestMessage"
        and a["Properties"]["Namespace"] == "AWS/SQS"
    }
    assert set(_buffers(buffered)) <= alarmed


def test_the_buffered_template_has_no_cfn_lint_finding(buffered: Template) -> None:
    findings = [
        (m.rule.id, m.message)
        for m in lint(json.dumps(buffered.to_json()), config=ManualArgs(regions=REGIONS))
    ]

    assert {rule for rule, _ in findings} <= ACCEPTED_WARNINGS, findings


def test_the_direct_topology_stays_the_default_without_queues(template: Template) -> None:
    assert len(resources(template, "AWS::SQS::Queue")) == 1  # the DLQ alone
    assert resources(template, "AWS::Lambda::EventSourceMapping") == {}


def _read(**context: Any) -> Any:
    return read_config(App(context={**CDK_JSON_CONTEXT, **context}))


def test_the_mapping_stays_within_the_functions_reservation() -> None:
    assert _read(topology="buffered", reservedConcurrency="3").buffer_concurrency == 3
    assert _read(topology="buffered", crmType="hubspot").buffer_concurrency == 2
    assert _read(topology="buffered", reservedConcurrency="none").buffer_concurrency == 5


def test_a_reservation_below_the_mappings_least_concurrency_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="'reservedConcurrency' must be 2 or more"):
        _read(topology="buffered", reservedConcurrency="1")


def test_an_unknown_topology_is_refused_naming_the_choices() -> None:
    with pytest.raises(ConfigurationError, match=r"context 'topology'.*'direct' or 'buffered'"):
        _read(topology="queued")


def test_the_redrive_sends_to_the_buffer_queues_and_invokes_no_function(
    buffered: Template,
) -> None:
    """Buffered, the redrive hands what it chose to each type's queue (its mapping paces the
    CRM): it gets their URLs and may send to them, and no longer invokes the handlers."""
    _, function = redrive_function(buffered)
    env = function["Properties"]["Environment"]["Variables"]
    role_id = logical_id(function["Properties"]["Role"])
    queue_of = {
        str(r.event_type): logical_id(_rule_target(buffered, str(r.event_type))["Arn"])
        for r in ROUTES
    }
    # {"user.created": "<its queue's URL>", ...}: each URL a Ref to the queue its rule targets.
    parts = env["REDRIVE_BUFFER_QUEUES"]["Fn::Join"][1]
    text = "".join(p if isinstance(p, str) else f"ref:{logical_id(p)}" for p in parts)
    assert json.loads(text) == {t: f"ref:{queue_id}" for t, queue_id in queue_of.items()}
    assert not {"SYNC_FUNCTIONS", "REDRIVE_RATE"} & set(env)

    found = grants(role_statements(buffered, role_id))
    sends = {key for key, actions in found.items() if "sqs:SendMessage" in actions}
    assert sends == {_dlq_id(buffered), *queue_of.values()}
    for queue_id in queue_of.values():
        # grant_send_messages: send, and read the queue's attributes and URL; never receive.
        assert found[queue_id] == {"sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"}
    invoked = {key for key, actions in found.items() if "lambda:InvokeFunction" in actions}
    assert invoked == set()
