"""`auth0-sync dlq list | show | delete`: the dead-letter queue for a person.

- `list`: one line per message, whatever its shape; nothing removed or hidden.
- `show ID`: one event (by event id or message id): its messages, reasons and history, and
  the event itself with the profile's personal fields masked (`--unmask` to see them).
- `delete ID... --reason TEXT`: removes a poison message for good. The reason is logged
  (one JSON line on stderr, with who and when), and `--export FILE` first appends what is
  deleted to FILE as JSON Lines (the exact body and attributes, enough to send it again).

Reading the four shapes is `auth0_sync.replay.letters`, shared with replay and redrive.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

from auth0_sync.names import DLQ_ATTR_EB_RULE_ARN, DLQ_ATTR_EB_TARGET_ARN
from auth0_sync.replay.letters import DeadLetter
from auth0_sync.replay.queue import DlqError, DlqReader
from auth0_sync_cli.exits import EXIT_NEEDS_ATTENTION, CommandError
from auth0_sync_cli.paths import output_file
from auth0_sync_cli.replay.locate import add_queue_argument, default_wait_seconds, resolve_queue_url

__all__ = [
    "DeadLetter",
    "DlqReader",
    "list_letters",
    "mask_event",
    "register",
    "render_table",
    "summary_line",
]

# Long enough to read a large queue once; short enough that messages a killed command was
# holding come back soon. `release` makes them visible again at once on a normal exit.
LIST_VISIBILITY_SECONDS = 60
MASK = "***"
# Fields of a profile (data.object, data.previous_object) shown as they are: ids, times,
# flags and counts. Everything else (email, names, phone, metadata, IPs...) is masked.
VISIBLE_PROFILE_FIELDS = frozenset(
    {
        "user_id",
        "created_at",
        "updated_at",
        "deleted_at",
        "last_login",
        "logins_count",
        "email_verified",
        "phone_verified",
        "blocked",
        "identities",
        "connection",
        "provider",
        "isSocial",
        "crm_contact_id",
    }
)


def format_age(seconds: float) -> str:
    """45s, 12m, 3h, 2d."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def one_line(text: str) -> str:
    """`text` with control characters written as escapes (`\\n`): a value from an event or
    a CRM never breaks a listing's line (nor moves its cursor)."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def render_table(letters: Iterable[DeadLetter], now: datetime | None = None) -> str:
    """One line per message: event id, type, user, shape, error class, attempts, age, reason."""
    rows = [
        tuple(
            map(
                one_line,
                (
                    letter.event_id or "-",
                    letter.event_type or "-",
                    letter.user_id or "-",
                    letter.shape,
                    letter.error_class,
                    "-" if letter.attempts is None else str(letter.attempts),
                    format_age(letter.age_seconds(now)),
                    letter.reason_text(),
                ),
            )
        )
        for letter in letters
    ]
    header = ("EVENT ID", "TYPE", "USER", "SHAPE", "ERROR", "TRIES", "AGE", "REASON")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for row in [header, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[-1][:160]]).rstrip())
    return "\n".join(lines)


def summary_line(letters: Sequence[DeadLetter]) -> str:
    """`12 message(s): crm_503 9, invalid_event 1, ...` grouped by reason."""
    codes = Counter(letter.reason for letter in letters)
    detail = ", ".join(f"{code} {n}" for code, n in codes.most_common())
    return f"{len(letters)} message(s)" + (f": {detail}" if detail else "")


def _release(reader: DlqReader, letters: Sequence[DeadLetter], command: str) -> None:
    refused = reader.release(letters)
    if refused:
        print(
            f"auth0-sync dlq {command}: warning: {len(refused)} message(s) could not be "
            f"released; they become visible again within {LIST_VISIBILITY_SECONDS}s",
            file=sys.stderr,
        )


def list_letters(reader: DlqReader) -> list[DeadLetter]:
    """Every message, then released: the queue is left as it was found."""
    letters = reader.scan(LIST_VISIBILITY_SECONDS)
    _release(reader, letters, "list")
    return letters


def _mask(value: Any) -> Any:
    """Every value masked except the visible fields (recursing into objects and lists)."""
    if isinstance(value, dict):
        return {k: v if k in VISIBLE_PROFILE_FIELDS else _mask_leaf(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(item) for item in value]
    return value


def _mask_leaf(value: Any) -> Any:
    if isinstance(value, dict | list):
        return _mask(value) if value else value
    # Keep what says "absent" (a removed field is part of the story); hide the rest.
    return value if value in (None, "") or isinstance(value, bool) else MASK


def mask_event(event: Any) -> Any:
    """The event with its profile's personal fields (data.object, previous_object) masked."""
    if not isinstance(event, dict):
        return event
    detail = event.get("detail")
    data = detail.get("data") if isinstance(detail, dict) else None
    if not isinstance(data, dict):
        return event
    masked_data = {
        key: _mask(value) if key in ("object", "previous_object") else value
        for key, value in data.items()
    }
    return {**event, "detail": {**detail, "data": masked_data}}  # type: ignore[dict-item]


def matching(letters: Sequence[DeadLetter], wanted: str) -> list[DeadLetter]:
    """The messages an id names: a message id, or an event id (all of its messages)."""
    return [x for x in letters if wanted in (x.message_id, x.event_id)]


def _describe(letter: DeadLetter, now: datetime) -> list[str]:
    first = letter.first_failure_at.isoformat() if letter.first_failure_at else "-"
    lines = [
        f"message {letter.message_id}",
        f"  shape          {letter.shape}",
        f"  error          {letter.error_class}",
        f"  reason         {one_line(letter.reason)}",
        f"  detail         {one_line(letter.detail or '-')}",
        f"  attempts       {'-' if letter.attempts is None else letter.attempts}",
        f"  first failure  {first}",
        f"  in the DLQ     since {letter.sent_at.isoformat()}",
        f"  age            {format_age(letter.age_seconds(now))} since the first failure",
        f"  function       {letter.handler or '-'}",
    ]
    for name in (DLQ_ATTR_EB_RULE_ARN, DLQ_ATTR_EB_TARGET_ARN):
        if name in letter.attributes:
            lines.append(f"  {name.lower():<14} {letter.attributes[name]}")
    return lines


def _reader(args: argparse.Namespace) -> DlqReader:
    """The DLQ's reader, its client made first: a bad --profile, no region or no credentials
    go up as they are (main names the setting) instead of reading as "cannot read the DLQ"."""
    client = boto3.client("sqs")
    queue_url = resolve_queue_url(args.queue_url, stack=args.stack)
    return DlqReader(queue_url, client, wait_seconds=default_wait_seconds())


def _find(args: argparse.Namespace) -> tuple[DlqReader, list[DeadLetter]]:
    reader = _reader(args)
    return reader, reader.scan(LIST_VISIBILITY_SECONDS)


def run_list(args: argparse.Namespace) -> int:
    started = time.monotonic()
    try:
        reader = _reader(args)
        letters = list_letters(reader)
    except DlqError as exc:
        raise CommandError(str(exc)) from exc
    now = datetime.now(UTC)
    if args.json:
        print(json.dumps([letter.to_dict(now) for letter in letters], indent=2))
        return 0
    if letters:
        print(render_table(letters, now))
    print(f"{summary_line(letters)} in {reader.queue_url} ({time.monotonic() - started:.1f}s)")
    return 0


def run_show(args: argparse.Namespace) -> int:
    try:
        reader, letters = _find(args)
    except DlqError as exc:
        raise CommandError(str(exc)) from exc
    _release(reader, letters, "show")
    found = matching(letters, args.id)
    if not found:
        raise CommandError(
            f"no message or event {args.id!r} among the {len(letters)} "
            f"visible message(s) of {reader.queue_url} (`auth0-sync dlq list` shows the ids)",
            code=EXIT_NEEDS_ATTENTION,
        )
    now = datetime.now(UTC)
    event = found[0].event
    shown = event if args.unmask else mask_event(event)
    if args.json:
        document = {
            "queue_url": reader.queue_url,
            "messages": [letter.to_dict(now) for letter in found],
            "event": shown,
            "masked": not args.unmask,
        }
        print(json.dumps(document, indent=2))
        return 0
    first = found[0]
    print(
        f"event {first.event_id or '-'} ({first.event_type or '-'}, user {first.user_id or '-'}): "
        f"{len(found)} message(s) in {reader.queue_url}"
    )
    for letter in found:
        print("\n".join(_describe(letter, now)))
    note = "" if args.unmask else " (personal fields masked; --unmask to show them)"
    print(f"the event{note}:")
    print(json.dumps(shown, indent=2) if shown is not None else f"  (none: {first.detail})")
    return 0


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def export_record(
    letter: DeadLetter, queue_url: str, reason: str, who: str, when: datetime
) -> dict[str, Any]:
    """What is deleted, exactly as it was (body and attributes), and why, by whom, when."""
    return {
        "deleted_at": when.isoformat(),
        "deleted_by": who,
        "deletion_reason": reason,
        "queue_url": queue_url,
        **letter.to_dict(when),
        "body": letter.body,
        "message_attributes": letter.attributes,
    }


def _append_export(path: Path, records: Sequence[dict[str, Any]]) -> None:
    # The export holds whole profiles: readable by this user only.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record, sort_keys=True) + "\n")


def run_delete(args: argparse.Namespace) -> int:
    reason = args.reason.strip()
    if not reason:
        raise CommandError("--reason must say why (it is logged)")
    try:
        reader, letters = _find(args)
    except DlqError as exc:
        raise CommandError(str(exc)) from exc
    chosen: dict[str, DeadLetter] = {}
    missing = []
    for wanted in args.ids:
        found = matching(letters, wanted)
        missing.extend([] if found else [wanted])
        chosen.update((x.message_id, x) for x in found)
    if missing:
        _release(reader, letters, "delete")
        raise CommandError(
            f"nothing deleted: no visible message or event "
            f"{', '.join(repr(m) for m in missing)} in {reader.queue_url}"
        )
    _release(reader, [x for x in letters if x.message_id not in chosen], "delete")
    targets = list(chosen.values())
    who, when = _operator(), datetime.now(UTC)
    if args.export:
        records = [export_record(x, reader.queue_url, reason, who, when) for x in targets]
        try:
            _append_export(Path(args.export), records)
        except OSError as exc:
            _release(reader, targets, "delete")
            raise CommandError(
                f"nothing deleted: cannot write --export {args.export}: {exc.strerror or exc}"
            ) from exc
    deleted, kept = 0, []
    for letter in targets:
        try:
            reader.delete(letter)
        except DlqError as exc:
            print(f"auth0-sync dlq delete: error: {exc}", file=sys.stderr)
            kept.append(letter)
            continue
        deleted += 1
        log = {
            "level": "WARNING",
            "message": "dead letter deleted",
            "timestamp": when.isoformat(),
            "queue_url": reader.queue_url,
            "message_id": letter.message_id,
            "event_id": letter.event_id,
            "user_id": letter.user_id,
            "failure_reason": letter.reason,
            "deletion_reason": reason,
            "deleted_by": who,
            "exported_to": args.export,
        }
        print(json.dumps(log), file=sys.stderr)
    _release(reader, kept, "delete")
    where = f"; exported to {args.export}" if args.export else ""
    print(f"deleted {deleted} of {len(targets)} message(s){where}")
    return 0 if deleted == len(targets) else 1


def register(subparsers: Any) -> None:
    dlq = subparsers.add_parser(
        "dlq",
        help="inspect the dead-letter queue; delete poison",
        epilog="examples:\n"
        "  auth0-sync dlq list --stack Auth0Sync --region eu-west-1\n"
        "  auth0-sync dlq show evt_05aLUFzSjDm1WyWHOoVO9q --stack Auth0Sync",
    )
    commands = dlq.add_subparsers(dest="dlq_command", required=True, metavar="COMMAND")
    listing = commands.add_parser(
        "list",
        help="one line per DLQ message: event id, type, user, failure, attempts, age",
        description="List the DLQ without changing it: messages are received with a short "
        "visibility timeout and released at once.",
        epilog="examples:\n  auth0-sync dlq list --stack Auth0Sync\n"
        "  auth0-sync dlq list --stack Auth0Sync --region eu-west-1 --json",
    )
    add_queue_argument(listing)
    listing.add_argument("--json", action="store_true", help="a JSON array of records")
    listing.set_defaults(func=run_list)

    show = commands.add_parser(
        "show",
        help="one event's messages, reasons, history and the event (personal fields masked)",
        description="Show every message of one event (or one message): shape, error, reason, "
        "attempts, first failure, function, and the event itself. The profile's personal "
        "fields (email, names, phone, metadata) are masked unless --unmask is given.",
        epilog="example:\n  auth0-sync dlq show evt_05aLUFzSjDm1WyWHOoVO9q",
    )
    show.add_argument("id", metavar="ID", help="an event id (evt_...) or a message id")
    add_queue_argument(show)
    show.add_argument("--unmask", action="store_true", help="show the personal fields")
    show.add_argument("--json", action="store_true", help="one JSON document")
    show.set_defaults(func=run_show)

    delete = commands.add_parser(
        "delete",
        help="delete a poison message for good, with the reason logged",
        description="Delete every message of the given events (or the given messages). "
        "Refused without --reason, which is logged (a JSON line on stderr, with who and "
        "when). With --export FILE, what is deleted is first appended to FILE as JSON Lines "
        "(body and attributes as they were, enough to send it again); nothing is deleted "
        "if the export cannot be written, or if an id is not found.",
        epilog='example:\n  auth0-sync dlq delete evt_05aLUFzSjDm1WyWHOoVO9q --reason "test '
        'tenant user, not a customer" --export deleted.jsonl',
    )
    delete.add_argument("ids", nargs="+", metavar="ID", help="event ids or message ids")
    add_queue_argument(delete)
    delete.add_argument("--reason", required=True, help="why it is deleted (logged)")
    delete.add_argument(
        "--export",
        metavar="FILE",
        type=output_file(),
        help="first append what is deleted to FILE (JSON Lines)",
    )
    delete.set_defaults(func=run_delete)
