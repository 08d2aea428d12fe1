"""CDK context: safe defaults, both spellings of values, and clear errors for bad ones."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import App

from auth0_sync.names import CONTEXT_EVENT_SOURCE_NAME, EventType
from infra.config import (
    PLACEHOLDER_EVENT_SOURCE,
    ConfigurationError,
    StackConfig,
    context_keys,
    deploying,
    read_config,
)
from infra.stack import build_app
from tests.infra.conftest import CDK_JSON_CONTEXT, NO_BUNDLING

pytestmark = pytest.mark.infra

SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:auth0-mgmt-AbCdEf"


def _read(**context: Any) -> StackConfig:
    return read_config(App(context={**CDK_JSON_CONTEXT, **context}))


def _error(**context: Any) -> str:
    with pytest.raises(ConfigurationError) as info:
        _read(**context)
    return str(info.value)


def test_every_key_has_a_safe_default() -> None:
    config = _read()

    assert config.create_event_bus is False
    assert config.event_types == tuple(EventType)
    assert config.crm_token_secret_arn is None
    assert config.alarm_email is None
    assert config.auth0_stream_id is None
    assert CONTEXT_EVENT_SOURCE_NAME in context_keys()
    # cdk.json carries feature flags only: a fresh clone synthesizes with these defaults.
    assert not set(CDK_JSON_CONTEXT) & set(context_keys())


def test_command_line_strings_and_cdk_json_values_read_the_same() -> None:
    from_cli = _read(
        eventTypes="user.created, user.deleted",
        createEventBus="true",
        reservedConcurrency="3",
        fieldMapping='{"email": "email"}',
    )
    from_json = _read(
        eventTypes=["user.created", "user.deleted"],
        createEventBus=True,
        reservedConcurrency=3,
        fieldMapping={"email": "email"},
    )

    assert from_cli == from_json
    assert from_cli.event_types == (EventType.USER_CREATED, EventType.USER_DELETED)


def test_a_mapping_the_handlers_would_reject_fails_synth_naming_the_key() -> None:
    message = _error(fieldMapping='{"email": "favourite_colour"}')

    assert "context 'fieldMapping'" in message
    assert "['favourite_colour'] outside the contract" in message


def test_a_mapping_that_is_not_json_names_the_position() -> None:
    message = _error(fieldMapping='{"email": ')

    assert "context 'fieldMapping'" in message
    assert "not valid JSON" in message


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        ({"eventTypes": "user.created,user.logged_in"}, "context 'eventTypes.1'"),
        ({"eventTypes": "user.created,user.created"}, "lists an event type twice"),
        ({"crmBaseUrl": "http://crm.example.com"}, "must be an https:// URL"),
        ({CONTEXT_EVENT_SOURCE_NAME: "auth0.events"}, "starting with 'aws.partner/auth0.com/'"),
        ({"crmTokenSecretArn": "arn:aws:secretsmanager:eu-west-1:1:secret:x"}, "complete"),
        ({"reservedConcurrency": "0"}, "context 'reservedConcurrency'"),
        ({"reservedConcurrency": "1001"}, "from 1 to 1000, or 'none' for no reservation"),
        ({"reservedConcurrency": "off"}, "or 'none' for no reservation (got 'off')"),
        ({"reservedConcurrency": 2.5}, "context 'reservedConcurrency'"),
        ({"reservedConcurrency": True}, "context 'reservedConcurrency'"),
        ({"logRetentionDays": "10"}, "one of CloudWatch Logs' periods"),
        ({"maxEventAgeSeconds": "30"}, "context 'maxEventAgeSeconds'"),
        ({"missingContactPolicy": "ignore"}, "context 'missingContactPolicy'"),
        ({"auth0StreamId": "stream-1"}, "est_ + 22"),
        ({"stateTableName": "a/b"}, "context 'stateTableName': must be a DynamoDB table name"),
    ],
)
def test_bad_values_fail_with_the_key_and_the_reason(
    context: dict[str, Any], expected: str
) -> None:
    assert expected in _error(**context)


def test_stream_health_needs_both_of_its_keys() -> None:
    message = _error(auth0MgmtSecretArn=SECRET_ARN)

    assert "'auth0MgmtSecretArn' and 'auth0StreamId'" in message


def test_reserved_concurrency_is_a_number_or_none() -> None:
    assert _read().reserved_concurrency == 5
    assert _read(reservedConcurrency="12").reserved_concurrency == 12
    assert _read(reservedConcurrency=12).reserved_concurrency == 12
    assert _read(reservedConcurrency="none").reserved_concurrency is None


# -- misspelled keys: an error naming ours, never a silently deployed default -------------


@pytest.mark.parametrize(
    ("typo", "ours"),
    [
        ("crmBaseUrll", "crmBaseUrl"),
        ("crmbaseurl", "crmBaseUrl"),
        ("reservedConcurency", "reservedConcurrency"),
        ("auth0EventSource", "auth0EventSourceName"),
        ("alarmEmails", "alarmEmail"),
    ],
)
def test_a_misspelled_key_is_an_error_naming_the_nearest_valid_one(typo: str, ours: str) -> None:
    message = _error(**{typo: "https://crm.acme.test"})

    assert message == f"invalid CDK context: unknown key '{typo}': did you mean '{ours}'?"


def test_keys_that_are_not_like_ours_are_left_to_their_owners() -> None:
    # CDK's feature flags (cdk.json), its CLI's own keys, and another tool's.
    config = _read(
        **{
            "aws:cdk:enable-path-metadata": True,
            "acknowledged-issue-numbers": [1234],
            "availability-zones:account=123456789012:region=eu-west-1": ["eu-west-1a"],
            "myTeamCostCentre": "42",
        }
    )

    assert config == _read()


# -- deploying the placeholder source: refused before CloudFormation starts ---------------


def test_deploying_the_placeholder_source_is_refused_with_what_to_set() -> None:
    with pytest.raises(ConfigurationError) as info:
        build_app(NO_BUNDLING, deploying=True)

    message = str(info.value)
    assert message.startswith(
        "not deploying: context 'auth0EventSourceName' is still the placeholder "
        f"{PLACEHOLDER_EVENT_SOURCE}; set it to your Auth0 partner event source "
        "(`aws events list-event-sources --name-prefix aws.partner/auth0.com`)"
    )
    assert "\n" not in message
    # A real source (and CRM) deploys; the placeholder still synthesizes when not deploying.
    source = "aws.partner/auth0.com/acme-5c8d1e0b/auth0.events"
    real = {CONTEXT_EVENT_SOURCE_NAME: source, "crmBaseUrl": "https://crm.acme.test"}
    build_app({**NO_BUNDLING, **real}, deploying=True)
    build_app(NO_BUNDLING, deploying=False)


@pytest.mark.parametrize(
    ("crm_type", "says"),
    [
        ("rest", "the base URL of your CRM's contacts API"),
        ("salesforce", "your org's My Domain URL, https://<domain>.my.salesforce.com"),
    ],
)
def test_deploying_without_a_crm_base_url_is_refused_unless_the_vendor_has_one(
    crm_type: str, says: str
) -> None:
    source = "aws.partner/auth0.com/acme-5c8d1e0b/auth0.events"
    context = {**NO_BUNDLING, CONTEXT_EVENT_SOURCE_NAME: source, "crmType": crm_type}
    with pytest.raises(ConfigurationError) as info:
        build_app(context, deploying=True)

    message = str(info.value)
    assert message.startswith(
        "not deploying: context 'crmBaseUrl' is still the placeholder https://crm.example.com"
    )
    assert says in message
    # HubSpot's API has one address for every account: nothing to set.
    build_app({**context, "crmType": "hubspot"}, deploying=True)


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"AUTH0_SYNC_DEPLOY": "1"}, True),  # make deploy
        ({"AUTH0_SYNC_DEPLOY": "0", "CDK_DEFAULT_ACCOUNT": "123456789012"}, False),  # make synth
        ({"CDK_DEFAULT_ACCOUNT": "123456789012"}, True),  # a plain `cdk deploy` with credentials
        ({}, False),  # a plain offline `cdk synth`
    ],
)
def test_which_synths_count_as_a_deploy(environ: dict[str, str], expected: bool) -> None:
    assert deploying(environ) is expected


def test_archive_is_refused_unless_the_destination_is_hubspot() -> None:
    assert "'deletePolicy' archive needs 'crmType' hubspot" in _error(deletePolicy="archive")
    config = _read(deletePolicy="archive", crmType="hubspot")
    assert config.delete_policy == "archive"
