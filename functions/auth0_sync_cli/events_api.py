"""The Auth0 Events API (`GET /api/v2/events`): a tenant's past events as Server-Sent Events.

As documented (https://auth0.com/docs/customize/events/consume-events-with-events-api, the
API page https://auth0.com/docs/api/management/v2/events/subscribe-events, and Auth0's
generated SDK types `EventStreamSubscribeEventsResponseContent`,
`EventStreamCloudEventUserCreated`, `EventStreamCloudEventOffsetOnlyMessage`):

- the stream opens with the comment `:connected` and a `retry: <ms>` line;
- each event is a message `id: <offset>`, `event: <type>`, and a `data` line holding
  `{"offset": "<offset>", "event": {<the CloudEvent>}}`: the CloudEvent is under `event`;
- `event: offset-only` messages hold `{"offset": "<offset>"}` only: heartbeats that move the
  cursor once the client has caught up; comment lines (`: ...`) are heartbeats too;
- `event: error` carries `{"error": {"code", "message", "offset"?}}` and the server closes
  the stream after it (SDK type `EventStreamCloudEventErrorMessage`): a `timeout` or
  `connection_timeout` is resumed from the last offset, a `cursor_expired` or
  `invalid_cursor` is answered like a 410, any other code stops the read with its message;
- the server closes the connection every few minutes; the client reconnects with the last
  offset as `Last-Event-ID` (every message's offset counts, offset-only ones included).

A read starts at `from_timestamp`, or after an offset sent as `Last-Event-ID`, filtered by
`event_type` (repeated, one per type); it needs scope `read:events`. A 429 is waited out
(Retry-After); a 410 means the offset is older than the API keeps, which only a new start
time can get past. A connection the server closes is opened again after its last offset; a
stream that sends nothing but comment heartbeats, or nothing at all, for `idle_seconds`
is read to the end.

Why not the official `auth0-python` SDK (6.8, generated from the same API description; it
types this stream as `EventStreamSubscribeEventsResponseContent`): measured on Python 3.11,
importing its Management client with the event-stream resources costs about as much CPU as
our whole stream-health handler (~0.6 s; ~0.3 s more on top of the handler, which also pays
for the SDK's httpx, pydantic and aiohttp), and its typed Events API parser ~2.4 s, where our
client is ~0.3 s; it installs ~95 MB with its dependencies (`auth0` alone 54 MB); and its
`events.subscribe` reads one connection without resuming, drops event names it does not
know and events its models reject with only a logged warning, where we must count each.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests

from auth0_sync.errors import ManagementApiError
from auth0_sync.streams.client import API_PREFIX, ManagementClient

READ_EVENTS = "read:events"
EVENTS_PATH = "/events"
MAX_RECONNECTS = 1000
OFFSET_ONLY = "offset-only"
ERROR = "error"
RESUMABLE_ERRORS = frozenset({"timeout", "connection_timeout"})
CURSOR_ERRORS = frozenset({"cursor_expired", "invalid_cursor"})


@dataclass(frozen=True)
class StreamedEvent:
    """One data message of the stream: its offset, its SSE event name (an event type,
    `offset-only`) and the CloudEvent it holds (None for an offset-only heartbeat, or for
    a message whose `data` holds no CloudEvent object under `event`)."""

    offset: str | None
    name: str | None
    event: dict[str, Any] | None

    @property
    def caught_up(self) -> bool:
        """An offset-only heartbeat: the server has sent every event up to now."""
        return self.name == OFFSET_ONLY


@dataclass(frozen=True)
class SseMessage:
    """One thing a text/event-stream says: a message (`data`), a comment, or a `retry`."""

    kind: str  # "message", "comment" or "retry"
    last_id: str | None = None
    event: str | None = None
    data: str = ""


def parse_sse(lines: Iterator[str]) -> Iterator[SseMessage]:
    """The messages, comments and retry fields of a text/event-stream (the WHATWG rules we
    need: `field: value` lines, `data` lines joined by newlines, the last event ID carried
    over from message to message, a blank line ends a message)."""
    last_id: str | None = None
    name: str | None = None
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield SseMessage("message", last_id, name, "\n".join(data))
            name, data = None, []
            continue
        if line.startswith(":"):
            yield SseMessage("comment", last_id, None, line[1:].strip())
            continue
        key, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if key == "data":
            data.append(value)
        elif key == "id":
            last_id = value
        elif key == "event":
            name = value
        elif key == "retry" and value.isdigit():
            yield SseMessage("retry", last_id, None, value)
    if data:
        yield SseMessage("message", last_id, name, "\n".join(data))


@dataclass
class _Connection:
    """How one connection went: the server's retry advice, and whether it went idle."""

    retry_seconds: float = 1.0
    idle: bool = False
    resume: bool = False
    last_data: float = field(default_factory=time.monotonic)


class EventsClient(ManagementClient):
    """Reads the Events API on the event-stream client's token and error messages."""

    def events(
        self,
        *,
        since: str | None = None,
        last_event_id: str | None = None,
        event_types: Sequence[str] = (),
        idle_seconds: float = 10.0,
    ) -> Iterator[StreamedEvent]:
        """Every message from `since` (or after the offset `last_event_id`), reconnecting
        after the last offset when the server closes the stream, until the stream goes
        idle or a connection brings nothing."""
        offset = last_event_id
        for _ in range(MAX_RECONNECTS):
            connection = _Connection()
            fresh = False
            for item in self._read(since, offset, event_types, idle_seconds, connection):
                fresh = True
                offset = item.offset or offset
                yield item
            if connection.idle or not (fresh or connection.resume):
                return
            if offset is None and not connection.resume:
                return
            self._sleep(connection.retry_seconds)

    def _read(
        self,
        since: str | None,
        offset: str | None,
        event_types: Sequence[str],
        idle_seconds: float,
        connection: _Connection,
    ) -> Iterator[StreamedEvent]:
        call = f"GET {API_PREFIX}{EVENTS_PATH}"
        params: dict[str, str | list[str]] = {}
        if offset is None and since:
            params["from_timestamp"] = since
        if event_types:
            params["event_type"] = list(event_types)  # repeated, one per type
        headers = {"Accept": "text/event-stream", "Authorization": f"Bearer {self._token()}"}
        if offset is not None:
            headers["Last-Event-ID"] = offset
        url = f"{self.credentials.base_url}{API_PREFIX}{EVENTS_PATH}"
        attempt = 1
        while True:
            try:
                response = self._session.get(
                    url,
                    params=params,
                    headers=headers,
                    stream=True,
                    timeout=(self._timeout[0], idle_seconds),
                )
            except requests.RequestException as exc:
                raise ManagementApiError(
                    call, self._scrub(f"cannot reach {self.credentials.base_url} ({exc})")
                ) from exc
            if response.status_code == 429 and attempt < self._max_attempts:
                self._sleep(self._retry_delay(response, attempt))
                attempt += 1
                continue
            break
        if response.status_code == 410:
            raise ManagementApiError(
                call,
                f"410 Gone: the offset {offset} is older than the Events API keeps; start "
                "again with --since TIME (the time of the last event that was applied)",
                410,
            )
        if response.status_code != 200:
            raise self._api_error(call, READ_EVENTS, response, None)
        with response:
            try:
                lines = response.iter_lines(decode_unicode=True)
                for message in parse_sse(line or "" for line in lines):
                    if message.kind == "retry":
                        connection.retry_seconds = int(message.data) / 1000
                    elif message.kind == "comment":
                        if time.monotonic() - connection.last_data >= idle_seconds:
                            connection.idle = True  # nothing but heartbeats: caught up
                            return
                    elif message.event == ERROR:
                        connection.resume = _stream_error(call, offset, message)
                        return
                    else:
                        yield _streamed(call, message)
                        # Silence is counted from when we listen again, not while the
                        # caller ran the event.
                        connection.last_data = time.monotonic()
            except (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError):
                # Silent past `idle_seconds` (the read timed out), or dropped by the server.
                connection.idle = time.monotonic() - connection.last_data >= idle_seconds
                return


def _streamed(call: str, message: SseMessage) -> StreamedEvent:
    """The offset and CloudEvent of one data message (`{"offset", "event"}`)."""
    try:
        payload = json.loads(message.data)
    except ValueError as exc:
        raise ManagementApiError(
            call, f"message {message.last_id}: the data is not JSON ({exc})"
        ) from exc
    if not isinstance(payload, dict):
        return StreamedEvent(message.last_id, message.event, None)
    offset = payload.get("offset")
    offset = offset if isinstance(offset, str) and offset else message.last_id
    event = payload.get("event")
    return StreamedEvent(offset, message.event, event if isinstance(event, dict) else None)


def _stream_error(call: str, offset: str | None, message: SseMessage) -> bool:
    """True when an `event: error` message says to resume from the last offset; raises
    for the others."""
    try:
        payload = json.loads(message.data)
    except ValueError:
        payload = None
    error = payload.get("error") if isinstance(payload, dict) else None
    error = error if isinstance(error, dict) else {}
    code = str(error.get("code", "unknown"))
    text = str(error.get("message", message.data[:500]))
    if code in RESUMABLE_ERRORS:
        return True
    if code in CURSOR_ERRORS:
        raise ManagementApiError(
            call,
            f"{code}: the offset {offset} cannot be resumed ({text}); start again with "
            "--since TIME (the time of the last event that was applied)",
            410,
        )
    raise ManagementApiError(call, f"the Events API ended the stream: {code}: {text}")
