"""`auth0-sync streams`: create, list, enable and watch the Auth0 event stream feeding AWS.

Authentication comes from the environment: AUTH0_DOMAIN (a tenant domain, https assumed, or a
base URL such as http://127.0.0.1:8080 for a local server) and either a Management API token
(--token-file FILE, AUTH0_MGMT_TOKEN_FILE or AUTH0_MGMT_TOKEN) or AUTH0_CLIENT_ID +
AUTH0_CLIENT_SECRET (client-credentials grant). Client-credentials tokens are cached until
they expire in $XDG_CACHE_HOME/auth0-sync/management-tokens.json (~/.cache by default),
readable by you only, because Auth0 meters them per month; --no-token-cache skips it.
No secret is taken on the command line (`ps` shows it to every user): the token Auth0 sends
to a webhook (`create --webhook`) comes from --webhook-token-file FILE or
AUTH0_SYNC_WEBHOOK_TOKEN.
`streams health` also reads the partner event source's state from AWS (default credentials,
the stream's region); --no-event-source skips that.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from auth0_sync.errors import ConfigError, ManagementApiError
from auth0_sync.names import CONTEXT_CREATE_EVENT_BUS, CONTEXT_EVENT_SOURCE_NAME, Env, EventType
from auth0_sync.streams.client import (
    DESTINATION_EVENTBRIDGE,
    PARTNER_SOURCE_KEY,
    STATUS_DISABLED,
    STATUS_ENABLED,
    FileTokenCache,
    ManagementClient,
    ManagementCredentials,
    default_token_cache_path,
    eventbridge_stream_body,
    redact,
    webhook_stream_body,
)
from auth0_sync.streams.health import HealthStatus, check_health, partner_source_of, region_of
from auth0_sync.streams.source import (
    EventSourceState,
    EventSourceUnreadable,
    describe_event_source,
    unreadable,
)
from auth0_sync_cli.argtypes import ExtendUnique
from auth0_sync_cli.exits import CommandError
from auth0_sync_cli.secrets import secret_from

# Exit codes. argparse already uses 2 for usage errors, so "disabled" is 3: an alerting job
# must never read a typo in its own command line as "the stream is disabled".
EXIT_OK = 0
EXIT_WARNING = 1
EXIT_USAGE = 2  # usage or configuration, like every other command
EXIT_DISABLED = 3
EXIT_ERROR = 4  # the Auth0 call failed
HEALTH_EXIT_CODES = {
    HealthStatus.HEALTHY: EXIT_OK,
    HealthStatus.WARNING: EXIT_WARNING,
    HealthStatus.DISABLED: EXIT_DISABLED,
    HealthStatus.NOT_DELIVERING: EXIT_DISABLED,
}
EXIT_CODES_HELP = """exit codes:
  0  done (health: healthy)
  1  health: warning: failed deliveries (missing from the bus until redelivered), or the
     partner event source could not be read
  2  usage or configuration error (the message names the flag or variable)
  3  health: nothing reaches the bus: the stream is disabled, or its partner event source
     is not ACTIVE
  4  the Auth0 call failed (the message names the call)"""

MAX_DELIVERIES = 5000
_ACCOUNT = re.compile(r"^\d{12}$")
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$")
_STREAM_ID = re.compile(r"^est_[A-Za-z0-9]+$")
_EVENT_ID = re.compile(r"^evt_[A-Za-z0-9]+$")
_EVENT_TYPES = ", ".join(EventType)

Action = Callable[[argparse.Namespace, ManagementClient], int]

EXAMPLE_ID = "est_abc123"
# One example per verb, printed under its --help.
EXAMPLES = {
    "list": "auth0-sync streams list --json",
    "show": f"auth0-sync streams show {EXAMPLE_ID}",
    "create": "auth0-sync streams create --name crm-sync --eventbridge "
    "--aws-account 123456789012 --aws-region eu-west-1",
    "enable": f"auth0-sync streams enable {EXAMPLE_ID}",
    "disable": f"auth0-sync streams disable {EXAMPLE_ID}",
    "delete": f"auth0-sync streams delete {EXAMPLE_ID}",
    "test": f"auth0-sync streams test {EXAMPLE_ID} --type user.created",
    "deliveries": f"auth0-sync streams deliveries {EXAMPLE_ID} "
    "--since 2026-03-01T00:00:00Z --limit 20",
    "redeliver": f"auth0-sync streams redeliver {EXAMPLE_ID} --all --type user.updated",
    "health": f"auth0-sync streams health {EXAMPLE_ID} || echo 'needs attention'",
}


STREAM_ID_HELP = "the event stream's id (est_..., as `auth0-sync streams list` shows it)"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `streams` and its verbs."""
    parser = subparsers.add_parser(
        "streams",
        help="manage the Auth0 event stream (create, list, enable, health...)",
        description=__doc__,
        epilog=f"examples:\n  auth0-sync streams list\n  auth0-sync streams health {EXAMPLE_ID}"
        f"\n\n{EXIT_CODES_HELP}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print one JSON document")
    common.add_argument(
        "--token-file",
        metavar="FILE",
        help=f"read the Management API token from FILE (or ${Env.AUTH0_MGMT_TOKEN_FILE})",
    )
    common.add_argument(
        "--no-token-cache",
        action="store_true",
        help="neither read nor write the cached client-credentials token",
    )

    def verb(name: str, action: Action, help_text: str) -> argparse.ArgumentParser:
        sub = verbs.add_parser(
            name,
            parents=[common],
            help=help_text,
            description=help_text,
            epilog=f"example:\n  {EXAMPLES[name]}\n\n{EXIT_CODES_HELP}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.set_defaults(func=_runner(action, sub))
        return sub

    verb("list", _list, "list the event streams")

    show = verb("show", _show, "show one event stream")
    show.add_argument("stream_id", metavar="ID", type=_stream_id, help=STREAM_ID_HELP)

    create = verb("create", _create, "create an event stream (disabled until you enable it)")
    create.add_argument("--name", required=True, type=_name, help="stream name (1-128 chars)")
    target = create.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--eventbridge", action="store_true", help="deliver to EventBridge in an AWS account"
    )
    target.add_argument("--webhook", metavar="URL", type=_https_url, help="deliver to this URL")
    create.add_argument("--aws-account", type=_aws_account, help="12-digit AWS account id")
    create.add_argument("--aws-region", type=_aws_region, help="AWS region, e.g. eu-west-1")
    create.add_argument(
        "--webhook-token-file",
        metavar="FILE",
        help=f"with --webhook: read the token Auth0 sends to the webhook from FILE (or "
        f"${Env.WEBHOOK_TOKEN}); never on the command line, where `ps` and the shell's "
        "history keep it",
    )
    create.add_argument(
        "--type",
        dest="types",
        action=ExtendUnique,
        type=_event_types,
        metavar="TYPE",
        help=f"an event type to deliver, repeatable or comma-separated (default: all of "
        f"{_EVENT_TYPES})",
    )

    enable = verb("enable", _enable, "enable an event stream")
    enable.add_argument("stream_id", metavar="ID", type=_stream_id, help=STREAM_ID_HELP)
    disable = verb("disable", _disable, "disable an event stream")
    disable.add_argument("stream_id", metavar="ID", type=_stream_id, help=STREAM_ID_HELP)
    delete = verb("delete", _delete, "delete an event stream")
    delete.add_argument("stream_id", metavar="ID", type=_stream_id, help=STREAM_ID_HELP)

    test = verb("test", _test, "send a test event (a0purpose: test) through a stream")
    test.add_argument("stream_id", metavar="ID", type=_stream_id, help=STREAM_ID_HELP)
    test.add_argument("--type", required=True, type=_event_type, help=_EVENT_TYPES)

    deliveries = verb("deliveries", _deliveries, "list the failed deliveries of a stream")
    deliveries.add_argument("stream_id", metavar="ID", type=_stream_id, help=STREAM_ID_HELP)
    deliveries.add_argument("--type", type=_event_type, help=_EVENT_TYPES)
    deliveries.add_argument("--since", type=_timestamp, help="ISO-8601 time (UTC if no offset)")
    deliveries.add_argument("--until", type=_timestamp, help="ISO-8601 time, exclusive")
    deliveries.add_argument(
        "--limit", type=_limit, default=100, help=f"at most this many (1-{MAX_DELIVERIES})"
    )

    redeliver = verb("redeliver", _redeliver, "ask Auth0 to redeliver failed events")
    redeliver.add_argument("stream_id", metavar="ID", type=_stream_id, help=STREAM_ID_HELP)
    redeliver.add_argument(
        "event_id",
        metavar="EVENT_ID",
        nargs="?",
        type=_event_id,
        help="the one failed event to redeliver (evt_...); or --all",
    )
    redeliver.add_argument("--all", action="store_true", help="every failed event (filtered)")
    redeliver.add_argument("--since", type=_timestamp, help="with --all: from this time")
    redeliver.add_argument("--until", type=_timestamp, help="with --all: before this time")
    redeliver.add_argument("--type", type=_event_type, help=f"with --all: {_EVENT_TYPES}")

    health = verb(
        "health",
        _health,
        "status, partner event source state, failed deliveries against auto-disable limits",
    )
    health.add_argument("stream_id", metavar="ID", type=_stream_id, help=STREAM_ID_HELP)
    health.add_argument(
        "--no-event-source",
        action="store_true",
        help="do not read the partner event source's state from AWS",
    )


# -- argument types: each error names the value and what is expected ---------------------


def _stream_id(value: str) -> str:
    if not _STREAM_ID.match(value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an event stream id (est_ followed by letters and digits)"
        )
    return value


def _event_id(value: str) -> str:
    if not _EVENT_ID.match(value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an event id (evt_ followed by letters and digits)"
        )
    return value


def _name(value: str) -> str:
    if not 1 <= len(value.strip()) <= 128:
        raise argparse.ArgumentTypeError("must be 1 to 128 characters")
    return value.strip()


def _https_url(value: str) -> str:
    if not re.match(r"^https://[^/\s]+", value):
        raise argparse.ArgumentTypeError(f"{value!r} is not an https:// URL (Auth0 requires https)")
    return value


def _aws_account(value: str) -> str:
    if not _ACCOUNT.match(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not an AWS account id (12 digits)")
    return value


def _aws_region(value: str) -> str:
    if not _REGION.match(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not an AWS region (like eu-west-1)")
    return value


def _event_type(value: str) -> str:
    if value not in set(EventType):
        raise argparse.ArgumentTypeError(f"{value!r} is not one of {_EVENT_TYPES}")
    return value


def _event_types(value: str) -> list[str]:
    types = [t.strip() for t in value.split(",") if t.strip()]
    if not types:
        raise argparse.ArgumentTypeError(f"give at least one of {_EVENT_TYPES}")
    unknown = [t for t in types if t not in set(EventType)]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown event type(s) {unknown}; use {_EVENT_TYPES}")
    return list(dict.fromkeys(types))


def _timestamp(value: str) -> str:
    """ISO-8601 -> the API's RFC 3339 form, UTC, whole seconds (it refuses sub-seconds)."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an ISO-8601 time (like 2026-03-04T10:15:00Z or 2026-03-04)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _limit(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if not 1 <= number <= MAX_DELIVERIES:
        raise argparse.ArgumentTypeError(
            f"{value!r}: give a whole number from 1 to {MAX_DELIVERIES}"
        )
    return number


# -- running a verb ------------------------------------------------------------------------


def _runner(action: Action, parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        args.parser = parser
        try:
            credentials = ManagementCredentials.from_env(os.environ, token_file=args.token_file)
            cache = (
                None
                if args.no_token_cache
                else FileTokenCache(default_token_cache_path(os.environ))
            )
            client = ManagementClient(credentials, token_cache=cache)
        except ConfigError as exc:
            raise CommandError(str(exc), EXIT_USAGE) from exc
        try:
            return action(args, client)
        except ManagementApiError as exc:
            raise CommandError(exc.message, EXIT_ERROR) from exc

    return run


def _out(args: argparse.Namespace, client: ManagementClient, document: Any, text: str) -> None:
    """One JSON document with --json, else the human text; secrets redacted either way."""
    if args.json:
        print(json.dumps(redact(document, client.secrets), indent=2))
    else:
        print(redact(text, client.secrets))


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = [headers, *rows]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def _types_of(stream: dict[str, Any]) -> str:
    subs = stream.get("subscriptions") or []
    return ",".join(str(s.get("event_type")) for s in subs if isinstance(s, dict))


def _destination_of(stream: dict[str, Any]) -> str:
    dest = stream.get("destination") or {}
    config = dest.get("configuration") or {}
    if dest.get("type") == DESTINATION_EVENTBRIDGE:
        return f"eventbridge {config.get('aws_account_id', '?')}/{config.get('aws_region', '?')}"
    if dest.get("type") == "webhook":
        return f"webhook {config.get('webhook_endpoint', '?')}"
    return str(dest.get("type", "?"))


def _partner_source(stream: dict[str, Any]) -> str | None:
    return partner_source_of(stream)


DEPLOYED_STACK = "Auth0Sync"
STORE_CRM_CREDENTIAL_STEP = (
    "aws secretsmanager put-secret-value --secret-id <CrmTokenSecretArn output> "
    "--secret-string file://crm-token.txt"
)


def _deploy_command(region: str, source: str) -> str:
    """The deploy that creates the bus for `source`, which associates the two."""
    context = f"-c {CONTEXT_EVENT_SOURCE_NAME}={source} -c {CONTEXT_CREATE_EVENT_BUS}=true"
    return f"AWS_REGION={region} make deploy CDK_ARGS={shlex.quote(context)}"


def _read_source(stream: Mapping[str, Any]) -> EventSourceState | None:
    """The stream's partner event source, read in the stream's region (None: not EventBridge)."""
    name = partner_source_of(stream)
    if name is None:
        return None
    try:
        return describe_event_source(name, region=region_of(stream))
    except EventSourceUnreadable as exc:
        return unreadable(name, exc)


# -- verbs ---------------------------------------------------------------------------------


def _list(args: argparse.Namespace, client: ManagementClient) -> int:
    streams = client.list_streams()
    rows = [
        [
            str(s.get("id", "")),
            str(s.get("name", "")),
            str(s.get("status", "")),
            _destination_of(s),
            _types_of(s),
        ]
        for s in streams
    ]
    text = (
        _table(["ID", "NAME", "STATUS", "DESTINATION", "EVENT TYPES"], rows)
        if rows
        else "No event streams."
    )
    _out(args, client, streams, text)
    return EXIT_OK


def _describe(stream: dict[str, Any]) -> str:
    dest = stream.get("destination") or {}
    lines = [
        f"id:           {stream.get('id', '')}",
        f"name:         {stream.get('name', '')}",
        f"status:       {stream.get('status', '')}",
        f"event types:  {_types_of(stream)}",
        f"destination:  {dest.get('type', '')}",
    ]
    for key, value in (dest.get("configuration") or {}).items():
        shown = json.dumps(value) if isinstance(value, dict | list) else str(value)
        lines.append(f"  {key}: {shown}")
    lines += [
        f"created_at:   {stream.get('created_at', '')}",
        f"updated_at:   {stream.get('updated_at', '')}",
    ]
    return "\n".join(lines)


def _show(args: argparse.Namespace, client: ManagementClient) -> int:
    stream = client.get_stream(args.stream_id)
    _out(args, client, stream, _describe(stream))
    return EXIT_OK


def _create(args: argparse.Namespace, client: ManagementClient) -> int:
    parser: argparse.ArgumentParser = args.parser
    types = args.types or [str(t) for t in EventType]
    if args.eventbridge:
        missing = [
            f
            for f, v in (("--aws-account", args.aws_account), ("--aws-region", args.aws_region))
            if not v
        ]
        if missing:
            parser.error(f"--eventbridge needs {' and '.join(missing)}")
        if args.webhook_token_file:
            parser.error("--webhook-token-file goes with --webhook, not --eventbridge")
        body = eventbridge_stream_body(args.name, args.aws_account, args.aws_region, types)
    else:
        if args.aws_account or args.aws_region:
            parser.error("--aws-account/--aws-region go with --eventbridge, not --webhook")
        token = secret_from(
            args.webhook_token_file,
            flag="--webhook-token-file",
            variable=Env.WEBHOOK_TOKEN,
            what="the webhook's token",
        )
        if token is None:
            parser.error(f"--webhook needs --webhook-token-file FILE (or ${Env.WEBHOOK_TOKEN})")
        client.add_secret(token)
        body = webhook_stream_body(args.name, args.webhook, token, types)

    stream = client.create_stream(body)
    stream_id = str(stream.get("id", ""))
    header = (
        f"Created event stream {stream_id} {stream.get('name', args.name)!r} "
        f"({stream.get('status', STATUS_DISABLED)}), destination {_destination_of(stream)}."
    )
    enable = f"auth0-sync streams enable {stream_id}"
    if not args.eventbridge:
        steps = [enable, f"auth0-sync streams test {stream_id} --type {types[0]}"]
        text = f"{header}\n\nNext: turn it on, then send a test event:\n  {steps[0]}\n  {steps[1]}"
        _out(args, client, {"stream": stream, "next_steps": steps}, text)
        return EXIT_OK

    source = _partner_source(stream)
    if source is None and stream_id:
        # Auth0 documents the source as part of the answer; read it back if it was left out.
        source = _partner_source(client.get_stream(stream_id))
    if source is None:
        lookup = (
            "aws events list-event-sources --name-prefix aws.partner/auth0.com "
            f"--region {args.aws_region}"
        )
        text = (
            f"{header}\n\nAuth0 did not return {PARTNER_SOURCE_KEY}; find it with:\n  {lookup}\n"
            f"then run: {_deploy_command(args.aws_region, '<that name>')}"
        )
        _out(
            args, client, {"stream": stream, PARTNER_SOURCE_KEY: None, "next_steps": [lookup]}, text
        )
        return EXIT_OK
    deploy = _deploy_command(args.aws_region, source)
    # In the README's order: the stream is enabled last, once the users Auth0 already has
    # are in the CRM (a stream carries changes only from the moment it is enabled).
    token = STORE_CRM_CREDENTIAL_STEP
    backfill = f"auth0-sync backfill --stack {DEPLOYED_STACK} --checkpoint backfill.ckpt"
    text = (
        f"{header}\n{PARTNER_SOURCE_KEY}: {source}\n\n"
        f"Next steps, with AWS credentials for account {args.aws_account}: deploy the stack, "
        "which creates the event bus for this partner event source:\n"
        f"  {deploy}\n"
        f"set the CRM token (the stack's SetCrmToken output):\n  {token}\n"
        f"backfill the users Auth0 already has:\n  {backfill}\n"
        f"then turn the stream on:\n  {enable}"
    )
    document = {
        "stream": stream,
        PARTNER_SOURCE_KEY: source,
        "next_steps": [deploy, token, backfill, enable],
    }
    _out(args, client, document, text)
    return EXIT_OK


def _set_status(args: argparse.Namespace, client: ManagementClient, status: str) -> int:
    stream = client.set_status(args.stream_id, status)
    now = stream.get("status", status)
    _out(
        args,
        client,
        stream,
        f"Event stream {args.stream_id} {stream.get('name', '')!r} is now {now}.",
    )
    return EXIT_OK


def _enable(args: argparse.Namespace, client: ManagementClient) -> int:
    return _set_status(args, client, STATUS_ENABLED)


def _disable(args: argparse.Namespace, client: ManagementClient) -> int:
    return _set_status(args, client, STATUS_DISABLED)


def _delete(args: argparse.Namespace, client: ManagementClient) -> int:
    client.delete_stream(args.stream_id)
    _out(
        args,
        client,
        {"id": args.stream_id, "deleted": True},
        f"Deleted event stream {args.stream_id}.",
    )
    return EXIT_OK


def _test(args: argparse.Namespace, client: ManagementClient) -> int:
    answer = client.send_test_event(args.stream_id, args.type)
    event = f" (event {answer['id']})" if answer.get("id") else ""
    _out(args, client, answer, f"Sent a test {args.type} event through {args.stream_id}{event}.")
    return EXIT_OK


def _deliveries(args: argparse.Namespace, client: ManagementClient) -> int:
    items = client.list_deliveries(
        args.stream_id,
        event_types=[args.type] if args.type else [],
        date_from=args.since,
        date_to=args.until,
        limit=args.limit,
    )
    rows = []
    for item in items:
        attempts = [a for a in item.get("attempts") or [] if isinstance(a, dict)]
        last = attempts[-1] if attempts else {}
        rows.append(
            [
                str(item.get("id", "")),
                str(item.get("event_type", "")),
                str(item.get("status", "")),
                str(len(attempts)),
                str(last.get("timestamp", "")),
                str(last.get("error_message", ""))[:60],
            ]
        )
    headers = ["EVENT ID", "TYPE", "STATUS", "ATTEMPTS", "LAST ATTEMPT", "LAST ERROR"]
    text = (
        f"{_table(headers, rows)}\n{len(rows)} failed deliveries"
        if rows
        else "No failed deliveries."
    )
    _out(args, client, items, text)
    return EXIT_OK


def _redeliver(args: argparse.Namespace, client: ManagementClient) -> int:
    parser: argparse.ArgumentParser = args.parser
    if bool(args.event_id) == bool(args.all):
        parser.error("give either EVENT_ID or --all")
    if args.event_id:
        if args.since or args.until or args.type:
            parser.error("--since/--until/--type go with --all, not with EVENT_ID")
        client.redeliver_event(args.stream_id, args.event_id)
        _out(
            args,
            client,
            {"stream_id": args.stream_id, "event_id": args.event_id, "requested": True},
            f"Redelivery of {args.event_id} through {args.stream_id} requested.",
        )
        return EXIT_OK
    answer = client.redeliver_all(
        args.stream_id,
        date_from=args.since,
        date_to=args.until,
        event_types=[args.type] if args.type else [],
    )
    scope = ", ".join(
        part
        for part in (
            f"since {args.since}" if args.since else "",
            f"until {args.until}" if args.until else "",
            args.type or "",
        )
        if part
    )
    text = f"Redelivery of failed events through {args.stream_id} requested" + (
        f" ({scope})." if scope else " (all that Auth0 still holds)."
    )
    _out(args, client, {"stream_id": args.stream_id, "requested": answer}, text)
    return EXIT_OK


def _health(args: argparse.Namespace, client: ManagementClient) -> int:
    health = check_health(
        client, args.stream_id, read_source=None if args.no_event_source else _read_source
    )
    source = health.event_source
    if source is None:
        source_line = "Partner event source: not read" + (
            " (--no-event-source)" if args.no_event_source else " (not an EventBridge stream)"
        )
    else:
        expiry = f", expires {source.expires_at}" if source.expires_at else ""
        source_line = f"Partner event source {source.name}: {source.state}{expiry}"
    lines = [
        f"Stream {health.stream_id} {health.name!r}: {health.stream_status}",
        source_line,
        f"Failed deliveries: {health.failed_deliveries}"
        + (f" (last at {health.last_failure_at})" if health.last_failure_at else ""),
        f"  vs {health.consecutive_limit} consecutive (warn at {health.warn_consecutive}): "
        f"{100 * health.failed_deliveries / health.consecutive_limit:.0f}%",
        f"  vs {health.total_limit} total (warn at {health.warn_total}): "
        f"{100 * health.failed_deliveries / health.total_limit:.0f}%",
        f"Health: {health.status.upper()}",
        *(f"  - {reason}" for reason in health.reasons),
    ]
    _out(args, client, health.to_dict(), "\n".join(lines))
    return HEALTH_EXIT_CODES[health.status]
