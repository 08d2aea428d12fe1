"""Rules on the partner bus: one per event type, its pattern and its own function, both DLQs."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aws_cdk.assertions import Template

from auth0_sync.names import (
    ASYNC_RETRY_ATTEMPTS,
    PARTNER_SOURCE_PREFIX,
    Env,
    EventType,
    OrgEventType,
)
from auth0_sync.routing import ORG_ROUTES, ROUTES, USER_ROUTES
from infra.config import (
    RULE_TARGET_MAX_EVENT_AGE_HOURS,
    RULE_TARGET_RETRY_ATTEMPTS,
    StackConfig,
)
from tests.infra.cfn import function_for, logical_id, only, resources
from tests.infra.conftest import Synth

pytestmark = pytest.mark.infra

DEFAULT_SOURCE = StackConfig().event_source_name


def _rule_for(template: Template, event_type: EventType | OrgEventType) -> dict[str, Any]:
    rules = [
        rule
        for rule in resources(template, "AWS::Events::Rule").values()
        if str(event_type) in rule["Properties"]["EventPattern"]["detail"]["type"]
    ]
    assert len(rules) == 1, f"expected one rule for {event_type}, got {len(rules)}"
    properties: dict[str, Any] = rules[0]["Properties"]
    return properties


def test_one_rule_per_event_type_matching_detail_type_and_the_partner_source(
    template: Template,
) -> None:
    assert len(resources(template, "AWS::Events::Rule")) == len(ROUTES) == 3 + 7
    for route in ROUTES:
        rule = _rule_for(template, route.event_type)

        assert rule["EventPattern"] == route.event_pattern()
        assert rule["EventPattern"] == {
            "source": [{"prefix": PARTNER_SOURCE_PREFIX}],
            "detail": {"type": [str(route.event_type), f"com.auth0.{route.event_type}"]},
        }
        assert "detail-type" not in rule["EventPattern"]
        assert rule["EventBusName"] == DEFAULT_SOURCE


def test_rules_have_fixed_valid_names_unique_per_partner_source(synth: Synth) -> None:
    other = f"{PARTNER_SOURCE_PREFIX}/acme-0123/auth0.events"
    names = [_rule_for(synth(), r.event_type)["Name"] for r in ROUTES]
    other_names = [
        _rule_for(synth(auth0EventSourceName=other), r.event_type)["Name"] for r in ROUTES
    ]

    for name in names + other_names:
        # EventBridge's rule name constraints (PutRule API reference).
        assert re.fullmatch(r"[\.\-_A-Za-z0-9]{1,64}", name), name
        assert name.startswith("Auth0Sync-")
    assert len(set(names)) == len(ROUTES)
    # A new source replaces the rules; CloudFormation replaces a named resource only when
    # the name changes too.
    assert not set(names) & set(other_names)


def test_each_rule_targets_its_own_function(template: Template) -> None:
    targeted = set()
    for route in ROUTES:
        function_id, _ = function_for(template, route)
        (target,) = _rule_for(template, route.event_type)["Targets"]

        assert logical_id(target["Arn"]) == function_id
        targeted.add(function_id)
    assert len(targeted) == len(ROUTES)


def test_rule_targets_retry_explicitly_then_dead_letter(template: Template) -> None:
    queue_id, _ = only(template, "AWS::SQS::Queue")
    for route in ROUTES:
        (target,) = _rule_for(template, route.event_type)["Targets"]

        assert target["RetryPolicy"] == {
            "MaximumRetryAttempts": RULE_TARGET_RETRY_ATTEMPTS,
            "MaximumEventAgeInSeconds": RULE_TARGET_MAX_EVENT_AGE_HOURS * 3600,
        }
        assert logical_id(target["DeadLetterConfig"]["Arn"]) == queue_id


def test_lambda_failures_go_to_the_same_dlq(template: Template) -> None:
    queue_id, _ = only(template, "AWS::SQS::Queue")
    configs = resources(template, "AWS::Lambda::EventInvokeConfig")
    assert len(configs) == len(ROUTES) + 1  # and the redrive's: no retries (test_redrive.py)
    for route in ROUTES:
        function_id, _ = function_for(template, route)
        (config,) = [
            c["Properties"]
            for c in configs.values()
            if logical_id(c["Properties"]["FunctionName"]) == function_id
        ]

        assert config["MaximumRetryAttempts"] == ASYNC_RETRY_ATTEMPTS
        assert config["MaximumEventAgeInSeconds"] == StackConfig().max_event_age_seconds
        assert logical_id(config["DestinationConfig"]["OnFailure"]["Destination"]) == queue_id


def test_eventbridge_may_write_to_the_dlq_only_from_our_rules(template: Template) -> None:
    queue_id, _ = only(template, "AWS::SQS::Queue")
    _, policy = only(template, "AWS::SQS::QueuePolicy")
    rule_ids = set(resources(template, "AWS::Events::Rule"))

    allows = [
        s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"
    ]

    assert {logical_id(s["Condition"]["ArnEquals"]["aws:SourceArn"]) for s in allows} == rule_ids
    for statement in allows:
        assert statement["Principal"] == {"Service": "events.amazonaws.com"}
        assert statement["Action"] == "sqs:SendMessage"
        assert logical_id(statement["Resource"]) == queue_id


def test_only_the_enabled_event_types_get_a_rule_and_a_function(synth: Synth) -> None:
    template = synth(eventTypes="user.created,user.deleted", redrive="false", organizations="false")

    patterns = [
        r["Properties"]["EventPattern"] for r in resources(template, "AWS::Events::Rule").values()
    ]
    handlers = {
        f["Properties"]["Handler"] for f in resources(template, "AWS::Lambda::Function").values()
    }

    enabled = [r for r in USER_ROUTES if r.event_type != EventType.USER_UPDATED]
    assert sorted(json.dumps(p, sort_keys=True) for p in patterns) == sorted(
        json.dumps(r.event_pattern(), sort_keys=True) for r in enabled
    )
    assert handlers == {r.handler for r in enabled}


def test_by_default_the_partner_bus_is_imported_by_name(template: Template) -> None:
    assert resources(template, "AWS::Events::EventBus") == {}


def test_a_created_partner_bus_is_associated_with_the_source_and_retained(synth: Synth) -> None:
    source = f"{PARTNER_SOURCE_PREFIX}/acme-0123/auth0.events"
    template = synth(createEventBus="true", auth0EventSourceName=source)

    bus_id, bus = only(template, "AWS::Events::EventBus")

    assert bus["Properties"]["Name"] == source
    assert bus["Properties"]["EventSourceName"] == source
    # Retained, except when the stack's creation rolls back: the retry creates it again.
    assert bus["DeletionPolicy"] == "RetainExceptOnCreate"
    assert bus["UpdateReplacePolicy"] == "Retain"
    for rule in resources(template, "AWS::Events::Rule").values():
        assert logical_id(rule["Properties"]["EventBusName"]) == bus_id


def test_organizations_are_on_by_default_and_the_context_key_turns_them_off(
    template: Template, synth: Synth
) -> None:
    def handlers(t: Template) -> set[str]:
        return {f["Properties"]["Handler"] for f in resources(t, "AWS::Lambda::Function").values()}

    org_handlers = {r.handler for r in ORG_ROUTES}
    assert org_handlers <= handlers(template)
    for route in ORG_ROUTES:  # its own rule, targeting its own function
        assert _rule_for(template, route.event_type)["EventPattern"] == route.event_pattern()
    off = synth(organizations="false", redrive="false")
    assert not org_handlers & handlers(off)
    assert len(resources(off, "AWS::Events::Rule")) == len(USER_ROUTES)
    # ... and the user functions know it: no look for memberships waiting for a contact.
    for function in resources(off, "AWS::Lambda::Function").values():
        assert function["Properties"]["Environment"]["Variables"][Env.ORGANIZATIONS] == "false"
    for function in resources(template, "AWS::Lambda::Function").values():
        if function["Properties"]["Handler"] in org_handlers:
            assert function["Properties"]["Environment"]["Variables"][Env.ORGANIZATIONS] == "true"
