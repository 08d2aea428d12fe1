"""A fake Auth0 Management API for event streams: a real HTTP server on loopback.

Flask served by waitress on 127.0.0.1, port 0, in a thread. It implements the token endpoint
(client credentials, audience checked, `expires_in` returned) and the event-stream endpoints
the CLI and the health check call, checks the bearer token and its scopes like Auth0 does,
keeps streams and failed deliveries in memory, and records every request so tests can
assert the exact calls. Knobs force 401, 403, 409 and 429 (with Retry-After).

Users exports (`POST /api/v2/jobs/users-exports`, `GET /api/v2/jobs/{id}`) as Auth0
documents them: the job is pending for `export_pending_polls` polls, then completed with a
`location` served by this server under a path of its own, without our bearer token, as
gzipped NDJSON holding the requested fields of each user; the link expires
`export_ttl_seconds` after the job completes (403 "Request has expired", as S3 answers an
expired pre-signed URL).

The Events API (`GET /api/v2/events`, scope read:events) as Auth0 documents it
(https://auth0.com/docs/customize/events/consume-events-with-events-api and the API page
https://auth0.com/docs/api/management/v2/events/subscribe-events; Auth0's generated SDK
types `EventStreamSubscribeEventsResponseContent`, `EventStreamCloudEventUserCreated` and
`EventStreamCloudEventOffsetOnlyMessage` in node-auth0's `Management` namespace): a
Server-Sent Events stream that opens with the comment `:connected` and a `retry: <ms>` line;
each event is a message `id: <offset>`, `event: <type>`, `data: {"offset": "<offset>",
"event": {<the CloudEvent>}}`; once caught up, the server sends `event: offset-only`
messages `data: {"offset": "<offset>"}` as heartbeats (or `: heartbeat` comments, with
`comment_heartbeats`) and keeps the connection open until it closes it for load balancing
(`connection_seconds`); the client resumes with `Last-Event-ID` (or `from`). Filters:
`from_timestamp` (RFC 3339) and `event_type`, repeated once per type (a value outside the
documented enum is a 400). At most `events_per_connection` events before the server closes
the stream, 410 for an offset in `expired_offsets` or one it never gave, 429 with
Retry-After through `fail_next`. `refuse_after_connections` is the tests' safety net: a
client that never stops gets a 503 instead of running forever.

Organizations (`GET /api/v2/organizations`, scope read:organizations, and
`GET /api/v2/organizations/{id}/members`, scope read:organization_members) as Auth0
documents them (https://auth0.com/docs/api/management/v2/organizations/get-organizations
and .../get-organization-members; node-auth0 `Management.ListOrganizationsRequestParameters`
and `MembersClient.list`): checkpoint paging with `take` (default 50, at most 100) and
`from` (the `next` of the previous page); an answer `{"organizations": [...], "next": id}`
(`{"members": [...], "next": id}`), `next` left out on the last page. Without `take` or
`from` the first page comes as a bare list (offset paging, not used by the sync). A
member's roles (`[{"id", "name"}]`) only with `fields=roles`, which also needs the scope
read:organization_member_roles.
"""

from __future__ import annotations

import gzip
import json
import re
import secrets
import string
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask, Response, jsonify, request
from waitress.server import create_server

from auth0_sync_cli.fakes.loopback import stop_waitress

ALL_SCOPES = frozenset(
    {
        "read:event_streams",
        "create:event_streams",
        "update:event_streams",
        "delete:event_streams",
        "read:event_deliveries",
        "update:event_deliveries",
        "read:users",
        "read:events",
        "read:organizations",
        "read:organization_members",
        "read:organization_member_roles",
    }
)
KNOWN_EVENT_TYPES = frozenset({"user.created", "user.updated", "user.deleted"})
# The `event_type` enum of `GET /api/v2/events`
# (https://auth0.com/docs/api/management/v2/events/subscribe-events).
EVENTS_API_TYPES = frozenset(
    {
        *KNOWN_EVENT_TYPES,
        "group.created",
        "group.deleted",
        "group.member.added",
        "group.member.deleted",
        "group.role.assigned",
        "group.role.deleted",
        "group.updated",
        "organization.connection.added",
        "organization.connection.removed",
        "organization.connection.updated",
        "organization.created",
        "organization.deleted",
        "organization.group.role.assigned",
        "organization.group.role.deleted",
        "organization.member.added",
        "organization.member.deleted",
        "organization.member.role.assigned",
        "organization.member.role.deleted",
        "organization.updated",
    }
)
CLIENT_ID = "fake-client-id"
CLIENT_SECRET = "fake-client-secret-6f1c"
_ALNUM = string.ascii_letters + string.digits
_ACCOUNT = re.compile(r"^\d{12}$")


def _random_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(22))


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    authorization: str | None
    # Every value of each query parameter (a repeated one such as `event_type` has several).
    query_lists: dict[str, list[str]] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Forced:
    method: str
    path: str
    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    remaining: int


@dataclass
class FakeAuth0:
    """The fake tenant. Use as a context manager: it serves between enter and exit."""

    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    scopes: frozenset[str] = ALL_SCOPES
    expires_in: int = 86400
    max_streams: int = 10
    tenant: str = "acme"
    bare_list: bool = False
    # A broken server that echoes secrets back: the CLI must still never print them.
    echo_secrets: bool = False
    requests: list[RecordedRequest] = field(default_factory=list)
    streams: dict[str, dict[str, Any]] = field(default_factory=dict)
    deliveries: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    test_events: list[dict[str, Any]] = field(default_factory=list)
    redeliveries: list[dict[str, Any]] = field(default_factory=list)
    tokens: dict[str, frozenset[str]] = field(default_factory=dict)
    # Users exports: the tenant's users, and the jobs and download links made of them.
    users: list[dict[str, Any]] = field(default_factory=list)
    export_pending_polls: int = 1
    export_ttl_seconds: float = 60.0
    clock: Callable[[], float] = time.time
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Events API: the tenant's past events (Auth0 CloudEvents), oldest first.
    events: list[dict[str, Any]] = field(default_factory=list)
    events_per_connection: int | None = None
    expired_offsets: set[str] = field(default_factory=set)
    retry_ms: int = 10
    heartbeat_seconds: float = 0.05
    comment_heartbeats: bool = False
    connection_seconds: float = 2.0
    refuse_after_connections: int | None = 10
    # The next connection sends this `{"code", "message"}` as an `event: error` message after
    # its first event, then closes (SDK type `EventStreamCloudEventErrorMessage`).
    error_once: dict[str, str] | None = None
    # How each connection to the Events API ended: "server" (closed for load balancing, or
    # after `events_per_connection`) or "client" (the client hung up first).
    connection_ends: list[str] = field(default_factory=list)
    downloads: dict[str, tuple[bytes, float]] = field(default_factory=dict)
    # Organizations: id -> {"id", "name", "display_name"?, "metadata"}, and their members:
    # org id -> user id -> {role id: role name}.
    organizations: dict[str, dict[str, Any]] = field(default_factory=dict)
    org_members: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    _forced: list[_Forced] = field(default_factory=list)
    _connections: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: Any = None
    _thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> FakeAuth0:
        self._server = create_server(_build_app(self), host="127.0.0.1", port=0, threads=4)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        stop_waitress(self._server, self._thread)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.effective_port}"

    @property
    def audience(self) -> str:
        return f"{self.base_url}/api/v2/"

    # -- knobs ---------------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        path: str,
        status: int,
        *,
        times: int = 1,
        message: str = "forced by the test",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer the next `times` requests to `method path` with `status`."""
        body = {"statusCode": status, "error": _REASONS.get(status, "Error"), "message": message}
        self._forced.append(_Forced(method, path, status, body, dict(headers or {}), times))

    def issue_token(self, scopes: Iterable[str] = ALL_SCOPES) -> str:
        """A token as if made in the dashboard (for AUTH0_MGMT_TOKEN)."""
        token = "mgmt-" + secrets.token_hex(16)
        self.tokens[token] = frozenset(scopes)
        return token

    def revoke_tokens(self) -> None:
        self.tokens.clear()

    def add_stream(
        self,
        name: str,
        *,
        status: str = "enabled",
        event_types: Iterable[str] = ("user.created",),
        account: str = "123456789012",
        region: str = "eu-west-1",
    ) -> dict[str, Any]:
        """An existing EventBridge stream, as if created earlier."""
        stream_id = _random_id("est_")
        stamp = _iso(_now())
        self.streams[stream_id] = {
            "id": stream_id,
            "status": status,
            "name": name,
            "subscriptions": [{"event_type": t} for t in event_types],
            "created_at": stamp,
            "updated_at": stamp,
            "destination": {
                "type": "eventbridge",
                "configuration": {
                    "aws_account_id": account,
                    "aws_region": region,
                    "aws_partner_event_source": self._partner_source(),
                },
            },
        }
        self.deliveries.setdefault(stream_id, [])
        return self._public(self.streams[stream_id])

    def add_failed_deliveries(
        self,
        stream_id: str,
        count: int,
        *,
        event_type: str = "user.updated",
        start: datetime | None = None,
    ) -> list[str]:
        """`count` failed deliveries, one a minute from `start`; returns their event ids."""
        first = start or _now() - timedelta(minutes=count)
        ids = []
        for n in range(count):
            event_id = _random_id("evt_")
            moment = _iso(first + timedelta(minutes=n))
            self.deliveries.setdefault(stream_id, []).append(
                {
                    "id": event_id,
                    "event_stream_id": stream_id,
                    "status": "failed",
                    "event_type": event_type,
                    "attempts": [
                        {"status": "failed", "timestamp": moment, "error_message": "HTTP 503"}
                    ],
                    "event": {"id": event_id, "type": event_type, "time": moment},
                }
            )
            ids.append(event_id)
        return ids

    def set_status(self, stream_id: str, status: str) -> None:
        """As when Auth0 disables a stream after too many failures."""
        self.streams[stream_id]["status"] = status

    def add_user(self, **attributes: Any) -> dict[str, Any]:
        """A user of the tenant (what an export lists)."""
        self.users.append(dict(attributes))
        return self.users[-1]

    def add_organization(
        self,
        org_id: str,
        name: str,
        display_name: str | None = None,
        members: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        """An organization of the tenant, with its members (user id -> role id -> name)."""
        org: dict[str, Any] = {"id": org_id, "name": name, "metadata": {}}
        if display_name is not None:
            org["display_name"] = display_name
        self.organizations[org_id] = org
        self.org_members[org_id] = {u: dict(r) for u, r in (members or {}).items()}

    def add_event(self, event: dict[str, Any]) -> str:
        """A past event of the tenant (kept in time order); its SSE offset."""
        self.events.append(event)
        self.events.sort(key=lambda e: _parse_time(str(e["time"])))
        return offset_of(self.events.index(event))

    def expire_downloads(self) -> None:
        """Every export link given out so far expires now (as if the client were slow)."""
        for token, (body, _until) in list(self.downloads.items()):
            self.downloads[token] = (body, self.clock() - 1)

    # -- what tests read -----------------------------------------------------------------

    def api_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.startswith("/api/v2/")]

    def token_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == "/oauth/token"]

    # -- internals -----------------------------------------------------------------------

    def _partner_source(self) -> str:
        return f"aws.partner/auth0.com/{self.tenant}-{uuid.uuid4()}/auth0.events"

    def _public(self, stream: Mapping[str, Any]) -> dict[str, Any]:
        """The stream as Auth0 answers it: the webhook token never comes back."""
        public: dict[str, Any] = _deep_copy(stream)
        auth = public.get("destination", {}).get("configuration", {}).get("webhook_authorization")
        if isinstance(auth, dict) and not self.echo_secrets:
            auth.pop("token", None)
        return public

    def _take_forced(self, method: str, path: str) -> _Forced | None:
        with self._lock:
            for forced in self._forced:
                if forced.method == method and forced.path == path and forced.remaining > 0:
                    forced.remaining -= 1
                    return forced
        return None


_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    429: "Too Many Requests",
}


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value


def _error(status: int, message: str, **extra: Any) -> tuple[Response, int]:
    body = {"statusCode": status, "error": _REASONS.get(status, "Error"), "message": message}
    return jsonify({**body, **extra}), status


def _validate_create(body: Any) -> str | None:
    """What is wrong with a create body, per the Management API schema, or None."""
    if not isinstance(body, dict):
        return "Payload validation error: body must be an object"
    extra = set(body) - {"name", "subscriptions", "destination", "status"}
    if extra:
        return f"Payload validation error: additional properties not allowed: {sorted(extra)}"
    name = body.get("name")
    if not isinstance(name, str) or not 1 <= len(name) <= 128:
        return "Payload validation error: name must be a string of 1 to 128 characters"
    subs = body.get("subscriptions")
    if not isinstance(subs, list) or not subs:
        return "Payload validation error: subscriptions must hold at least one item"
    for sub in subs:
        if not isinstance(sub, dict) or set(sub) != {"event_type"}:
            return "Payload validation error: each subscription is {event_type}"
        if sub["event_type"] not in KNOWN_EVENT_TYPES:
            return f"Payload validation error: unknown event type {sub['event_type']!r}"
    dest = body.get("destination")
    if not isinstance(dest, dict) or set(dest) != {"type", "configuration"}:
        return "Payload validation error: destination is {type, configuration}"
    config = dest["configuration"]
    if dest["type"] == "eventbridge":
        if not isinstance(config, dict) or set(config) != {"aws_account_id", "aws_region"}:
            return "Payload validation error: eventbridge configuration keys"
        if not _ACCOUNT.match(str(config["aws_account_id"])):
            return "Payload validation error: aws_account_id must be 12 digits"
        return None
    if dest["type"] == "webhook":
        if not isinstance(config, dict) or set(config) != {
            "webhook_endpoint",
            "webhook_authorization",
        }:
            return "Payload validation error: webhook configuration keys"
        if not str(config["webhook_endpoint"]).startswith("https://"):
            return "Payload validation error: webhook_endpoint must match ^https://"
        auth = config["webhook_authorization"]
        if not isinstance(auth, dict) or auth.get("method") != "bearer" or not auth.get("token"):
            return "Payload validation error: webhook_authorization is {method: bearer, token}"
        return None
    return f"Payload validation error: unknown destination type {dest['type']!r}"


def _build_app(fake: FakeAuth0) -> Flask:
    app = Flask("fake-auth0-mgmt")

    @app.before_request
    def _record_and_force() -> Any:
        body = request.get_json(silent=True) if request.data else None
        fake.requests.append(
            RecordedRequest(
                method=request.method,
                path=request.path,
                query=dict(request.args.items()),
                query_lists={k: request.args.getlist(k) for k in request.args},
                json=body,
                authorization=request.headers.get("Authorization"),
                headers={k: v for k, v in request.headers.items() if k == "Last-Event-Id"},
            )
        )
        forced = fake._take_forced(request.method, request.path)
        if forced is not None:
            response = jsonify(forced.body)
            response.status_code = forced.status
            for name, value in forced.headers.items():
                response.headers[name] = value
            return response
        return None

    def authorized(scope: str) -> tuple[Response, int] | None:
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ") if header.startswith("Bearer ") else ""
        granted = fake.tokens.get(token)
        if granted is None:
            return _error(401, "Invalid token")
        if scope not in granted:
            return _error(
                403,
                f"Insufficient scope, expected any of: {scope}",
                errorCode="insufficient_scope",
            )
        return None

    def api(scope: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def wrap(view: Callable[..., Any]) -> Callable[..., Any]:
            def guarded(**kwargs: Any) -> Any:
                denied = authorized(scope)
                if denied is not None:
                    return denied
                if "stream_id" in kwargs and kwargs["stream_id"] not in fake.streams:
                    return _error(404, "The event stream does not exist.")
                return view(**kwargs)

            guarded.__name__ = view.__name__
            return guarded

        return wrap

    @app.post("/oauth/token")
    def token() -> Any:
        body = request.get_json(silent=True) or {}
        if body.get("grant_type") != "client_credentials":
            return jsonify(error="unsupported_grant_type"), 400
        if (
            body.get("client_id") != fake.client_id
            or body.get("client_secret") != fake.client_secret
        ):
            return jsonify(error="access_denied", error_description="Unauthorized"), 401
        if body.get("audience") != fake.audience:
            return (
                jsonify(
                    error="access_denied",
                    error_description=f"Service not enabled within domain: {body.get('audience')}",
                ),
                403,
            )
        value = "cc-" + secrets.token_hex(16)
        fake.tokens[value] = fake.scopes
        return jsonify(
            access_token=value,
            token_type="Bearer",
            expires_in=fake.expires_in,
            scope=" ".join(sorted(fake.scopes)),
        )

    @app.get("/api/v2/event-streams")
    @api("read:event_streams")
    def list_streams() -> Any:
        streams = [fake._public(s) for s in fake.streams.values()]
        if fake.bare_list:
            return jsonify(streams)
        return jsonify(eventStreams=streams)

    @app.post("/api/v2/event-streams")
    @api("create:event_streams")
    def create_stream() -> Any:
        body = request.get_json(silent=True)
        problem = _validate_create(body)
        if problem or not isinstance(body, dict):
            return _error(400, problem or "Payload validation error")
        if any(s["name"] == body["name"] for s in fake.streams.values()):
            return _error(409, "Event stream name already in use")
        if len(fake.streams) >= fake.max_streams:
            return _error(409, "You have reached the maximum number of event streams")
        stream_id = _random_id("est_")
        stamp = _iso(_now())
        stream = {
            "id": stream_id,
            "status": body.get("status", "disabled"),
            "name": body["name"],
            "subscriptions": body["subscriptions"],
            "created_at": stamp,
            "updated_at": stamp,
            "destination": _deep_copy(body["destination"]),
        }
        if stream["destination"]["type"] == "eventbridge":
            stream["destination"]["configuration"]["aws_partner_event_source"] = (
                fake._partner_source()
            )
        fake.streams[stream_id] = stream
        fake.deliveries[stream_id] = []
        return jsonify(fake._public(stream)), 201

    @app.get("/api/v2/event-streams/<stream_id>")
    @api("read:event_streams")
    def get_stream(stream_id: str) -> Any:
        return jsonify(fake._public(fake.streams[stream_id]))

    @app.patch("/api/v2/event-streams/<stream_id>")
    @api("update:event_streams")
    def patch_stream(stream_id: str) -> Any:
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or set(body) - {"name", "subscriptions", "status"}:
            return _error(400, "Payload validation error: unexpected properties")
        if "status" in body and body["status"] not in ("enabled", "disabled"):
            return _error(400, "Payload validation error: status must be enabled or disabled")
        stream = fake.streams[stream_id]
        stream.update(body)
        stream["updated_at"] = _iso(_now())
        return jsonify(fake._public(stream))

    @app.delete("/api/v2/event-streams/<stream_id>")
    @api("delete:event_streams")
    def delete_stream(stream_id: str) -> Any:
        del fake.streams[stream_id]
        return Response(status=204)

    @app.post("/api/v2/event-streams/<stream_id>/test")
    @api("update:event_streams")
    def test_event(stream_id: str) -> Any:
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or body.get("event_type") not in KNOWN_EVENT_TYPES:
            return _error(400, "Payload validation error: event_type")
        event_id = _random_id("evt_")
        fake.test_events.append({"stream_id": stream_id, **body})
        return (
            jsonify(
                id=event_id,
                event_stream_id=stream_id,
                status="failed" if fake.streams[stream_id]["status"] != "enabled" else "pending",
                event_type=body["event_type"],
                attempts=[],
            ),
            202,
        )

    def checkpoint_page(items: list[dict[str, Any]], key: str, name: str) -> Any:
        if "take" not in request.args and "from" not in request.args:
            return jsonify(items[:50])  # offset paging's first page, as a bare list
        try:
            take = int(request.args.get("take", "50"))
        except ValueError:
            return _error(400, "Query validation error: 'take' must be an integer")
        if not 1 <= take <= 100:
            return _error(400, "Query validation error: 'take' must be between 1 and 100")
        ids = [str(item[key]) for item in items]
        after = request.args.get("from")
        start = 0
        if after:
            if after not in ids:
                return _error(400, "Invalid 'from' value")
            start = ids.index(after)
        page = items[start : start + take]
        body: dict[str, Any] = {name: page}
        if start + take < len(items):
            body["next"] = ids[start + take]
        return jsonify(body)

    @app.get("/api/v2/organizations")
    @api("read:organizations")
    def list_organizations() -> Any:
        orgs = [dict(o) for _, o in sorted(fake.organizations.items())]
        return checkpoint_page(orgs, "id", "organizations")

    @app.get("/api/v2/organizations/<org_id>/members")
    @api("read:organization_members")
    def list_members(org_id: str) -> Any:
        if org_id not in fake.organizations:
            return _error(404, "No organization found by that id.")
        fields = [f for f in request.args.get("fields", "").split(",") if f]
        with_roles = "roles" in fields
        if with_roles:
            denied = authorized("read:organization_member_roles")
            if denied is not None:
                return denied
        members = []
        for user_id, roles in sorted(fake.org_members.get(org_id, {}).items()):
            member: dict[str, Any] = {"user_id": user_id}
            if not fields:
                member.update(email=f"{user_id.split('|')[-1]}@example.com", name=user_id)
            if with_roles:
                member["roles"] = [{"id": r, "name": n} for r, n in sorted(roles.items())]
            members.append(member)
        return checkpoint_page(members, "user_id", "members")

    @app.get("/api/v2/event-streams/<stream_id>/deliveries")
    @api("read:event_deliveries")
    def list_deliveries(stream_id: str) -> Any:
        take = int(request.args.get("take", "50"))
        if not 1 <= take <= 100:
            return _error(400, "take must be between 1 and 100")
        items = list(fake.deliveries.get(stream_id, []))
        statuses = request.args.get("statuses")
        if statuses:
            items = [d for d in items if d["status"] in statuses.split(",")]
        types = request.args.get("event_types")
        if types:
            items = [d for d in items if d["event_type"] in types.split(",")]
        if "date_from" in request.args:
            since = _parse_time(request.args["date_from"])
            items = [d for d in items if _parse_time(d["event"]["time"]) >= since]
        if "date_to" in request.args:
            until = _parse_time(request.args["date_to"])
            items = [d for d in items if _parse_time(d["event"]["time"]) < until]
        after = request.args.get("from")
        if after:
            ids = [d["id"] for d in items]
            items = items[ids.index(after) + 1 :] if after in ids else []
        return jsonify(items[:take])

    @app.post("/api/v2/event-streams/<stream_id>/redeliver")
    @api("update:event_deliveries")
    def redeliver(stream_id: str) -> Any:
        body = request.get_json(silent=True)
        allowed = {"date_from", "date_to", "statuses", "event_types"}
        if not isinstance(body, dict) or set(body) - allowed:
            return _error(400, "Payload validation error: unexpected properties")
        for key in ("date_from", "date_to"):
            if key in body and len(str(body[key])) > 20:
                return _error(400, f"Payload validation error: {key} allows no sub-seconds")
        fake.redeliveries.append({"stream_id": stream_id, **body})
        return jsonify(body), 202

    @app.post("/api/v2/event-streams/<stream_id>/redeliver/<event_id>")
    @api("update:event_deliveries")
    def redeliver_one(stream_id: str, event_id: str) -> Any:
        if event_id not in {d["id"] for d in fake.deliveries.get(stream_id, [])}:
            return _error(404, "The event does not exist.")
        fake.redeliveries.append({"stream_id": stream_id, "event_id": event_id})
        return Response(status=202)

    @app.post("/api/v2/jobs/users-exports")
    @api("read:users")
    def start_export() -> Any:
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or body.get("format", "csv") not in ("json", "csv"):
            return _error(400, "Payload validation error: format must be json or csv")
        fields = body.get("fields", [])
        if not isinstance(fields, list) or not all(
            isinstance(f, dict) and isinstance(f.get("name"), str) for f in fields
        ):
            return _error(400, "Payload validation error: fields is a list of {name}")
        job_id = _random_id("job_")
        fake.jobs[job_id] = {
            "type": "users_export",
            "status": "pending",
            "format": body.get("format", "csv"),
            "fields": fields,
            "created_at": _iso(_now()),
            "id": job_id,
            "polls": 0,
        }
        return jsonify(_job_view(fake.jobs[job_id])), 201

    @app.get("/api/v2/jobs/<job_id>")
    @api("read:users")
    def get_job(job_id: str) -> Any:
        job = fake.jobs.get(job_id)
        if job is None:
            return _error(404, "The job does not exist.")
        job["polls"] += 1
        if job["status"] == "pending" and job["polls"] > fake.export_pending_polls:
            names = [f["name"] for f in job["fields"]]
            lines = [
                json.dumps({k: user[k] for k in names if k in user} if names else user)
                for user in fake.users
            ]
            token = secrets.token_hex(12)
            payload = gzip.compress(("\n".join(lines) + "\n").encode("utf-8"))
            fake.downloads[token] = (payload, fake.clock() + fake.export_ttl_seconds)
            job["status"] = "completed"
            job["location"] = f"{fake.base_url}/exports/{token}.json.gz"
        return jsonify(_job_view(job))

    @app.get("/api/v2/events")
    @api("read:events")
    def events() -> Any:
        return _sse(fake)

    @app.get("/exports/<token>.json.gz")
    def download(token: str) -> Any:
        found = fake.downloads.get(token)
        if found is None:
            return Response("<Error><Code>NoSuchKey</Code></Error>", 404)
        payload, until = found
        if request.headers.get("Authorization"):
            # A pre-signed URL carries its own signature; a second credential is refused.
            return Response("<Error><Code>InvalidArgument</Code></Error>", 400)
        if fake.clock() > until:
            return Response(
                "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>",
                403,
                content_type="application/xml",
            )
        return Response(payload, 200, content_type="application/gzip")

    return app


def offset_of(index: int) -> str:
    """The opaque offset after the tenant's event number `index` (0 is the first event;
    `offset_of(-1)` is the position before any event)."""
    return f"ofs_{index + 1:06d}"


def _sse(fake: FakeAuth0) -> Any:
    with fake._lock:
        fake._connections += 1
        refused = (
            fake.refuse_after_connections is not None
            and fake._connections > fake.refuse_after_connections
        )
    if refused:
        return _error(503, "the test's limit of connections is used up: the client never stops")
    offsets = {offset_of(n): n for n in range(-1, len(fake.events))}
    # "If both are provided, the Last-Event-ID header takes precedence" (the Events API page).
    last = request.headers.get("Last-Event-ID") or request.args.get("from")
    if last is not None and (last in fake.expired_offsets or last not in offsets):
        return _error(410, f"The offset {last} has expired.")
    start = offsets[last] + 1 if last is not None else 0
    since = request.args.get("from_timestamp")
    types = set(request.args.getlist("event_type"))
    unknown = sorted(types - EVENTS_API_TYPES)
    if unknown:
        return _error(400, f"Payload validation error: unknown event_type {unknown}")
    chosen = []
    for index in range(start, len(fake.events)):
        event = fake.events[index]
        if last is None and since and _parse_time(str(event["time"])) < _parse_time(since):
            continue
        if types and event["type"] not in types:
            continue
        chosen.append((offset_of(index), event))
    cut = fake.events_per_connection is not None and len(chosen) > fake.events_per_connection
    if cut:
        chosen = chosen[: fake.events_per_connection]
    head = offset_of(len(fake.events) - 1)  # the latest position: where a heartbeat points
    error, fake.error_once = fake.error_once, None

    def messages() -> Iterator[str]:
        ended = "client"
        try:
            yield ":connected\n\n"
            yield f"retry: {fake.retry_ms}\n\n"
            for offset, event in chosen:
                data = json.dumps({"offset": offset, "event": event})
                yield f"id: {offset}\nevent: {event['type']}\ndata: {data}\n\n"
                if error is not None:
                    yield f"event: error\ndata: {json.dumps({'error': error})}\n\n"
                    break
            if not cut and error is None:
                # Caught up: heartbeats until the server closes the connection.
                deadline = time.monotonic() + fake.connection_seconds
                while time.monotonic() < deadline:
                    time.sleep(fake.heartbeat_seconds)
                    if fake.comment_heartbeats:
                        yield ": heartbeat\n\n"
                    else:
                        data = json.dumps({"offset": head})
                        yield f"id: {head}\nevent: offset-only\ndata: {data}\n\n"
            ended = "server"
        finally:
            fake.connection_ends.append(ended)

    return Response(messages(), 200, content_type="text/event-stream")


def _job_view(job: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in job.items() if k != "polls"}


@contextmanager
def running_fake(**options: Any) -> Iterator[FakeAuth0]:
    """Serve a fresh fake tenant for the duration of the block."""
    with FakeAuth0(**options) as fake:
        yield fake
