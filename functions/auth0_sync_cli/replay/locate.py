"""Where the DLQ and the functions are: flags, the deployed stack's outputs, local-aws."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping

import boto3
from botocore.exceptions import ClientError

from auth0_sync.errors import ConfigError
from auth0_sync.events import normalise_type
from auth0_sync.names import (
    DEFAULT_DLQ_NAME,
    STACK_OUTPUT_DLQ_URL,
    STACK_OUTPUT_REPLAY_FUNCTIONS,
    Env,
)
from auth0_sync.replay.lambda_target import parse_functions
from auth0_sync.replay.queue import DlqError
from auth0_sync.routing import ROUTES, route_for
from auth0_sync_cli.local_mode import AWS_ENDPOINT_ENV

EVENT_TYPES = ", ".join(str(route.event_type) for route in ROUTES)


def stack_outputs(stack: str) -> dict[str, str]:
    """The outputs of a deployed stack (CloudFormation), by output key."""
    try:
        answer = boto3.client("cloudformation").describe_stacks(StackName=stack)
    except ClientError as exc:
        raise DlqError(f"--stack {stack}: cannot read the stack's outputs: {exc}") from exc
    outputs = answer["Stacks"][0].get("Outputs", [])
    return {str(o["OutputKey"]): str(o["OutputValue"]) for o in outputs}


def resolve_queue_url(
    explicit: str | None, environ: Mapping[str, str] | None = None, stack: str | None = None
) -> str:
    """--queue-url, else the stack's output, else $DLQ_URL, else the local-aws queue."""
    env = os.environ if environ is None else environ
    if explicit:
        return explicit
    if stack:
        outputs = stack_outputs(stack)
        if STACK_OUTPUT_DLQ_URL not in outputs:
            raise DlqError(f"--stack {stack}: no {STACK_OUTPUT_DLQ_URL} output: is it auth0-sync?")
        return outputs[STACK_OUTPUT_DLQ_URL]
    if env.get(Env.DLQ_URL):
        return env[Env.DLQ_URL]
    # A bad --profile, no region or no credentials are not a missing queue: they go up as
    # they are, and the top-level handler names the setting.
    try:
        return boto3.client("sqs").get_queue_url(QueueName=DEFAULT_DLQ_NAME)["QueueUrl"]
    except ClientError as exc:
        raise DlqError(
            f"no DLQ given: pass --queue-url or set {Env.DLQ_URL} (the stack's DeadLetterQueueUrl "
            f"output); the default queue {DEFAULT_DLQ_NAME!r} was not found: {exc}"
        ) from exc


def functions_of_stack(stack: str) -> dict[str, str]:
    """The handlers' names from the stack's output (`user.created=fn,...`)."""
    text = stack_outputs(stack).get(STACK_OUTPUT_REPLAY_FUNCTIONS)
    if not text:
        raise ConfigError(f"--stack {stack}: no {STACK_OUTPUT_REPLAY_FUNCTIONS} output")
    try:
        return parse_functions(text)
    except ValueError as exc:
        raise ConfigError(f"--stack {stack}: {STACK_OUTPUT_REPLAY_FUNCTIONS}: {exc}") from exc


def default_wait_seconds(environ: Mapping[str, str] | None = None) -> int:
    """Long-poll real SQS (its short polls sample servers); local moto answers exactly."""
    env = os.environ if environ is None else environ
    return 0 if env.get(AWS_ENDPOINT_ENV) else 1


# argparse types: each error names the value and what is expected -------------------------


def event_type(value: str) -> str:
    """`user.created` (or the legacy `com.auth0.user.created`), else a one-line error."""
    normalised = normalise_type(value.strip())
    if route_for(normalised) is None:  # the one routing table: users and organizations
        raise argparse.ArgumentTypeError(f"{value!r} is not one of {EVENT_TYPES}")
    return normalised


def functions(value: str) -> dict[str, str]:
    try:
        return parse_functions(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_queue_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--queue-url",
        help=f"the DLQ (default: the --stack output, else ${Env.DLQ_URL}, else the local-aws "
        f"queue {DEFAULT_DLQ_NAME})",
    )
    parser.add_argument(
        "--stack",
        metavar="NAME",
        help=f"the deployed stack (e.g. Auth0Sync): read its {STACK_OUTPUT_DLQ_URL} output",
    )
