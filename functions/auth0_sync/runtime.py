"""Wiring: settings -> adapters -> the sync service. Shared by Lambda and the local runner."""

from __future__ import annotations

from collections.abc import Callable

import boto3
from aws_lambda_powertools.utilities import parameters

from auth0_sync.deactivation_window import (
    DeactivationWindow,
    DynamoDeactivationWindow,
    MemoryDeactivationWindow,
)
from auth0_sync.dead_letter import SqsDeadLetterQueue
from auth0_sync.destinations import Crm, bearer_token
from auth0_sync.destinations.credentials import Cached
from auth0_sync.destinations.factory import build_companies, build_crm, check_secret
from auth0_sync.errors import TransientError
from auth0_sync.org_state import DynamoOrgStateStore, MemoryOrgStateStore, OrgStateStore
from auth0_sync.organizations import OrganizationSync, UserLink
from auth0_sync.service import DeadLetters, SyncService
from auth0_sync.settings import DeletePolicy, Settings
from auth0_sync.state import DynamoSyncStateStore, MemorySyncStateStore
from auth0_sync.sync import Outcome, StateStore, SyncCore

# Secrets are re-read at most this often, so a rotated token is picked up without a deploy.
SECRET_MAX_AGE_SECONDS = 300


def secret_text(secret_arn: str) -> Callable[[], str]:
    """A reader of the destination's secret in Secrets Manager (cached by Powertools, so a
    rotated value is picked up within SECRET_MAX_AGE_SECONDS, or at once when the CRM
    refuses the cached one: `credentials.with_fresh_credential`). Its shape is the
    destination's: the token or `{"token": ...}` (rest, hubspot), or
    `{"client_id": ..., "client_secret": ...}` (salesforce)."""

    providers: list[parameters.SecretsProvider] = []

    def text(fresh: bool) -> str:
        if not providers:
            # A client of boto3's default session, which the DynamoDB client already built:
            # Powertools' default provider builds a session of its own (~65 ms cold start).
            providers.append(
                parameters.SecretsProvider(boto3_client=boto3.client("secretsmanager"))
            )
        try:
            # fresh: the CRM refused what the cache holds (a rotated token): read it now.
            value = providers[0].get(secret_arn, max_age=SECRET_MAX_AGE_SECONDS, force_fetch=fresh)
        except parameters.exceptions.GetParameterError as exc:
            raise TransientError(
                f"CRM token secret {secret_arn} cannot be read: {exc}", "crm_token_unavailable"
            ) from exc
        content = value.decode("utf-8") if isinstance(value, bytes) else str(value or "")
        if not content.strip():
            raise TransientError(
                f"CRM token secret {secret_arn} is empty: set it with "
                "`aws secretsmanager put-secret-value`",
                "crm_token_unavailable",
            )
        return content

    return Cached(text)


def secret_token(secret_arn: str) -> Callable[[], str]:
    """A bearer token provider over the secret: the token itself, or JSON `{"token": ...}`."""
    return bearer_token(secret_text(secret_arn))


def destination_secret(settings: Settings) -> Callable[[], str]:
    """The destination's secret text: the local value when given (local mode), else the
    secret (AWS)."""
    if settings.crm_api_token:
        local = settings.crm_api_token
        return lambda: local
    assert settings.crm_token_secret_arn  # guaranteed by the Settings validator
    return secret_text(settings.crm_token_secret_arn)


def token_provider(settings: Settings) -> Callable[[], str]:
    """The bearer token of a token-based destination (rest, hubspot)."""
    return bearer_token(destination_secret(settings))


def check_destination_secret(settings: Settings) -> None:
    """The destination's secret can be read and has its shape (TransientError if not)."""
    check_secret(settings.crm_type, destination_secret(settings))


def build_crm_client(settings: Settings) -> Crm:
    """The adapter of the configured destination (CRM_TYPE)."""
    return build_crm(settings, destination_secret(settings))


def build_service(
    settings: Settings,
    *,
    state: StateStore | None = None,
    dead_letters: DeadLetters | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
    hold_deletes: bool = True,
    org_state: OrgStateStore | None = None,
    crm: Crm | None = None,
) -> SyncService:
    """The sync service with AWS adapters by default (DynamoDB client built here, SQS lazily).
    `hold_deletes`: the live path's deactivation brake, counted where the state is kept
    (off for `replay --allow-deactivations`, where a person released the deletes).
    `crm`: the destination's adapter as the caller built it (a batching replay's, whose
    requests take from its rate), else the configured one."""
    crm = build_crm_client(settings) if crm is None else crm
    window: DeactivationWindow | None = None
    limit, seconds = settings.deactivation_window_limit, settings.deactivation_window_seconds
    if state is None:
        client = boto3.client("dynamodb")
        state = DynamoSyncStateStore(settings.state_table, client)
        if hold_deletes:
            window = DynamoDeactivationWindow(settings.state_table, limit, seconds, client)
    elif hold_deletes:
        window = MemoryDeactivationWindow(limit, seconds)
    core = SyncCore(settings, crm, state, window)
    if org_state is None:
        org_state = (
            MemoryOrgStateStore()
            if isinstance(state, MemorySyncStateStore)
            else DynamoOrgStateStore(
                settings.state_table,
                state.client if isinstance(state, DynamoSyncStateStore) else None,
            )
        )
    return SyncService(
        core,
        dead_letters or SqsDeadLetterQueue(settings.dlq_url),
        on_outcome=on_outcome,
        organizations=(
            build_organizations(settings, crm, state, org_state) if settings.organizations else None
        ),
    )


def build_organizations(
    settings: Settings, crm: Crm, users: StateStore, org_state: OrgStateStore
) -> OrganizationSync:
    """The organization sync over the destination's companies (every destination has
    them; an adapter without, a test double, has its events skipped, counted and named)."""
    companies = build_companies(settings, crm)

    def user_of(user_id: str) -> UserLink:
        found = users.get(user_id)
        if found is None:
            return UserLink()
        deleted = found.deleted_at is not None
        return UserLink(None if deleted else found.contact_id, found.life_start)

    return OrganizationSync(
        companies,
        org_state,
        user_of,
        str(settings.crm_type),
        remove_on_user_delete=settings.delete_policy != DeletePolicy.NONE,
    )
