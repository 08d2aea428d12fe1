"""`auth0-sync sandbox`: the reference CRM and local AWS together, to try every command by hand.

It starts what `crm-server` and `local-aws` start (the same `CrmServer` and `LocalAws`, as
the demo does), prints one block of shell lines that points the sync and boto3 at them, and
the `curl` lines that drive the CRM's faults, then waits for Ctrl-C (or SIGTERM) and stops
both. Everything lives in memory: nothing is left behind.
"""

from __future__ import annotations

import argparse
import shlex
from contextlib import ExitStack
from typing import Any

from auth0_sync.names import LOCAL_CRM_TOKEN, CrmType, Env
from auth0_sync_cli.argtypes import whole_number
from auth0_sync_cli.crm_admin import ADMIN_PREFIX
from auth0_sync_cli.crm_server import CrmServer
from auth0_sync_cli.exits import CommandError, cannot_listen
from auth0_sync_cli.local_aws import LocalAws, LocalResources
from auth0_sync_cli.signals import held_stop_signals

# Variables that would win over the sandbox's settings if an earlier shell session left them
# set: a token from `crm-server` wins over the secret, a mapping or a profile from elsewhere.
STALE_VARIABLES = (
    Env.CRM_API_TOKEN,
    Env.FIELD_MAPPING,
    Env.FIELD_MAPPING_FILE,
    "AWS_PROFILE",
)


def shell_lines(crm_url: str, resources: LocalResources) -> list[str]:
    """The `export` (and one `unset`) lines that make the documented commands use the sandbox."""
    environment = {
        Env.CRM_TYPE.value: CrmType.REST.value,
        Env.CRM_BASE_URL.value: crm_url,
        **resources.environment(),
    }
    lines = [f"export {name}={shlex.quote(value)}" for name, value in environment.items()]
    lines.append("unset " + " ".join(STALE_VARIABLES))
    return lines


def fault_lines(crm_url: str, token: str) -> list[tuple[str, str]]:
    """(curl command, what it does) for the CRM's admin endpoints."""
    auth = shlex.quote(f"Authorization: Bearer {token}")

    def post(path: str, body: str) -> str:
        return (
            f"curl -s -w '\\n' -X POST -H {auth} -H 'Content-Type: application/json' "
            f"-d {shlex.quote(body)} {crm_url}{ADMIN_PREFIX}{path}"
        )

    return [
        (post("outage", '{"enabled": true}'), "outage: every CRM request answers 503"),
        (post("outage", '{"enabled": false}'), "outage over"),
        (post("rate-limit", '{"rps": 2}'), "rate limit: 429 over 2 requests/s"),
        (post("rate-limit", '{"rps": null}'), "rate limit off"),
        (f"curl -s -w '\\n' -H {auth} {crm_url}{ADMIN_PREFIX}stats", "requests served, by status"),
        (f"curl -s -w '\\n' -H {auth} {crm_url}{ADMIN_PREFIX}contacts", "every contact"),
    ]


def _start(what: str, flag: str, port: int, start: Any) -> Any:
    try:
        return start()
    except OSError as exc:
        message = cannot_listen("127.0.0.1", port, exc).message.replace("--port", flag)
        raise CommandError(f"{what}: {message}") from exc


def run(args: argparse.Namespace) -> int:
    token = LOCAL_CRM_TOKEN
    crm = CrmServer(port=args.crm_port, token=token)
    aws = LocalAws(args.aws_port, crm_token=token)
    # Held before anything starts (threads inherit the mask): a Ctrl-C at any moment is
    # waited for below, never raised in the middle of start-up.
    with held_stop_signals() as wait_for_stop, ExitStack() as running:
        _start("the CRM", "--crm-port", args.crm_port, crm.start)
        running.callback(crm.stop)
        resources: LocalResources = _start("local AWS", "--aws-port", args.aws_port, aws.start)
        running.callback(aws.stop)
        print(
            f"auth0-sync sandbox: the reference CRM on {crm.base_url} and local AWS (moto) on "
            f"{aws.endpoint_url}, with the stack's table, DLQ and CRM-token secret.\n"
            "Paste these lines into the shell where you try the commands:\n"
        )
        for line in shell_lines(crm.base_url, resources):
            print(line)
        print(f"\nThe CRM's faults (its admin endpoints take the local token, {token}):\n")
        for command, what in fault_lines(crm.base_url, token):
            print(f"# {what}\n{command}")
        print(
            "\nEverything is in memory: Ctrl-C stops both servers and leaves nothing behind.",
            flush=True,
        )
        wait_for_stop()
    print("sandbox stopped.", flush=True)
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "sandbox",
        help="the reference CRM and local AWS together, with the shell lines to use them",
        description="Start the reference CRM (as `crm-server`) and local AWS (as "
        "`local-aws`: moto with the stack's table, DLQ and CRM-token secret) on loopback, "
        "print the export lines that make `process`, `dlq`, `replay` and `redrive` use them "
        "and the curl lines that cause the CRM's faults, and serve until Ctrl-C.",
        epilog="examples:\n"
        "  auth0-sync sandbox                      # then paste its lines into another shell\n"
        "  auth0-sync sandbox --crm-port 8080 --aws-port 4566",
    )
    port = whole_number(0, 65535, what="a port number")
    parser.add_argument(
        "--crm-port", type=port, default=0, help="the CRM's port (default 0: any free port)"
    )
    parser.add_argument(
        "--aws-port", type=port, default=0, help="local AWS's port (default 0: any free port)"
    )
    parser.set_defaults(func=run)
