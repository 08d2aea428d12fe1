"""The Auth0 Events API (`GET /api/v2/events`): a tenant's past events as Server-Sent Events.

A read starts at `from_timestamp`, or after an offset sent as `Last-Event-ID` (each SSE
message's `id:`), filtered by `event_type`; it needs scope `read:events`. A 429 is waited
out (Retry-After); a 410 means the offset is older than the API keeps, which only a new
start time can get past. A stream that closes is opened again after its last offset; one
that ends, or stays idle for `idle_seconds`, without anything new is read to the end.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import requests

from auth0_sync.errors import ManagementApiError
from auth0_sync.streams.client import API_PREFIX, ManagementClient

READ_EVENTS = "read:events"
EVENTS_PATH = "/events"
MAX_RECONNECTS = 1000


@dataclass(frozen=True)
class StreamedEvent:
    """One SSE message: its offset, its SSE event name and the Auth0 CloudEvent it holds."""

    offset: str | None
    name: str | None
    event: dict[str, Any]


def parse_sse(lines: Iterator[str]) -> Iterator[tuple[str | None, str | None, str]]:
    """(id, event, data) of each message of a text/event-stream (the WHATWG rules we need:
    `field: value` lines, `data` lines joined by newlines, `:` comments, a blank line ends
    a message)."""
    offset: str | None = None
    name: str | None = None
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield offset, name, "\n".join(data)
            name, data = None, []
            continue
        if line.startswith(":"):
            continue
        key, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if key == "data":
            data.append(value)
        elif key == "id":
            offset = value
        elif key == "event":
            name = value
    if data:
        yield offset, name, "\n".join(data)


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
        """Every event from `since` (or after the offset `last_event_id`), reconnecting after
        the last offset when the server closes the stream."""
        offset = last_event_id
        for _ in range(MAX_RECONNECTS):
            fresh = False
            for item in self._read(since, offset, event_types, idle_seconds):
                fresh = True
                offset = item.offset or offset
                yield item
            if not fresh or offset is None:
                return

    def _read(
        self,
        since: str | None,
        offset: str | None,
        event_types: Sequence[str],
        idle_seconds: float,
    ) -> Iterator[StreamedEvent]:
        call = f"GET {API_PREFIX}{EVENTS_PATH}"
        params: dict[str, str] = {}
        if offset is None and since:
            params["from_timestamp"] = since
        if event_types:
            params["event_type"] = ",".join(event_types)
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
                for sse_id, name, data in parse_sse(line or "" for line in lines):
                    try:
                        event = json.loads(data)
                    except ValueError as exc:
                        raise ManagementApiError(
                            call, f"event {sse_id}: the data is not JSON ({exc})"
                        ) from exc
                    if isinstance(event, dict):
                        yield StreamedEvent(sse_id, name, event)
            except (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError):
                return  # idle past `idle_seconds`, or dropped: the caller goes on from the offset
