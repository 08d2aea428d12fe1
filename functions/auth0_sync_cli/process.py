"""`auth0-sync process FILE`: run EventBridge events through the handlers' code, in order."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

from auth0_sync.buffering import Topology
from auth0_sync.dead_letter import SqsDeadLetterQueue
from auth0_sync.events import identity_of
from auth0_sync.names import FUNCTION_TIMEOUT_SECONDS
from auth0_sync.outcome import Outcome
from auth0_sync.replay.letters import read_letter
from auth0_sync_cli.argtypes import real_number
from auth0_sync_cli.buffered import BufferedRunner
from auth0_sync_cli.dry_run import plan_events, render
from auth0_sync_cli.exits import (
    EXIT_CODES_HELP,
    EXIT_INTERNAL,
    EXIT_NEEDS_ATTENTION,
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    explain,
)
from auth0_sync_cli.local_mode import LocalSync, build_local_sync, check_ready
from auth0_sync_cli.paths import OUTPUT_DIR_HELP, default_output
from auth0_sync_cli.replay.command import quiet_handler_logs
from auth0_sync_cli.replay.progress import on_a_terminal
from auth0_sync_cli.runner import LocalRunner
from auth0_sync_cli.tally import Tally

# Deeper than any Auth0 event (the envelope is 4 levels, DynamoDB's own limit is 32): such
# input is a mistake, and would end deep inside the sync in a RecursionError.
MAX_NESTING = 64
UTF8_BOM = b"\xef\xbb\xbf"
_CONSTANT = re.compile(rb"[:\[,]\s*(-?Infinity|NaN)\b")


class InputError(CommandError):
    """The input cannot be read as events; the message names the file and the line."""


@dataclass(frozen=True)
class Input:
    """Where the events come from, and how many the check found."""

    name: str
    count: int
    events: Iterator[tuple[str, Any]]  # (where: "line 3" / "element 2", event)


class _NotJson(ValueError):
    pass


def _reject_constant(token: str) -> Any:
    raise _NotJson(f"{token} is not valid JSON (write null or a number)")


def _depth_over_limit(value: Any) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_NESTING:
            return True
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return False


def _unwrap(value: Any) -> Any:
    """A line of a dead-letters file this command wrote is run again as its event."""
    if isinstance(value, dict) and "event" in value and "reason" in value and "detail" not in value:
        return value["event"]
    return value


def _parse_line(raw: bytes, name: str, number: int) -> Any:
    """One JSON Lines line; InputError naming the line for anything that is not JSON."""
    try:
        text = raw.decode("utf-8").rstrip("\r\n")  # so a column is one of this line
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{name}:{number}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at column "
            f"{exc.start + 1}); save the file as UTF-8"
        ) from exc
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{name}:{number}: not valid JSON: {exc.msg} (column {exc.colno})"
        ) from exc
    except _NotJson as exc:
        raise InputError(f"{name}:{number}: {exc}") from exc
    except RecursionError as exc:
        raise InputError(f"{name}:{number}: nested deeper than {MAX_NESTING} levels") from exc
    if _depth_over_limit(value):
        raise InputError(f"{name}:{number}: nested deeper than {MAX_NESTING} levels")
    return _unwrap(value)


def _lines(stream: Iterable[bytes], name: str) -> Iterator[tuple[str, Any]]:
    for number, raw in enumerate(stream, start=1):
        if number == 1 and raw.startswith(UTF8_BOM):
            raw = raw[len(UTF8_BOM) :]
        if raw.strip():
            yield f"line {number}", _parse_line(raw, name, number)


def _document(data: bytes, name: str) -> list[tuple[str, Any]]:
    """A whole file as one JSON document: an array of events, or one (pretty-printed) event."""
    data = data.removeprefix(UTF8_BOM)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(
            f"{name}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); save the file as UTF-8"
        ) from exc
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        hint = ""
        if exc.msg == "Extra data":
            hint = (
                "; give one JSON object, a JSON array of events, or one event per line (JSON Lines)"
            )
        raise InputError(
            f"{name}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}{hint}"
        ) from exc
    except _NotJson as exc:
        found = _CONSTANT.search(data)
        line = data.count(b"\n", 0, found.start()) + 1 if found else 1
        raise InputError(f"{name}:{line}: {exc}") from exc
    except RecursionError as exc:
        raise InputError(f"{name}: nested deeper than {MAX_NESTING} levels") from exc
    if isinstance(value, dict):
        if _depth_over_limit(value):
            raise InputError(f"{name}: nested deeper than {MAX_NESTING} levels")
        return [("the event", _unwrap(value))]
    if not isinstance(value, list):
        raise InputError(
            f"{name}: a JSON {type(value).__name__} is not an event: give one JSON object, "
            "a JSON array of events, or one event per line (JSON Lines)"
        )
    events = []
    for index, event in enumerate(value, start=1):
        if _depth_over_limit(event):
            raise InputError(
                f"{name}: element {index} of the array is nested deeper than {MAX_NESTING} levels"
            )
        events.append((f"element {index}", _unwrap(event)))
    return events


HEAD_BYTES = 4096  # read first; more only when the first line is longer


def _is_one_document(head: bytes) -> bool:
    """An array, or an object that does not end on its first line (pretty-printed)."""
    start = head.removeprefix(UTF8_BOM).lstrip()
    if start.startswith(b"["):
        return True
    if not start.startswith(b"{"):
        return False
    end = start.find(b"\n")
    first_line = (start if end < 0 else start[:end]).rstrip()
    return not first_line.endswith(b"}")


def read_events(path: str) -> Input:
    """The input's events: JSON Lines (blank lines ignored), one JSON array, or one object.

    Every event is checked before the first is returned, so bad input changes nothing. A
    JSON Lines file is then read again one line at a time: memory stays flat however long
    the file. Standard input cannot be read twice and is held in memory.
    """
    if path == "-":
        stdin = sys.stdin
        raw = getattr(stdin, "buffer", None)  # None when replaced by a text stream
        name, data = "<stdin>", raw.read() if raw is not None else stdin.read().encode()
        if _is_one_document(data):
            events = _document(data, name)
        else:
            events = list(_lines(data.splitlines(keepends=True), name))
        return _checked(name, len(events), iter(events), data)
    try:
        with open(path, "rb") as stream:
            head = stream.read(HEAD_BYTES)
            started = head.removeprefix(UTF8_BOM).lstrip()
            if started and b"\n" not in started:
                # The first line is longer than the head (a big event, or a dead letter of
                # one): all of it decides whether this is JSON Lines.
                head += stream.readline()
            if _is_one_document(head):
                events = _document(head + stream.read(), path)
                return _checked(path, len(events), iter(events), head)
            stream.seek(0)
            count = sum(1 for _ in _lines(stream, path))  # check only
    except IsADirectoryError as exc:
        raise InputError(f"{path}: is a directory; give an events file") from exc
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from exc
    return _checked(path, count, _stream_lines(path), head)


def _checked(name: str, count: int, events: Iterator[tuple[str, Any]], head: bytes) -> Input:
    if count == 0:
        if not head:
            what = "the file is empty"
        elif not head.removeprefix(UTF8_BOM).strip():
            what = "it holds only blank lines"
        else:
            what = "the JSON array is empty"
        raise InputError(f"{name}: no events: {what}")
    return Input(name, count, events)


def _stream_lines(path: str) -> Iterator[tuple[str, Any]]:
    with open(path, "rb") as stream:
        yield from _lines(stream, path)


# -- where the dead letters go --------------------------------------------------------------


def default_dead_letters_path(now: datetime | None = None) -> str:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"dead-letters-{stamp}.jsonl"


def open_dead_letters(path: str) -> IO[str]:
    """Created before anything runs, so a path that cannot be written fails first."""
    try:
        return open(path, "x", encoding="utf-8")  # closed by `run`
    except FileExistsError as exc:
        raise CommandError(f"--dead-letters {path}: the file exists; give a new file name") from exc
    except OSError as exc:
        raise CommandError(f"--dead-letters {path}: cannot create it: {exc.strerror}") from exc


def dead_letter_lines(local: LocalSync) -> list[str]:
    """Each dead-lettered event, with why, as one JSON line that `process` runs again."""
    lines = []
    for number, (body, attributes) in enumerate(getattr(local.dead_letters, "messages", [])):
        message = {
            "MessageId": f"memory-{number}",
            "ReceiptHandle": "",
            "Body": body,
            "MessageAttributes": {k: {"StringValue": v} for k, v in attributes.items()},
        }
        letter = read_letter(message)
        record = {
            "reason": letter.reason,
            "message": letter.detail,
            "error_class": letter.error_class,
            "attempts": letter.attempts,
            "handler": letter.handler,
            "event": letter.event,
        }
        lines.append(json.dumps(record) + "\n")
    return lines


# -- the command -------------------------------------------------------------------------------


def _stopped(where: str, raw: Any, done: int, exc: Exception) -> CommandError:
    """The run cannot go on: say which event, what ran, and what did not."""
    event_id = identity_of(raw)["event_id"] or "without an id"
    cause = explain(exc) or f"{type(exc).__name__}: {exc} (a bug: run again with --debug)"
    return CommandError(
        f"stopped at {where} (event {event_id}): {cause}. The {done} event(s) before it ran; "
        f"nothing from {where} on ran: fix the cause and run the file again (events already "
        "applied are skipped as duplicates)",
        code=EXIT_INTERNAL if explain(exc) is None else EXIT_USAGE,
    )


def failure_line(outcome: Outcome) -> str:
    """One line for an event that ended in the DLQ: its ids and why (ids and reasons only,
    as in the logs: the CRM's answers are redacted before they become a reason)."""
    ids = "  ".join(x or "-" for x in (outcome.event_id, outcome.event_type, outcome.user_id))
    detail = f": {outcome.message}" if outcome.message else ""
    return f"{ids}  dead-lettered: {outcome.reason}{detail}"


def run(args: argparse.Namespace) -> int:
    # The handlers' per-attempt log lines ("transient failure; the event will be retried",
    # three times, without the event's id) are Lambda's; here each event that ends in the
    # DLQ gets one line of its own, on stderr, with its id and reason.
    with quiet_handler_logs():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    source = read_events(args.file)
    if args.dry_run:
        return _dry_run(args, source)
    tally = Tally()
    progress = on_a_terminal("process", source.count)

    def on_outcome(outcome: Outcome) -> None:
        tally.add(outcome)
        if outcome.status == "dead_lettered":
            if progress is not None:
                progress.clear()  # the event's own line, then the progress line again
            print(failure_line(outcome), file=sys.stderr, flush=True)
        if progress is not None:
            progress.update(outcome)

    local = build_local_sync(args.state, on_outcome=on_outcome, timeout_seconds=args.timeout)
    if local.uses_aws and args.dead_letters:
        raise CommandError(
            "--dead-letters is for in-memory state: with AWS state the dead letters go to "
            "the DLQ (`auth0-sync dlq list`)"
        )
    check_ready(local)
    runner = _runner(args, local)
    dead_letters_path = None
    if not local.uses_aws:
        dead_letters_path = args.dead_letters or default_output(default_dead_letters_path())
    dead_letters = open_dead_letters(dead_letters_path) if dead_letters_path else None
    try:
        at: dict[str, Any] = {"where": "", "raw": None, "done": 0}

        def feed() -> Iterator[Any]:
            for done, (where, raw) in enumerate(source.events):
                at.update(where=where, raw=raw, done=done)
                yield raw

        try:
            # As Lambda: a failed event is retried later while the next ones go on.
            runner.run_all(feed())
        except Exception as exc:
            # The runner dead-letters every event it cannot apply; an error escaping it
            # (the DLQ itself unreachable, a bug) leaves this event nowhere: stop here.
            raise _stopped(at["where"], at["raw"], at["done"], exc) from exc
    finally:
        if progress is not None:
            progress.clear()
        if dead_letters is not None:
            lines = dead_letter_lines(local)
            dead_letters.writelines(lines)
            dead_letters.close()
            if not lines and dead_letters_path:
                os.remove(dead_letters_path)
    failed = sum(tally.failed.values())
    where_letters = _where(local, dead_letters_path) if failed else None
    if args.json:
        document: dict[str, Any] = {
            **tally.to_dict(),
            "state": "aws" if local.uses_aws else "memory",
            "dead_letters": where_letters,
        }
        print(json.dumps(document, indent=2))
    else:
        print(f"processed {source.name} ({'local AWS' if local.uses_aws else 'in-memory state'}):")
        print(tally.render())
        if where_letters:
            print(where_letters["say"])
    return EXIT_NEEDS_ATTENTION if failed else EXIT_OK


def _runner(args: argparse.Namespace, local: LocalSync) -> LocalRunner | BufferedRunner:
    """Lambda's asynchronous invocations (direct), or a queue per type drained in batches
    (buffered: needs local AWS, where the queues are)."""
    if args.topology != Topology.BUFFERED:
        return local.runner
    if not local.uses_aws or not isinstance(local.dead_letters, SqsDeadLetterQueue):
        raise CommandError(
            "--topology buffered runs against local AWS, where its queues are: start "
            "`auth0-sync local-aws`, run its export lines, and give --state aws"
        )
    assert local.settings is not None
    return BufferedRunner(
        local.runner.service,
        local.dead_letters.client,
        local.dead_letters.queue_url,
        crm_type=local.settings.crm_type,
        timeout_seconds=args.timeout,
    )


def _dry_run(args: argparse.Namespace, source: Input) -> int:
    """What each event would do, with no write (`auth0_sync_cli.dry_run`)."""
    local = build_local_sync(args.state, timeout_seconds=args.timeout)
    check_ready(local)
    assert local.settings is not None
    plans = plan_events(local.settings, source.events, local.uses_aws, args.timeout)
    print(render(plans, local.settings, source.name, args.json))
    return EXIT_OK


def _where(local: LocalSync, path: str | None) -> dict[str, Any]:
    if local.uses_aws:
        url = getattr(local.dead_letters, "queue_url", None)
        return {
            "queue_url": url,
            "say": f"dead letters are in the DLQ {url}: see them with `auth0-sync dlq list`, "
            "run them again with `auth0-sync replay` once the cause is fixed",
        }
    return {
        "file": path,
        "say": f"dead letters written to {path}: run them again with "
        f"`auth0-sync process {path}` once the cause is fixed",
    }


EXAMPLES = """examples:
  auth0-sync process tests/events/user_created.json
  auth0-sync process events.jsonl --json
  auth0-sync process events.jsonl --dry-run     # what each event would do, no write
  auth0-sync process events.jsonl --state aws   # with local-aws's export lines set
  auth0-sync process events.jsonl --state aws --topology buffered"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "process",
        help="run EventBridge events (one JSON object, a JSON array, or JSON Lines) through "
        "the sync",
        description="Run events through the same routing and handler code Lambda runs. The "
        "input is one JSON object (an event, pretty-printed or not), a JSON array of events, "
        "or JSON Lines (one event per line), in UTF-8; it is checked whole before anything "
        "runs. Configuration: CRM_BASE_URL, CRM_API_TOKEN (or CRM_TOKEN_SECRET_ARN), and "
        "AWS_ENDPOINT_URL to use `auth0-sync local-aws`.",
        epilog=f"{EXAMPLES}\n\n{EXIT_CODES_HELP}",
    )
    parser.add_argument("file", metavar="FILE", help="events file, or - for standard input")
    parser.add_argument("--json", action="store_true", help="print one JSON document of counts")
    parser.add_argument(
        "--state",
        choices=("auto", "aws", "memory"),
        default="auto",
        help="sync state and DLQ: AWS APIs (local-aws) or memory; "
        "auto = aws when AWS_ENDPOINT_URL is set",
    )
    parser.add_argument(
        "--timeout",
        type=real_number(above_zero=True),
        default=FUNCTION_TIMEOUT_SECONDS,
        metavar="SECONDS",
        help="each invocation's time budget, as the function's timeout in AWS "
        "(default %(default)s); a CRM outage is waited out within it, then retried",
    )
    parser.add_argument(
        "--topology",
        choices=[str(t) for t in Topology],
        default=str(Topology.DIRECT),
        help="direct: each event is its own invocation, retried as Lambda retries; "
        "buffered: each type's events go to a queue of their own on local AWS, drained in "
        "batches through the handlers' batch code, as the stack's `topology=buffered` "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="write nothing: print what each event would do under the configured SYNC_MODE "
        "and policies (create, update, deactivate, skip and why) and the requests it would "
        "send; each event is planned against the CRM and the state as they are now",
    )
    parser.add_argument(
        "--dead-letters",
        metavar="FILE",
        help="in-memory state: write the dead-lettered events here, as JSON Lines that "
        "`process` runs again (default: dead-letters-<UTC time>.jsonl in "
        f"{OUTPUT_DIR_HELP}, written only when an event is dead-lettered)",
    )
    parser.set_defaults(func=run)
