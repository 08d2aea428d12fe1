"""Builds the sync for local runs: against `auth0-sync local-aws`, or wholly in memory."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import boto3
from botocore.exceptions import ClientError

from auth0_sync.dead_letter import MemoryDeadLetterQueue, SqsDeadLetterQueue
from auth0_sync.errors import ConfigError, TransientError
from auth0_sync.names import FUNCTION_TIMEOUT_SECONDS, Env
from auth0_sync.runtime import build_service, check_destination_secret
from auth0_sync.settings import Settings
from auth0_sync.state import MemorySyncStateStore
from auth0_sync.sync import Outcome
from auth0_sync_cli.runner import LocalRunner

AWS_ENDPOINT_ENV = "AWS_ENDPOINT_URL"  # boto3's own variable


@dataclass
class LocalSync:
    runner: LocalRunner
    dead_letters: SqsDeadLetterQueue | MemoryDeadLetterQueue
    uses_aws: bool
    settings: Settings | None = None


def wants_aws(mode: str, environ: Mapping[str, str]) -> bool:
    """`auto` means: use AWS APIs when boto3 has an endpoint to talk to (local-aws)."""
    return mode == "aws" or (mode == "auto" and bool(environ.get(AWS_ENDPOINT_ENV)))


def build_local_sync(
    mode: str = "auto",
    *,
    on_outcome: Callable[[Outcome], None] | None = None,
    environ: Mapping[str, str] | None = None,
    backoff_seconds: float | None = None,
    timeout_seconds: float = FUNCTION_TIMEOUT_SECONDS,
) -> LocalSync:
    """The same service Lambda runs, with DynamoDB/SQS (mode aws) or memory adapters."""
    env = os.environ if environ is None else environ
    settings = Settings.from_env(env)
    if wants_aws(mode, env):
        dead_letters: SqsDeadLetterQueue | MemoryDeadLetterQueue = SqsDeadLetterQueue(
            settings.dlq_url
        )
        service = build_service(settings, dead_letters=dead_letters, on_outcome=on_outcome)
    else:
        dead_letters = MemoryDeadLetterQueue()
        # In memory as in DynamoDB, the state's last event id and
        # change time still make duplicates and stale events skip.
        service = build_service(
            settings,
            state=MemorySyncStateStore(),
            dead_letters=dead_letters,
            on_outcome=on_outcome,
        )
    runner = LocalRunner(
        service, dead_letters, backoff_seconds=backoff_seconds, timeout_seconds=timeout_seconds
    )
    return LocalSync(runner, dead_letters, wants_aws(mode, env), settings)


def check_crm_url(url: str) -> None:
    """CRM_BASE_URL must be an http(s) URL with a host; ConfigError naming it otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"{Env.CRM_BASE_URL}={url!r} is not an http(s) URL with a host: set it to the "
            "CRM's base URL, e.g. http://127.0.0.1:8080 as `auth0-sync crm-server` prints it"
        )
    try:
        parts.port  # noqa: B018 (a bad port raises here)
    except ValueError as exc:
        raise ConfigError(f"{Env.CRM_BASE_URL}={url!r}: {exc}") from exc


def check_ready(local: LocalSync) -> None:
    """Before the first event: the CRM URL, the CRM token, and (AWS state) the tables and
    the DLQ exist. A `ConfigError` names the setting; AWS's own errors (no region, no
    credentials, endpoint unreachable) propagate for the caller to explain."""
    settings = local.settings
    if settings is None:
        return
    check_crm_url(settings.crm_base_url)
    if local.uses_aws:
        _check_aws_resources(settings, local.dead_letters)
    try:
        check_destination_secret(settings)
    except TransientError as exc:
        raise ConfigError(
            f"the CRM token: {exc.message}; locally, set {Env.CRM_API_TOKEN} instead"
        ) from exc


def _check_aws_resources(
    settings: Settings, dead_letters: SqsDeadLetterQueue | MemoryDeadLetterQueue
) -> None:
    dynamodb = boto3.client("dynamodb")
    where = os.environ.get(AWS_ENDPOINT_ENV) or f"region {dynamodb.meta.region_name}"
    for table, variable in ((settings.state_table, Env.STATE_TABLE),):
        try:
            dynamodb.describe_table(TableName=table)
        except dynamodb.exceptions.ResourceNotFoundException as exc:
            raise ConfigError(
                f"DynamoDB table {table!r} not found in {where}: set {variable} to the "
                "stack's table, or start `auth0-sync local-aws` and run its export lines"
            ) from exc
    if not isinstance(dead_letters, SqsDeadLetterQueue):
        return
    try:
        url = dead_letters.queue_url
        dead_letters.client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if "NonExistentQueue" not in code and "QueueDoesNotExist" not in code:
            raise
        raise ConfigError(
            f"the DLQ ({settings.dlq_url or 'by name'}) not found in {where}: set "
            f"{Env.DLQ_URL} to the stack's DeadLetterQueueUrl output, or start "
            "`auth0-sync local-aws` and run its export lines"
        ) from exc
