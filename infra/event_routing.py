"""The Auth0 partner event bus and one rule per event type, built from the routing definition;
each rule targets its type's function (direct topology) or its queue (buffered)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from aws_cdk import Duration, RemovalPolicy, Stack, Token
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from auth0_sync.routing import Route
from infra.config import RULE_TARGET_MAX_EVENT_AGE_HOURS, RULE_TARGET_RETRY_ATTEMPTS

# EventBridge rule names: at most 64 of [.-_A-Za-z0-9].
RULE_NAME_MAX = 64


def rule_name(stack_name: str, route: Route, event_source_name: str) -> str:
    """The rule's name, fixed at synth: CloudWatch publishes the rule metrics under it.

    A short digest of the event source keeps the name unique per bus, so a new partner
    source (which replaces the rules) gets new names: CloudFormation refuses to replace a
    resource whose custom name stays the same.
    """
    digest = hashlib.sha256(event_source_name.encode()).hexdigest()[:8]
    suffix = f"-{route.construct_id}-{digest}"
    return stack_name[: RULE_NAME_MAX - len(suffix)] + suffix


class EventRouting(Construct):
    """Partner bus (created and associated, or imported by name) and the per-type rules."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        event_source_name: str,
        create_event_bus: bool,
        functions: Mapping[Route, lambda_.IFunction],
        dead_letter_queue: sqs.IQueue,
        queues: Mapping[Route, sqs.IQueue] | None = None,
    ) -> None:
        """`queues`: the buffered topology's queue per route, which its rule targets
        instead of the function (infra/buffers.py reads it into the function)."""
        super().__init__(scope, construct_id)
        self.bus: events.IEventBus
        if create_event_bus:
            bus = events.EventBus(
                self,
                "PartnerBus",
                # Names the bus after the partner source and associates the two: the source
                # leaves Pending and events flow.
                event_source_name=event_source_name,
                description="Auth0 Event Streams partner bus (auth0-sync)",
            )
            # Deleting the bus sends the partner source back to Pending, and it expires:
            # the bus outlives the stack. Except when the stack's creation rolls back
            # (DeletionPolicy RetainExceptOnCreate): a bus left behind then would make the
            # retried first deploy fail on a bus that already exists.
            bus.apply_removal_policy(RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE)
            self.bus = bus
        else:
            self.bus = events.EventBus.from_event_bus_name(self, "PartnerBus", event_source_name)

        stack_name = Stack.of(self).stack_name
        assert not Token.is_unresolved(stack_name), "the stack needs a literal name"
        self.rules: dict[Route, events.Rule] = {}
        # The Ref of a rule on a custom bus is "bus|rule", not the name its metrics carry.
        self.rule_names: dict[Route, str] = {}
        for route, function in functions.items():
            pattern = route.event_pattern()
            name = rule_name(stack_name, route, event_source_name)
            rule = events.Rule(
                self,
                f"{route.construct_id}Rule",
                rule_name=name,
                event_bus=self.bus,
                description=f"Auth0 {route.event_type} events to their handler",
                # Replaced below by the whole pattern; the typed EventPattern cannot carry a
                # content filter such as {"prefix": ...} given as plain JSON.
                event_pattern=events.EventPattern(detail=pattern["detail"]),
            )
            cfn_rule = rule.node.default_child
            assert isinstance(cfn_rule, events.CfnRule)
            cfn_rule.add_property_override("EventPattern", pattern)
            target: events.IRuleTarget
            if queues is not None:
                # The event, unchanged, is the message body.
                target = targets.SqsQueue(
                    queues[route],
                    dead_letter_queue=dead_letter_queue,
                    retry_attempts=RULE_TARGET_RETRY_ATTEMPTS,
                    max_event_age=Duration.hours(RULE_TARGET_MAX_EVENT_AGE_HOURS),
                )
            else:
                target = targets.LambdaFunction(
                    function,
                    dead_letter_queue=dead_letter_queue,
                    retry_attempts=RULE_TARGET_RETRY_ATTEMPTS,
                    max_event_age=Duration.hours(RULE_TARGET_MAX_EVENT_AGE_HOURS),
                )
            rule.add_target(target)
            self.rules[route] = rule
            self.rule_names[route] = name

    @property
    def event_bus_name(self) -> str:
        return self.bus.event_bus_name
