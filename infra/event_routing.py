"""The Auth0 partner event bus and one rule per event type, built from the routing definition."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from auth0_sync.routing import Route
from infra.config import RULE_TARGET_MAX_EVENT_AGE_HOURS, RULE_TARGET_RETRY_ATTEMPTS


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
    ) -> None:
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
            # the bus outlives the stack.
            bus.apply_removal_policy(RemovalPolicy.RETAIN)
            self.bus = bus
        else:
            self.bus = events.EventBus.from_event_bus_name(self, "PartnerBus", event_source_name)

        self.rules: dict[Route, events.Rule] = {}
        for route, function in functions.items():
            pattern = route.event_pattern()
            rule = events.Rule(
                self,
                f"{route.construct_id}Rule",
                event_bus=self.bus,
                description=f"Auth0 {route.event_type} events to their handler",
                # Replaced below by the whole pattern; the typed EventPattern cannot carry a
                # content filter such as {"prefix": ...} given as plain JSON.
                event_pattern=events.EventPattern(detail=pattern["detail"]),
            )
            cfn_rule = rule.node.default_child
            assert isinstance(cfn_rule, events.CfnRule)
            cfn_rule.add_property_override("EventPattern", pattern)
            rule.add_target(
                targets.LambdaFunction(
                    function,
                    dead_letter_queue=dead_letter_queue,
                    retry_attempts=RULE_TARGET_RETRY_ATTEMPTS,
                    max_event_age=Duration.hours(RULE_TARGET_MAX_EVENT_AGE_HOURS),
                )
            )
            self.rules[route] = rule

    @property
    def event_bus_name(self) -> str:
        return self.bus.event_bus_name
