"""cdk-nag 3 (AwsSolutions + Serverless) at synth: no unacknowledged finding, reasons given."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack, Validations
from aws_cdk import aws_sqs as sqs

from auth0_sync.routing import ROUTES
from infra.bundling import LATEST_RUNTIME_RULES
from infra.stack import build_app
from tests.infra.conftest import NO_BUNDLING

pytestmark = pytest.mark.infra

STREAM_HEALTH = {
    "auth0MgmtSecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:mgmt-AbCdEf",
    "auth0StreamId": "est_7W8uNfgHNxDzCgXVrt7JfH",
}
# Every context that changes which resources exist.
CONTEXTS: list[dict[str, Any]] = [
    {},
    {"createEventBus": "true", "alarmEmail": "oncall@example.com"},
    {
        "crmTokenSecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:crm-AbCdEf",
        "eventTypes": "user.deleted",
        "reservedConcurrency": "none",
        **STREAM_HEALTH,
    },
]


def _app(stack: Stack) -> App:
    app = stack.node.root
    assert isinstance(app, App)
    return app


@pytest.mark.parametrize("context", CONTEXTS, ids=["defaults", "created-bus", "imports"])
def test_synth_passes_cdk_nag(context: dict[str, Any], tmp_path: Path) -> None:
    stack = build_app({**NO_BUNDLING, **context}, outdir=str(tmp_path))

    assembly = _app(stack).synth()

    assert Path(assembly.directory, f"{stack.stack_name}.template.json").is_file()


def test_an_unacknowledged_finding_fails_synth(tmp_path: Path) -> None:
    """The control: the same synth does raise when a finding is not acknowledged."""
    stack = build_app(NO_BUNDLING, outdir=str(tmp_path))
    sqs.Queue(stack, "PlainQueue")

    with pytest.raises(RuntimeError, match="ValidationFailed"):
        _app(stack).synth()

    report = json.loads((tmp_path / "validation-report.json").read_text())
    violations = {
        (violation["ruleName"], resource["constructPath"])
        for plugin in report["pluginReports"]
        for violation in plugin["violations"]
        for resource in violation["violatingConstructs"]
    }
    assert violations == {
        ("AwsSolutions-SQS3", "Auth0Sync/PlainQueue/Resource"),
        ("AwsSolutions-SQS4", "Auth0Sync/PlainQueue/Resource"),
        ("Serverless-SQSRedrivePolicy", "Auth0Sync/PlainQueue/Resource"),
    }


def _acknowledgements(stack: Stack) -> dict[tuple[str, str], str]:
    """(construct path below the stack, rule id) -> reason, for every acknowledgement."""
    found: dict[tuple[str, str], str] = {}
    for construct in stack.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                path = construct.node.path.removeprefix(f"{stack.node.id}/")
                found.update({(path, rule): reason for rule, reason in entry.data.items()})
    return found


def test_only_the_reviewed_acknowledgements_exist_each_with_a_specific_reason() -> None:
    stack = build_app(
        {**NO_BUNDLING, **CONTEXTS[1], **STREAM_HEALTH, "alarmEmail": "oncall@example.com"}
    )

    acknowledgements = _acknowledgements(stack)

    # One handler per routed type, user and organization types alike (organizations on).
    handlers = [route.construct_id for route in ROUTES]
    assert len(handlers) == 10
    assert set(acknowledgements) == {
        ("DeadLetter/Queue", "AwsSolutions::AwsSolutions-SQS3"),
        ("DeadLetter/Queue", "Serverless::Serverless-SQSRedrivePolicy"),
        ("CrmToken/Secret", "AwsSolutions::AwsSolutions-SMG4"),
        *((f"Handlers/{h}Role", "AwsSolutions::AwsSolutions-IAM5[Resource::*]") for h in handlers),
        *((f"Handlers/{h}", "Serverless::Serverless-LambdaDLQ") for h in handlers),
        *((f"Handlers/{h}", rule) for h in handlers for rule in LATEST_RUNTIME_RULES),
        ("Observability/AlarmTopic/oncall@example.com", "Serverless::Serverless-SNSRedrivePolicy"),
        ("StreamHealth/Role", "AwsSolutions::AwsSolutions-IAM5[Resource::*]"),
        ("StreamHealth/Function", "Serverless::Serverless-LambdaDLQ"),
        *(("StreamHealth/Function", rule) for rule in LATEST_RUNTIME_RULES),
        ("StreamHealth/Function", "Serverless::Serverless-LambdaAsyncFailureDestination"),
        ("StreamHealth/Schedule", "Serverless::Serverless-EventBusDLQ"),
        ("Redrive/Role", "AwsSolutions::AwsSolutions-IAM5[Resource::*]"),
        ("Redrive/Function", "Serverless::Serverless-LambdaDLQ"),
        ("Redrive/Function", "Serverless::Serverless-LambdaAsyncFailureDestination"),
        *(("Redrive/Function", rule) for rule in LATEST_RUNTIME_RULES),
    }
    for (path, rule), reason in acknowledgements.items():
        assert len(reason) >= 80, (path, rule, reason)
