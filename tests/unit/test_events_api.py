"""The Events API's Server-Sent Events, read message by message, in the shapes Auth0
documents (https://auth0.com/docs/customize/events/consume-events-with-events-api; SDK
types `EventStreamCloudEventUserCreated` {offset, event}, `EventStreamCloudEventOffsetOnlyMessage`
{offset} and `EventStreamCloudEventErrorMessage` {error: {code, message, offset?}})."""

from __future__ import annotations

import json

import pytest

from auth0_sync.errors import ManagementApiError
from auth0_sync_cli.events_api import SseMessage, _stream_error, _streamed, parse_sse

CLOUD_EVENT = {
    "specversion": "1.0",
    "type": "user.created",
    "source": "urn:auth0:acme.eu.auth0.com",
    "id": "evt_4fPq9XkR2mTz8LwB7nVc1d",
    "time": "2026-03-04T10:15:30.912Z",
    "a0tenant": "acme",
    "a0stream": "est_9hQw2ZpL6rTy4KmN8bVx3s",
    "data": {"object": {"user_id": "auth0|65e5a1f0c2b7d94e1a3f0c11"}},
}
STREAM = [
    ":connected",
    "",
    "retry: 2000",
    "",
    "id: c1",
    "event: user.created",
    "data: " + json.dumps({"offset": "c1", "event": CLOUD_EVENT}),
    "",
    ": heartbeat",
    "",
    "id: c2",
    "event: offset-only",
    'data: {"offset": "c2"}',
    "",
]


def test_the_documented_stream_reads_as_comment_retry_event_comment_heartbeat() -> None:
    messages = list(parse_sse(iter(STREAM)))

    assert [m.kind for m in messages] == ["comment", "retry", "message", "comment", "message"]
    assert messages[1].data == "2000"
    assert (messages[2].last_id, messages[2].event) == ("c1", "user.created")
    assert (messages[4].last_id, messages[4].event) == ("c2", "offset-only")


def test_an_event_message_gives_the_cloud_event_under_event() -> None:
    message = list(parse_sse(iter(STREAM)))[2]

    item = _streamed("GET /api/v2/events", message)

    assert item.offset == "c1"
    assert item.event == CLOUD_EVENT
    assert not item.caught_up


def test_an_offset_only_message_is_a_heartbeat_with_its_offset_and_no_event() -> None:
    message = list(parse_sse(iter(STREAM)))[4]

    item = _streamed("GET /api/v2/events", message)

    assert (item.offset, item.event, item.caught_up) == ("c2", None, True)


def test_a_bare_cloud_event_is_not_taken_for_the_documented_shape() -> None:
    # What our old fake wrote: the CloudEvent as the whole `data`.
    message = SseMessage("message", "c3", "user.created", json.dumps(CLOUD_EVENT))

    item = _streamed("GET /api/v2/events", message)

    assert item.event is None  # counted as an unreadable message, not run as an event


@pytest.mark.parametrize("code", ["timeout", "connection_timeout"])
def test_a_timed_out_stream_is_resumed(code: str) -> None:
    data = json.dumps({"error": {"code": code, "message": "The stream timed out."}})

    assert _stream_error("GET /api/v2/events", "c1", SseMessage("message", "c1", "error", data))


@pytest.mark.parametrize(
    ("code", "says"),
    [
        ("cursor_expired", "--since TIME"),
        ("invalid_cursor", "--since TIME"),
        ("payload_too_large", "payload_too_large: too big"),
    ],
)
def test_other_stream_errors_stop_with_their_code(code: str, says: str) -> None:
    data = json.dumps({"error": {"code": code, "message": "too big"}})

    with pytest.raises(ManagementApiError) as raised:
        _stream_error("GET /api/v2/events", "c1", SseMessage("message", "c1", "error", data))

    assert code in raised.value.message
    assert says in raised.value.message
