"""The handlers: runtime, handler paths, environment vs the Settings model, logs, limits."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from aws_cdk.assertions import Template

from auth0_sync.names import METRICS_NAMESPACE, SERVICE_NAME, Env
from auth0_sync.routing import ROUTES
from auth0_sync.settings import DEFAULT_FIELD_MAPPING, Settings
from infra.bundling import ASSET_ROOT
from infra.config import StackConfig
from tests.infra.cfn import function_for, logical_id, only, resources
from tests.infra.conftest import Synth

pytestmark = pytest.mark.infra

# The Powertools variables the stack sets besides the Settings model's own.
POWERTOOLS_ENV = {Env.POWERTOOLS_SERVICE_NAME, Env.POWERTOOLS_METRICS_NAMESPACE}


def _settings_aliases() -> set[str]:
    return {str(field.validation_alias) for field in Settings.model_fields.values()}


def _resolved(environment: dict[str, Any]) -> dict[str, str]:
    """Environment values with CloudFormation references replaced by a placeholder string."""
    return {k: v if isinstance(v, str) else f"resolved-{k.lower()}" for k, v in environment.items()}


def test_one_function_per_route_on_arm64_and_the_python_the_tests_run(
    template: Template,
) -> None:
    # One per route, and the redrive (infra/redrive.py, tested in test_redrive.py).
    assert len(resources(template, "AWS::Lambda::Function")) == len(ROUTES) + 1
    for route in ROUTES:
        _, function = function_for(template, route)
        props = function["Properties"]

        assert props["Architectures"] == ["arm64"]
        # test_asset.py runs a handler from the bundled asset under this same interpreter.
        assert props["Runtime"] == f"python{sys.version_info.major}.{sys.version_info.minor}"


def test_handler_paths_exist_in_the_asset_source(template: Template) -> None:
    for route in ROUTES:
        _, function = function_for(template, route)

        module, _, name = function["Properties"]["Handler"].rpartition(".")
        assert name == "handler"
        assert (ASSET_ROOT / (module.replace(".", "/") + ".py")).is_file(), route.handler_file


def test_each_function_has_its_own_role(template: Template) -> None:
    roles = {logical_id(function_for(template, route)[1]["Properties"]["Role"]) for route in ROUTES}

    assert len(roles) == len(ROUTES)


def test_environment_names_are_exactly_the_settings_aliases_and_powertools(
    template: Template,
) -> None:
    for route in ROUTES:
        _, function = function_for(template, route)
        names = set(function["Properties"]["Environment"]["Variables"])

        assert names - POWERTOOLS_ENV <= _settings_aliases()
        assert names == {
            Env.CRM_TYPE,
            Env.CRM_BASE_URL,
            Env.CRM_TOKEN_SECRET_ARN,
            Env.FIELD_MAPPING,
            Env.CONTACT_ID_PATH,
            Env.MISSING_CONTACT_POLICY,
            Env.DELETE_POLICY,
            Env.SYNC_MODE,
            Env.DEACTIVATION_WINDOW_LIMIT,
            Env.ABSENT_FIELDS,
            Env.NO_EMAIL_POLICY,
            Env.CLAIM_UNVERIFIED_EMAIL,
            Env.BLOCKED_POLICY,
            Env.ORGANIZATIONS,
            Env.SALESFORCE_MULTIPLE_ACCOUNTS,
            Env.STATE_TABLE,
            Env.DLQ_URL,
            *POWERTOOLS_ENV,
        }
        # No plain token in AWS: the secret ARN only.
        assert Env.CRM_API_TOKEN not in names


def test_the_environment_validates_with_the_handlers_settings_model(template: Template) -> None:
    for route in ROUTES:
        _, function = function_for(template, route)
        environment = function["Properties"]["Environment"]["Variables"]

        settings = Settings.from_env(_resolved(environment))

        assert settings.crm_base_url == StackConfig().crm_base_url
        assert settings.field_mapping == DEFAULT_FIELD_MAPPING
        assert environment[Env.POWERTOOLS_SERVICE_NAME] == SERVICE_NAME
        assert environment[Env.POWERTOOLS_METRICS_NAMESPACE] == METRICS_NAMESPACE


def test_environment_values_come_from_resource_attributes(template: Template) -> None:
    queue_id, _ = only(template, "AWS::SQS::Queue")
    secret_id, _ = only(template, "AWS::SecretsManager::Secret")
    state_id, _ = only(template, "AWS::DynamoDB::Table")  # the one table: no idempotency table
    for route in ROUTES:
        _, function = function_for(template, route)
        environment = function["Properties"]["Environment"]["Variables"]

        assert logical_id(environment[Env.STATE_TABLE]) == state_id
        assert logical_id(environment[Env.DLQ_URL]) == queue_id
        assert logical_id(environment[Env.CRM_TOKEN_SECRET_ARN]) == secret_id


def test_context_flows_into_the_environment(synth: Synth) -> None:
    template = synth(
        crmBaseUrl="https://crm.acme.test/",
        fieldMapping='{"email": "email", "user_metadata.full_name": "name"}',
        contactIdPath="app_metadata.crm.id",
        missingContactPolicy="skip",
        deletePolicy="anonymize",
        absentFields="clear",
        claimUnverifiedEmail="true",
        blockedPolicy="ignore",
        syncMode="update_only",
        deactivationWindowLimit="25",
    )
    _, function = function_for(template, ROUTES[0])

    settings = Settings.from_env(_resolved(function["Properties"]["Environment"]["Variables"]))

    assert settings.crm_base_url == "https://crm.acme.test"
    assert settings.field_mapping == {"email": "email", "user_metadata.full_name": "name"}
    assert settings.contact_id_path == "app_metadata.crm.id"
    assert settings.missing_contact_policy == "skip"
    assert settings.delete_policy == "anonymize"
    assert settings.absent_fields == "clear"
    assert settings.claim_unverified_email is True
    assert settings.blocked_policy == "ignore"
    assert settings.no_email_policy == "skip"
    assert settings.sync_mode == "update_only"
    assert settings.deactivation_window_limit == 25


def test_json_logs_to_an_explicit_log_group_with_retention_and_active_tracing(
    template: Template,
) -> None:
    log_groups = resources(template, "AWS::Logs::LogGroup")
    used = set()
    for route in ROUTES:
        _, function = function_for(template, route)
        props = function["Properties"]
        group_id = logical_id(props["LoggingConfig"]["LogGroup"])

        assert props["LoggingConfig"]["LogFormat"] == "JSON"
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert log_groups[group_id]["Properties"]["RetentionInDays"] == 30
        used.add(group_id)
    assert len(used) == len(ROUTES)


def test_concurrency_cap_and_retention_come_from_context(synth: Synth) -> None:
    template = synth(reservedConcurrency="2", logRetentionDays="14", maxEventAgeSeconds="3600")

    for route in ROUTES:
        function_id, function = function_for(template, route)
        group_id = logical_id(function["Properties"]["LoggingConfig"]["LogGroup"])
        (invoke_config,) = [
            c["Properties"]
            for c in resources(template, "AWS::Lambda::EventInvokeConfig").values()
            if logical_id(c["Properties"]["FunctionName"]) == function_id
        ]

        assert function["Properties"]["ReservedConcurrentExecutions"] == 2
        assert resources(template, "AWS::Logs::LogGroup")[group_id]["Properties"] == {
            "RetentionInDays": 14
        }
        assert invoke_config["MaximumEventAgeInSeconds"] == 3600


def test_the_replay_output_names_each_function_by_event_type(template: Template) -> None:
    parts = template.to_json()["Outputs"]["ReplayFunctions"]["Value"]["Fn::Join"][1]

    expected: list[Any] = []
    for route in ROUTES:
        function_id, _ = function_for(template, route)
        expected += [f",{route.event_type}=", {"Ref": function_id}]
    expected[0] = expected[0].lstrip(",")
    assert parts == expected


def test_default_concurrency_cap(template: Template) -> None:
    for route in ROUTES:
        _, function = function_for(template, route)

        assert function["Properties"]["ReservedConcurrentExecutions"] == 5


@pytest.mark.parametrize("value", ["none", "None", " NONE "])
def test_reserved_concurrency_none_reserves_nothing(synth: Synth, value: str) -> None:
    """New accounts may have no concurrency to reserve: `none` leaves the property out."""
    template = synth(reservedConcurrency=value)

    for route in ROUTES:
        _, function = function_for(template, route)

        assert "ReservedConcurrentExecutions" not in function["Properties"]
