"""The one stack users deploy; it composes one construct per concern."""

from __future__ import annotations

from typing import Any

from aws_cdk import App, CfnOutput, Stack, Validations
from cdk_nag import AwsSolutionsChecks, ServerlessChecks
from constructs import Construct

from auth0_sync.buffering import Topology
from auth0_sync.names import STACK_OUTPUT_DLQ_URL, STACK_OUTPUT_REPLAY_FUNCTIONS
from auth0_sync.routing import ORG_ROUTES, USER_ROUTES
from infra.buffers import EventBuffers
from infra.config import StackConfig, check_deployable, read_config
from infra.dead_letter import DeadLetterQueue
from infra.event_routing import EventRouting
from infra.functions import SyncFunctions
from infra.observability import Observability
from infra.redrive import Redrive
from infra.secret import CrmTokenSecret
from infra.state import SyncStateTables
from infra.stream_health import StreamHealthCheck

STACK_NAME = "Auth0Sync"


class Auth0SyncStack(Stack):
    """Auth0 partner bus -> one rule and one handler per event type -> CRM; failures -> DLQ."""

    def __init__(self, scope: Construct, construct_id: str, config: StackConfig) -> None:
        super().__init__(
            scope,
            construct_id,
            description="auth0-sync: keeps a CRM in step with Auth0 identities (Event Streams)",
        )
        self.config = config
        routes = [route for route in USER_ROUTES if route.event_type in config.event_types]
        if config.organizations:  # one rule and function per organization type, as for users
            routes += ORG_ROUTES

        self.dead_letter = DeadLetterQueue(self, "DeadLetter")
        self.tables = SyncStateTables(
            self, "State", imported_state_table_name=config.state_table_name
        )
        self.crm_token = CrmTokenSecret(
            self,
            "CrmToken",
            imported_arn=config.crm_token_secret_arn,
            kms_key_arn=config.crm_token_secret_kms_key_arn,
        )
        self.handlers = SyncFunctions(
            self,
            "Handlers",
            config=config,
            routes=routes,
            tables=self.tables,
            dead_letter=self.dead_letter,
            crm_token=self.crm_token,
        )
        self.buffers: EventBuffers | None = None
        if config.topology == Topology.BUFFERED:
            self.buffers = EventBuffers(
                self,
                "Buffers",
                functions=self.handlers.functions,
                dead_letter=self.dead_letter,
                sizing=config.buffer_sizing,
                max_concurrency=config.buffer_concurrency,
            )
        self.routing = EventRouting(
            self,
            "Routing",
            event_source_name=config.event_source_name,
            create_event_bus=config.create_event_bus,
            functions=self.handlers.functions,
            dead_letter_queue=self.dead_letter.queue,
            queues=self.buffers.queues if self.buffers else None,
        )
        self.observability = Observability(
            self,
            "Observability",
            functions=self.handlers.functions,
            rule_names=self.routing.rule_names,
            event_bus_name=self.routing.event_bus_name,
            event_source_name=config.event_source_name,
            dead_letter_queue=self.dead_letter.queue,
            log_groups=self.handlers.log_groups,
            alarm_email=config.alarm_email,
            redrive=config.redrive,
            crm_secret_arn=self.crm_token.secret_arn,
        )
        if self.buffers is not None:
            self.observability.add_alarm_row(
                "Buffered queues", self.buffers.add_alarms(self.observability.topic)
            )
            self.observability.dashboard.add_widgets(*self.buffers.dashboard_row())
        if config.auth0_mgmt_secret_arn is not None and config.auth0_stream_id is not None:
            self.stream_health = StreamHealthCheck(
                self,
                "StreamHealth",
                code=self.handlers.code,
                mgmt_secret_arn=config.auth0_mgmt_secret_arn,
                stream_id=config.auth0_stream_id,
                event_source_name=config.event_source_name,
                alarm_topic=self.observability.topic,
                log_retention=config.log_retention,
            )
            self.observability.add_alarm_row("Auth0 event stream health", self.stream_health.alarms)
        if config.redrive:
            self.redrive = Redrive(
                self,
                "Redrive",
                code=self.handlers.code,
                dead_letter=self.dead_letter,
                functions=self.handlers.functions,
                crm_token=self.crm_token,
                destination_environment=self.handlers.destination_environment,
                interval_minutes=config.redrive_interval_minutes,
                max_age_days=config.redrive_max_age_days,
                alarm_topic=self.observability.topic,
                log_retention=config.log_retention,
                buffers=self.buffers.queues if self.buffers else None,
            )
            self.observability.dashboard.add_widgets(*self.redrive.dashboard_row())
        CfnOutput(self, "EventBusName", value=self.routing.event_bus_name)
        CfnOutput(self, STACK_OUTPUT_DLQ_URL, value=self.dead_letter.queue.queue_url)
        CfnOutput(self, "CrmTokenSecretArn", value=self.crm_token.secret_arn)
        CfnOutput(self, "SyncStateTableName", value=self.tables.state_table.table_name)
        CfnOutput(
            self,
            STACK_OUTPUT_REPLAY_FUNCTIONS,
            description="`auth0-sync replay --target lambda --functions <this>`",
            value=",".join(
                f"{route.event_type}={function.function_name}"
                for route, function in self.handlers.functions.items()
            ),
        )


def build_app(
    context: dict[str, Any] | None = None,
    *,
    nag: bool = True,
    outdir: str | None = None,
    deploying: bool = False,
) -> Auth0SyncStack:
    """The app `cdk` runs (app.py) and the tests build: the stack, with cdk-nag at synth.

    `deploying`: refuse what is sure to fail in CloudFormation (the placeholder source).
    """
    app = App(context=context, outdir=outdir)
    config = read_config(app)
    if deploying:
        check_deployable(config)
    stack = Auth0SyncStack(app, STACK_NAME, config)
    if nag:
        Validations.of(app).add_plugins(AwsSolutionsChecks(app), ServerlessChecks(app))
    return stack
