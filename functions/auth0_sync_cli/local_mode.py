"""Builds the sync for local runs: against `auth0-sync local-aws`, or wholly in memory."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from auth0_sync.dead_letter import MemoryDeadLetterQueue, SqsDeadLetterQueue
from auth0_sync.names import FUNCTION_TIMEOUT_SECONDS
from auth0_sync.runtime import build_service
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
        # Without DynamoDB there is no idempotency table; the state's last event id and
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
    return LocalSync(runner, dead_letters, wants_aws(mode, env))
