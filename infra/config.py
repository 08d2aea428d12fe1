"""The stack's configuration: CDK context keys, typed and validated, with safe defaults.

Every key has a default so a plain `cdk synth` works from a fresh clone. Values given with
`cdk deploy -c key=value` arrive as strings, values in `cdk.json` as JSON: both are accepted.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from typing import Annotated, Any

from aws_cdk.aws_logs import RetentionDays
from constructs import Construct
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from auth0_sync.buffering import MIN_MAPPING_CONCURRENCY, SIZING, BufferSizing, Topology
from auth0_sync.destinations import mapping_problem, with_defaults
from auth0_sync.mapping import AbsentPolicy
from auth0_sync.names import (
    CONTEXT_CREATE_EVENT_BUS,
    CONTEXT_CRM_TYPE,
    CONTEXT_EVENT_SOURCE_NAME,
    CONTEXT_ORGANIZATIONS,
    CONTEXT_REDRIVE,
    CONTEXT_REDRIVE_INTERVAL_MINUTES,
    CONTEXT_REDRIVE_MAX_AGE_DAYS,
    CONTEXT_TOPOLOGY,
    PARTNER_SOURCE_PREFIX,
    REDRIVE_INTERVAL_MINUTES,
    REDRIVE_MAX_AGE_DAYS,
    CrmType,
    Env,
    EventType,
)
from auth0_sync.policies import BlockedPolicy, NoEmailPolicy
from auth0_sync.settings import (
    DEFAULT_FIELD_MAPPING,
    DeletePolicy,
    MissingContactPolicy,
    Settings,
    SyncMode,
)
from infra.dead_letter import DLQ_RETENTION_DAYS

# Rule targets: EventBridge retries a failed delivery (throttling, a missing permission)
# for up to a day before it dead-letters the event. These are EventBridge's own maxima,
# written down so the template says it.
RULE_TARGET_RETRY_ATTEMPTS = 185
RULE_TARGET_MAX_EVENT_AGE_HOURS = 24

# Handlers: 256 MB gives the arm64 CPU share that keeps cold starts short. The timeout
# (FUNCTION_TIMEOUT_SECONDS) is shared with the local runner, in auth0_sync.names.
FUNCTION_MEMORY_MB = 256

# Secrets Manager ARNs end in "-" plus six random characters; IAM needs the whole ARN.
_SECRET_ARN = re.compile(
    r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+-[A-Za-z0-9]{6}$"
)
_KMS_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[0-9a-f-]{36}$")
_STREAM_ID = re.compile(r"^est_[A-Za-z0-9]{22}$")
# DynamoDB table names (CreateTable API reference).
_TABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
# CloudWatch Logs accepts only these retention periods (days).
_RETENTION: dict[int, RetentionDays] = {
    1: RetentionDays.ONE_DAY,
    3: RetentionDays.THREE_DAYS,
    5: RetentionDays.FIVE_DAYS,
    7: RetentionDays.ONE_WEEK,
    14: RetentionDays.TWO_WEEKS,
    30: RetentionDays.ONE_MONTH,
    60: RetentionDays.TWO_MONTHS,
    90: RetentionDays.THREE_MONTHS,
    120: RetentionDays.FOUR_MONTHS,
    150: RetentionDays.FIVE_MONTHS,
    180: RetentionDays.SIX_MONTHS,
    365: RetentionDays.ONE_YEAR,
    400: RetentionDays.THIRTEEN_MONTHS,
    545: RetentionDays.EIGHTEEN_MONTHS,
    731: RetentionDays.TWO_YEARS,
    1096: RetentionDays.THREE_YEARS,
    1827: RetentionDays.FIVE_YEARS,
    2192: RetentionDays.SIX_YEARS,
    2557: RetentionDays.SEVEN_YEARS,
    2922: RetentionDays.EIGHT_YEARS,
    3288: RetentionDays.NINE_YEARS,
    3653: RetentionDays.TEN_YEARS,
}


def _json_or_raw(value: Any) -> Any:
    """Context from `-c key=value` is a string; accept JSON in it (lists, objects)."""
    if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON ({exc.msg} at char {exc.pos})") from exc
    return value


def _list_of_event_types(value: Any) -> Any:
    value = _json_or_raw(value)
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _empty_is_none(value: Any) -> Any:
    return None if value in ("", None) else value


# `none` turns the reservation off (new accounts may have no concurrency to reserve).
NO_RESERVATION = "none"
MAX_RESERVED_CONCURRENCY = 1000


def _reserved_concurrency(value: Any) -> int | None:
    if isinstance(value, str) and value.strip().lower() == NO_RESERVATION:
        return None
    number: int | None = None
    if isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    if number is None or not 1 <= number <= MAX_RESERVED_CONCURRENCY:
        raise ValueError(
            f"must be a whole number from 1 to {MAX_RESERVED_CONCURRENCY}, or "
            f"'{NO_RESERVATION}' for no reservation (got {value!r})"
        )
    return number


OptionalStr = Annotated[str | None, BeforeValidator(_empty_is_none)]


# The default partner event source: lets a fresh clone synthesize, never deploys (the rules
# would fail to create on a bus that does not exist).
PLACEHOLDER_EVENT_SOURCE = f"{PARTNER_SOURCE_PREFIX}/example/auth0.events"
# The CRM base URL of a synth without `crmBaseUrl` (HubSpot has a real default; the REST
# contract's server and a Salesforce org's My Domain are the user's own).
PLACEHOLDER_CRM_BASE_URL = "https://crm.example.com"
WHERE_THE_CRM_IS = {
    CrmType.REST: "the base URL of your CRM's contacts API (the contract's server)",
    CrmType.SALESFORCE: "your org's My Domain URL, https://<domain>.my.salesforce.com",
}


class StackConfig(BaseModel):
    """Typed view of the CDK context. Field aliases are the context keys."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    event_source_name: str = Field(
        default=PLACEHOLDER_EVENT_SOURCE, alias=CONTEXT_EVENT_SOURCE_NAME
    )
    create_event_bus: bool = Field(default=False, alias=CONTEXT_CREATE_EVENT_BUS)
    event_types: Annotated[tuple[EventType, ...], BeforeValidator(_list_of_event_types)] = Field(
        default=tuple(EventType), alias="eventTypes", min_length=1
    )
    # Organization events -> CRM companies and memberships (issue 24); off for tenants
    # without Auth0 Organizations.
    organizations: bool = Field(default=True, alias=CONTEXT_ORGANIZATIONS)
    # Salesforce orgs with Contacts to Multiple Accounts: memberships with roles (README).
    salesforce_contacts_to_multiple_accounts: bool = Field(
        default=False, alias="salesforceContactsToMultipleAccounts"
    )
    crm_type: CrmType = Field(default=CrmType.REST, alias=CONTEXT_CRM_TYPE)
    crm_base_url: str = Field(default=PLACEHOLDER_CRM_BASE_URL, alias="crmBaseUrl")
    # The retained state table of an earlier deployment, reused instead of a new empty one.
    state_table_name: OptionalStr = Field(default=None, alias="stateTableName")
    crm_token_secret_arn: OptionalStr = Field(default=None, alias="crmTokenSecretArn")
    crm_token_secret_kms_key_arn: OptionalStr = Field(default=None, alias="crmTokenSecretKmsKeyArn")
    field_mapping: Annotated[dict[str, str], BeforeValidator(_json_or_raw)] = Field(
        default_factory=lambda: dict(DEFAULT_FIELD_MAPPING), alias="fieldMapping"
    )
    contact_id_path: str = Field(
        default=Settings.model_fields["contact_id_path"].default,
        alias="contactIdPath",
        min_length=1,
    )
    missing_contact_policy: MissingContactPolicy = Field(
        default=MissingContactPolicy.CREATE, alias="missingContactPolicy"
    )
    delete_policy: DeletePolicy = Field(default=DeletePolicy.DEACTIVATE, alias="deletePolicy")
    sync_mode: SyncMode = Field(default=SyncMode.UPSERT, alias="syncMode")
    # The live deactivation brake (auth0_sync.deactivation_window).
    deactivation_window_limit: int = Field(default=100, ge=0, alias="deactivationWindowLimit")
    absent_fields: AbsentPolicy = Field(default=AbsentPolicy.KEEP, alias="absentFields")
    no_email_policy: NoEmailPolicy = Field(default=NoEmailPolicy.SKIP, alias="noEmailPolicy")
    claim_unverified_email: bool = Field(default=False, alias="claimUnverifiedEmail")
    blocked_policy: BlockedPolicy = Field(default=BlockedPolicy.DEACTIVATE, alias="blockedPolicy")
    # Per function: the CRM sees at most 3 x this many concurrent calls. None: no
    # reservation, the account's unreserved pool bounds the functions (see the README).
    reserved_concurrency: Annotated[int | None, BeforeValidator(_reserved_concurrency)] = Field(
        default=5, alias="reservedConcurrency"
    )
    # direct: the rule invokes each function; buffered: through a queue per type, read in
    # batches (infra/buffers.py, auth0_sync.buffering).
    topology: Topology = Field(default=Topology.DIRECT, alias=CONTEXT_TOPOLOGY)
    log_retention_days: int = Field(default=30, alias="logRetentionDays")
    max_event_age_seconds: int = Field(
        default=6 * 3600, ge=60, le=6 * 3600, alias="maxEventAgeSeconds"
    )
    alarm_email: OptionalStr = Field(default=None, alias="alarmEmail")
    auth0_mgmt_secret_arn: OptionalStr = Field(default=None, alias="auth0MgmtSecretArn")
    auth0_stream_id: OptionalStr = Field(default=None, alias="auth0StreamId")
    # The scheduled redrive of transient failures (infra/redrive.py).
    redrive: bool = Field(default=True, alias=CONTEXT_REDRIVE)
    redrive_interval_minutes: int = Field(
        default=REDRIVE_INTERVAL_MINUTES, ge=1, le=1440, alias=CONTEXT_REDRIVE_INTERVAL_MINUTES
    )
    redrive_max_age_days: int = Field(
        default=REDRIVE_MAX_AGE_DAYS,
        ge=1,
        le=DLQ_RETENTION_DAYS,
        alias=CONTEXT_REDRIVE_MAX_AGE_DAYS,
    )

    @model_validator(mode="before")
    @classmethod
    def _destination_defaults(cls, values: Any) -> Any:
        return with_defaults(values, CONTEXT_CRM_TYPE, "crmBaseUrl", "fieldMapping")

    @model_validator(mode="after")
    def _mapping_fits_the_destination(self) -> StackConfig:
        problem = mapping_problem(self.crm_type, self.field_mapping)
        if problem:
            raise ValueError(f"'fieldMapping' {problem} (with '{CONTEXT_CRM_TYPE}')")
        return self

    @model_validator(mode="after")
    def _archive_needs_hubspot(self) -> StackConfig:
        if self.delete_policy == DeletePolicy.ARCHIVE and self.crm_type != CrmType.HUBSPOT:
            raise ValueError(
                f"'deletePolicy' archive needs '{CONTEXT_CRM_TYPE}' hubspot (the only "
                f"destination that archives); with {self.crm_type} use deactivate or anonymize"
            )
        return self

    @model_validator(mode="after")
    def _buffer_fits_the_reservation(self) -> StackConfig:
        reserved = self.reserved_concurrency
        buffered = self.topology == Topology.BUFFERED
        if buffered and reserved is not None and reserved < MIN_MAPPING_CONCURRENCY:
            raise ValueError(
                f"'{CONTEXT_TOPOLOGY}' buffered reads each queue with at least "
                f"{MIN_MAPPING_CONCURRENCY} batches in flight (Lambda's least maximum "
                f"concurrency): 'reservedConcurrency' must be {MIN_MAPPING_CONCURRENCY} "
                f"or more, or none (got {reserved})"
            )
        return self

    @property
    def buffer_sizing(self) -> BufferSizing:
        """The destination's batch size and batching window (buffered topology)."""
        return SIZING[self.crm_type]

    @property
    def buffer_concurrency(self) -> int:
        """Batches in flight per type: the destination's, within the reservation (Lambda
        throttles a mapping whose maximum concurrency exceeds the function's reservation)."""
        wanted = self.buffer_sizing.max_concurrency
        reserved = self.reserved_concurrency
        return wanted if reserved is None else min(wanted, reserved)

    @field_validator("event_source_name")
    @classmethod
    def _partner_source(cls, value: str) -> str:
        if not value.startswith(PARTNER_SOURCE_PREFIX + "/"):
            raise ValueError(
                f"must be the Auth0 partner event source name, starting with "
                f"'{PARTNER_SOURCE_PREFIX}/' (see `aws events list-event-sources`)"
            )
        return value

    @field_validator("event_types")
    @classmethod
    def _unique_types(cls, value: tuple[EventType, ...]) -> tuple[EventType, ...]:
        if len(set(value)) != len(value):
            raise ValueError("lists an event type twice")
        return value

    @field_validator("crm_base_url")
    @classmethod
    def _https(cls, value: str) -> str:
        if not value.startswith("https://"):
            raise ValueError("must be an https:// URL: the CRM token travels in its headers")
        return value.rstrip("/")

    @field_validator("field_mapping")
    @classmethod
    def _valid_mapping(cls, value: dict[str, str]) -> dict[str, str]:
        # The handlers' own validator, so a mapping the functions would reject at cold start
        # fails `cdk synth` instead, with the same message.
        return Settings._check_mapping(value)

    @field_validator("crm_token_secret_arn", "auth0_mgmt_secret_arn")
    @classmethod
    def _complete_secret_arn(cls, value: str | None) -> str | None:
        if value is not None and not _SECRET_ARN.match(value):
            raise ValueError(
                "must be the complete secret ARN, ending in the six-character suffix "
                "Secrets Manager adds (see `aws secretsmanager describe-secret`)"
            )
        return value

    @field_validator("crm_token_secret_kms_key_arn")
    @classmethod
    def _key_arn(cls, value: str | None) -> str | None:
        if value is not None and not _KMS_KEY_ARN.match(value):
            raise ValueError("must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)")
        return value

    @field_validator("state_table_name")
    @classmethod
    def _table_name(cls, value: str | None) -> str | None:
        if value is not None and not _TABLE_NAME.match(value):
            raise ValueError(
                "must be a DynamoDB table name (3 to 255 letters, digits, '_', '-', '.'): "
                "the SyncStateTableName output of the earlier deployment"
            )
        return value

    @field_validator("auth0_stream_id")
    @classmethod
    def _stream_id(cls, value: str | None) -> str | None:
        if value is not None and not _STREAM_ID.match(value):
            raise ValueError("must be an Auth0 event stream id (est_ + 22 letters or digits)")
        return value

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value not in _RETENTION:
            raise ValueError(f"must be one of CloudWatch Logs' periods: {sorted(_RETENTION)}")
        return value

    @property
    def log_retention(self) -> RetentionDays:
        """The retention of every log group the stack creates."""
        return _RETENTION[self.log_retention_days]


class ConfigurationError(ValueError):
    """Bad CDK context: the message names each key and what is wrong with it."""


def context_keys() -> tuple[str, ...]:
    """Every context key the stack reads."""
    return tuple(str(field.alias) for field in StackConfig.model_fields.values())


# An unknown key this close to one of ours is a typo, not some other tool's key.
_TYPO_CUTOFF = 0.8


def nearest_key(key: str) -> str | None:
    """Our context key that `key` looks like a misspelling of (same letters but case, or close)."""
    ours = context_keys()
    if key in ours:
        return None
    by_case = {k.lower(): k for k in ours}
    if key.lower() in by_case:
        return by_case[key.lower()]
    close = difflib.get_close_matches(key, ours, n=1, cutoff=_TYPO_CUTOFF)
    return close[0] if close else None


def _check_spelling(scope: Construct) -> None:
    """A misspelled key would be ignored and its default deployed: refuse it, naming ours."""
    typos = [
        f"unknown key '{key}': did you mean '{nearest}'?"
        for key in sorted(scope.node.get_all_context())
        if (nearest := nearest_key(key)) is not None
    ]
    if typos:
        raise ConfigurationError(f"invalid CDK context: {'; '.join(typos)}")


def read_config(scope: Construct) -> StackConfig:
    """Read and validate every context key; raise `ConfigurationError` naming the bad ones."""
    _check_spelling(scope)
    values = {key: scope.node.try_get_context(key) for key in context_keys()}
    try:
        config = StackConfig.model_validate({k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(
            f"context '{'.'.join(str(p) for p in err['loc'])}': "
            f"{err['msg'].removeprefix('Value error, ')}"
            for err in exc.errors()
        )
        raise ConfigurationError(f"invalid CDK context: {problems}") from exc
    if (config.auth0_mgmt_secret_arn is None) != (config.auth0_stream_id is None):
        raise ConfigurationError(
            "invalid CDK context: 'auth0MgmtSecretArn' and 'auth0StreamId' turn the stream "
            "health check on together; give both or neither"
        )
    return config


def deploying(environ: Mapping[str, str]) -> bool:
    """Whether this synth is for a deploy: `make deploy` says so (AUTH0_SYNC_DEPLOY=1) and
    `make synth` says not (0). Run by the CDK CLI without either, a synth that found AWS
    credentials (CDK_DEFAULT_ACCOUNT) may be a plain `cdk deploy`: treated as one."""
    flag = environ.get(Env.AUTH0_SYNC_DEPLOY)
    if flag is not None:
        return flag.strip() == "1"
    return bool(environ.get("CDK_DEFAULT_ACCOUNT"))


def check_deployable(config: StackConfig) -> None:
    """Refuse, before CloudFormation starts, what is sure to fail there."""
    if config.event_source_name == PLACEHOLDER_EVENT_SOURCE:
        raise ConfigurationError(
            f"not deploying: context '{CONTEXT_EVENT_SOURCE_NAME}' is still the placeholder "
            f"{PLACEHOLDER_EVENT_SOURCE}; set it to your Auth0 partner event source "
            f"(`aws events list-event-sources --name-prefix {PARTNER_SOURCE_PREFIX}`), e.g. "
            f'make deploy CDK_ARGS="-c {CONTEXT_EVENT_SOURCE_NAME}='
            f'{PARTNER_SOURCE_PREFIX}/<tenant>/auth0.events -c {CONTEXT_CREATE_EVENT_BUS}=true"'
            " (`make synth` builds the template with the placeholder, offline; to bootstrap "
            "the account, `make bootstrap`, or AUTH0_SYNC_DEPLOY=0 npx cdk bootstrap ...)"
        )
    if config.crm_base_url == PLACEHOLDER_CRM_BASE_URL:
        where = WHERE_THE_CRM_IS.get(config.crm_type, "your CRM's API base URL")
        raise ConfigurationError(
            f"not deploying: context 'crmBaseUrl' is still the placeholder "
            f"{PLACEHOLDER_CRM_BASE_URL}; set it to {where}, e.g. "
            f'make deploy CDK_ARGS="-c crmBaseUrl=https://..."'
        )
