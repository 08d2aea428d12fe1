"""cfn-lint on the synthesized templates: what CloudFormation's own schemas and rules reject."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint

from tests.infra.conftest import Synth

pytestmark = pytest.mark.infra

REGIONS = ["eu-west-1", "us-east-1"]
# The full context: a created and associated bus, the stream health check, alarm email.
FULL: dict[str, Any] = {
    "auth0EventSourceName": "aws.partner/auth0.com/acme-5c8d1e0b/auth0.events",
    "createEventBus": "true",
    "alarmEmail": "oncall@example.com",
    "auth0MgmtSecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:mgmt-AbCdEf",
    "auth0StreamId": "est_7W8uNfgHNxDzCgXVrt7JfH",
}
# CDK writes a DependsOn on the role that the Role's GetAtt already implies: harmless.
ACCEPTED_WARNINGS = {"W3005"}


def _synthesized(synth: Synth, context: dict[str, Any]) -> str:
    """The template `make synth` writes for `context` (cdk-nag included), from the session's
    synths (the other infra tests build the same contexts)."""
    return json.dumps(synth(**context).to_json())


def _findings(template: str) -> list[tuple[str, str]]:
    return [(m.rule.id, m.message) for m in lint(template, config=ManualArgs(regions=REGIONS))]


@pytest.mark.parametrize("context", [{}, FULL], ids=["defaults", "full"])
def test_the_template_has_no_cfn_lint_error(context: dict[str, Any], synth: Synth) -> None:
    findings = _findings(_synthesized(synth, context))

    assert [f for f in findings if f[0].startswith("E")] == []
    assert {rule for rule, _ in findings} <= ACCEPTED_WARNINGS, findings


def test_cfn_lint_does_catch_an_error_in_our_template(synth: Synth) -> None:
    """The control: the same lint reports a runtime Lambda does not have."""
    template = json.loads(_synthesized(synth, {}))
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Lambda::Function":
            resource["Properties"]["Runtime"] = "python2.9"

    rules = {rule for rule, _ in _findings(json.dumps(template))}

    assert any(rule.startswith("E") for rule in rules), rules
