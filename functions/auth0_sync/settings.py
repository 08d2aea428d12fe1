"""Every environment variable the sync reads, declared once and validated at cold start."""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from auth0_sync.destinations import EMAIL_FIELD, destination, mapping_problem, with_defaults
from auth0_sync.errors import ConfigError
from auth0_sync.mapping import AbsentPolicy
from auth0_sync.names import DEFAULT_STATE_TABLE, CrmType, Env
from auth0_sync.policies import BlockedPolicy, NoEmailPolicy

_REST = destination(CrmType.REST)
# CRM fields a mapping may write to the generic REST contract: its ContactFields less the
# ones the sync owns (status, auth0_user_id, source_updated_at). Each destination has its
# own (`auth0_sync.destinations.DESTINATIONS`).
MAPPABLE_CRM_FIELDS = _REST.fields

# CRM fields a contact cannot be without: never cleared (the contract requires an email).
REQUIRED_CRM_FIELDS = _REST.required

DEFAULT_FIELD_MAPPING: dict[str, str] = dict(_REST.default_mapping)


class MissingContactPolicy(StrEnum):
    CREATE = "create"
    SKIP = "skip"


class SyncMode(StrEnum):
    """What the sync may do to contacts (the rules: `auth0_sync.modes`)."""

    UPSERT = "upsert"  # create a contact for a user without one, update the rest
    UPDATE_ONLY = "update_only"  # never create: a user without a contact is a counted skip
    CREATE_ONLY = "create_only"  # never overwrite: a field the contact holds a value for stays


class DeletePolicy(StrEnum):
    DEACTIVATE = "deactivate"
    ANONYMIZE = "anonymize"
    ARCHIVE = "archive"  # HubSpot only: the contact is archived (DELETE), not kept
    NONE = "none"  # the tombstone is recorded (order), the contact is not touched
    ERASE = "erase"  # HubSpot only: GDPR delete, the contact is removed permanently


class Settings(BaseModel):
    """Sync configuration. Field aliases are the environment variable names."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    crm_type: CrmType = Field(default=CrmType.REST, validation_alias=Env.CRM_TYPE)
    crm_base_url: str = Field(validation_alias=Env.CRM_BASE_URL, min_length=1)
    crm_api_token: str | None = Field(default=None, validation_alias=Env.CRM_API_TOKEN, repr=False)
    crm_token_secret_arn: str | None = Field(
        default=None, validation_alias=Env.CRM_TOKEN_SECRET_ARN
    )
    crm_timeout_seconds: float = Field(default=10.0, gt=0, validation_alias=Env.CRM_TIMEOUT_SECONDS)
    crm_retry_budget_seconds: float = Field(
        default=10.0, gt=0, validation_alias=Env.CRM_RETRY_BUDGET_SECONDS
    )
    absent_fields: AbsentPolicy = Field(
        default=AbsentPolicy.KEEP, validation_alias=Env.ABSENT_FIELDS
    )
    field_mapping: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_FIELD_MAPPING), validation_alias=Env.FIELD_MAPPING
    )
    contact_id_path: str = Field(
        default="app_metadata.crm_contact_id", validation_alias=Env.CONTACT_ID_PATH
    )
    missing_contact_policy: MissingContactPolicy = Field(
        default=MissingContactPolicy.CREATE, validation_alias=Env.MISSING_CONTACT_POLICY
    )
    delete_policy: DeletePolicy = Field(
        default=DeletePolicy.DEACTIVATE, validation_alias=Env.DELETE_POLICY
    )
    no_email_policy: NoEmailPolicy = Field(
        default=NoEmailPolicy.SKIP, validation_alias=Env.NO_EMAIL_POLICY
    )
    claim_unverified_email: bool = Field(default=False, validation_alias=Env.CLAIM_UNVERIFIED_EMAIL)
    blocked_policy: BlockedPolicy = Field(
        default=BlockedPolicy.DEACTIVATE, validation_alias=Env.BLOCKED_POLICY
    )
    sync_mode: SyncMode = Field(default=SyncMode.UPSERT, validation_alias=Env.SYNC_MODE)
    state_table: str = Field(default=DEFAULT_STATE_TABLE, validation_alias=Env.STATE_TABLE)
    dlq_url: str | None = Field(default=None, validation_alias=Env.DLQ_URL)
    # The live path's deactivation brake (auth0_sync.deactivation_window).
    deactivation_window_limit: int = Field(
        default=100, ge=0, validation_alias=Env.DEACTIVATION_WINDOW_LIMIT
    )
    deactivation_window_seconds: int = Field(
        default=3600, gt=0, validation_alias=Env.DEACTIVATION_WINDOW_SECONDS
    )
    # Organization events -> companies (auth0_sync.organizations); the stack's context key.
    organizations: bool = Field(default=True, validation_alias=Env.ORGANIZATIONS)
    # Salesforce: the org has Contacts to Multiple Accounts (destinations.salesforce_accounts).
    salesforce_contacts_to_multiple_accounts: bool = Field(
        default=False, validation_alias=Env.SALESFORCE_MULTIPLE_ACCOUNTS
    )

    @model_validator(mode="before")
    @classmethod
    def _destination_defaults(cls, values: Any) -> Any:
        """The destination's default base URL and mapping, when none is given."""
        if isinstance(values, dict):
            # Built by field name (tests, the CLI) or by variable name (from_env): one spelling.
            names = {"crm_type": Env.CRM_TYPE, "crm_base_url": Env.CRM_BASE_URL}
            names["field_mapping"] = Env.FIELD_MAPPING
            values = {str(names.get(k, k)): v for k, v in values.items()}
        return with_defaults(values, Env.CRM_TYPE, Env.CRM_BASE_URL, Env.FIELD_MAPPING)

    @property
    def required_crm_fields(self) -> frozenset[str]:
        """Generic fields the destination cannot be without: the core never clears them."""
        return destination(self.crm_type).required

    @field_validator("crm_base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("field_mapping", mode="before")
    @classmethod
    def _parse_mapping(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not valid JSON ({exc.msg} at char {exc.pos})") from exc
        return value

    @field_validator("field_mapping")
    @classmethod
    def _check_mapping(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value.values()) - MAPPABLE_CRM_FIELDS)
        if unknown:
            raise ValueError(
                f"maps to CRM field(s) {unknown} outside the contract; "
                f"allowed: {sorted(MAPPABLE_CRM_FIELDS)}"
            )
        if not value:
            raise ValueError("is empty: map at least one Auth0 attribute")
        return value

    @model_validator(mode="after")
    def _mapping_fits_the_destination(self) -> Settings:
        problem = mapping_problem(self.crm_type, self.field_mapping)
        if problem:
            raise ValueError(f"{Env.FIELD_MAPPING} {problem} (with {Env.CRM_TYPE}={self.crm_type})")
        return self

    @model_validator(mode="after")
    def _archive_needs_a_destination_that_archives(self) -> Settings:
        hubspot_only = (DeletePolicy.ARCHIVE, DeletePolicy.ERASE)
        if self.delete_policy in hubspot_only and self.crm_type != CrmType.HUBSPOT:
            raise ValueError(
                f"{Env.DELETE_POLICY}={self.delete_policy} needs {Env.CRM_TYPE}=hubspot (the "
                f"only destination that archives or erases); with {self.crm_type} use "
                "deactivate, anonymize or none"
            )
        return self

    @model_validator(mode="after")
    def _create_without_email_needs_a_destination_that_accepts_it(self) -> Settings:
        if self.no_email_policy == NoEmailPolicy.CREATE and EMAIL_FIELD in self.required_crm_fields:
            raise ValueError(
                f"{Env.NO_EMAIL_POLICY}=create needs a destination that accepts contacts "
                f"without an email; {self.crm_type} requires one (use skip)"
            )
        return self

    @model_validator(mode="after")
    def _need_a_token(self) -> Settings:
        if not (self.crm_api_token or self.crm_token_secret_arn):
            raise ValueError(
                f"set {Env.CRM_TOKEN_SECRET_ARN} (in AWS) or {Env.CRM_API_TOKEN} (local)"
            )
        return self

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Build from the environment; a `ConfigError` names each bad or missing variable."""
        values: dict[str, Any] = {name: environ[name] for name in Env if name in environ}
        mapping_file = environ.get(Env.FIELD_MAPPING_FILE)
        if mapping_file and Env.FIELD_MAPPING not in values:
            try:
                values[Env.FIELD_MAPPING] = Path(mapping_file).read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError(
                    f"{Env.FIELD_MAPPING_FILE}: cannot read {mapping_file}: {exc}"
                ) from exc
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
                for err in exc.errors()
            )
            raise ConfigError(f"invalid configuration: {problems}") from exc
