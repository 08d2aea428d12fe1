"""Exit codes of every command, and the one-line explanation of each expected error.

`main` is the one place that turns an exception into a message: a command raises
`CommandError` (or lets a foreign error such as botocore's `NoRegionError` through), and
the user reads one line naming the setting and what to do; the traceback only with --debug.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Mapping

import requests
from botocore import exceptions as aws

from auth0_sync.errors import ConfigError
from auth0_sync.names import Env

EXIT_OK = 0  # every event applied or skipped (or: the command did what it says)
EXIT_NEEDS_ATTENTION = 1  # ran, but something needs a person: an event is in a DLQ
EXIT_USAGE = 2  # usage, input or configuration error (argparse uses 2 too)
EXIT_INTERNAL = 70  # a bug (sysexits' EX_SOFTWARE): rerun with --debug and report it
EXIT_INTERRUPTED = 130  # Ctrl-C or SIGTERM (128 + SIGINT, as shells report it)
EXIT_CLOSED_OUTPUT = 141  # the reader of our output went away (128 + SIGPIPE), e.g. `| head`

EXIT_CODES_HELP = """exit codes:
  0    done: every event applied or skipped
  1    done, but something needs a person: an event was dead-lettered (the output says
       where) or is still in the DLQ
  2    usage, input or configuration error: the message names the flag, line or setting
  70   internal error (a bug): run again with --debug and report the traceback
  130  interrupted (Ctrl-C, SIGTERM)
  141  the output was closed early (e.g. piped into `head`)"""

AWS_ENVIRONMENT_HELP = """AWS settings (process, dlq, replay, redrive, backfill, reconcile,
catch-up, streams health): --region and --profile, before or after the command, else boto3's
standard variables AWS_DEFAULT_REGION, AWS_PROFILE, AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY; AWS_ENDPOINT_URL points every AWS call at `auth0-sync sandbox` or
`auth0-sync local-aws`."""


class CommandError(Exception):
    """A mistake the user can fix: printed as one line, exit code `code` (2 by default)."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def cannot_listen(flag_host: str, port: int, exc: OSError) -> CommandError:
    """A server's bind failure as a sentence naming --port (or --host)."""
    if exc.errno == errno.EADDRINUSE:
        return CommandError(
            f"port {port} on {flag_host} is already in use (another server, or one still "
            "running): stop it, or pass another --port (--port 0 picks a free one)"
        )
    if exc.errno == errno.EACCES:
        return CommandError(
            f"no permission to listen on port {port}: ports below 1024 need root; "
            "pass another --port"
        )
    if exc.errno == errno.EADDRNOTAVAIL or isinstance(exc, socket.gaierror):
        return CommandError(
            f"cannot listen on {flag_host}:{port}: {exc.strerror or exc}; "
            "pass an address of this machine as --host (e.g. 127.0.0.1)"
        )
    return CommandError(
        f"cannot listen on {flag_host}:{port}: {exc.strerror or exc}; check --host and --port"
    )


def explain(exc: BaseException, environ: Mapping[str, str] | None = None) -> str | None:
    """One line for an expected error: what is wrong, which setting, what to do. None for
    anything unforeseen (a bug)."""
    env = os.environ if environ is None else environ
    if isinstance(exc, CommandError):
        return exc.message
    if isinstance(exc, ConfigError):
        return f"configuration: {exc}"
    if isinstance(exc, aws.NoRegionError):
        return (
            "no AWS region: pass --region REGION or set AWS_DEFAULT_REGION (e.g. eu-west-1); "
            "against local-aws, run the export lines it prints"
        )
    if isinstance(exc, aws.InvalidRegionError):
        return (
            f"{exc}: pass --region REGION or fix AWS_DEFAULT_REGION (e.g. eu-west-1, "
            "lower case, no spaces)"
        )
    if isinstance(exc, aws.NoCredentialsError | aws.PartialCredentialsError):
        return (
            "no AWS credentials: pass --profile NAME, or set AWS_PROFILE, or "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; against local-aws, run the export "
            "lines it prints"
        )
    if isinstance(exc, aws.ProfileNotFound):
        return (
            f"AWS profile {exc.kwargs.get('profile')!r} not found: fix --profile or "
            "AWS_PROFILE (`aws configure list-profiles` lists them)"
        )
    if isinstance(exc, aws.EndpointConnectionError):
        url = exc.kwargs.get("endpoint_url")
        if env.get("AWS_ENDPOINT_URL"):
            return (
                f"cannot reach AWS at {url}: is `auth0-sync local-aws` running there? "
                "(AWS_ENDPOINT_URL says so; unset it to use AWS itself)"
            )
        return f"cannot reach AWS at {url}: check the network and --region / AWS_DEFAULT_REGION"
    if isinstance(exc, aws.ClientError):
        error = exc.response.get("Error", {})
        return (
            f"AWS refused {exc.operation_name}: {error.get('Code', '?')}: "
            f"{error.get('Message', exc)}; check the region, the account and its permissions"
        )
    if isinstance(exc, aws.BotoCoreError):
        return f"AWS: {exc}"
    if isinstance(exc, requests.exceptions.MissingSchema | requests.exceptions.InvalidSchema):
        return (
            f"{Env.CRM_BASE_URL} is not an http(s) URL ({exc}): set it to the CRM's base URL, "
            "e.g. http://127.0.0.1:8080 as `auth0-sync crm-server` prints it"
        )
    if isinstance(exc, requests.exceptions.InvalidURL):
        return f"{Env.CRM_BASE_URL} is not a valid URL ({exc})"
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}"
    return None
