"""`auth0-sync crm-server`: the reference CRM, a real HTTP server honouring the contacts contract.

Used by the local demo, the tests and the benchmarks. Besides the contract (docs/contracts/
crm-contacts-api.yaml) it can inject faults (latency, rate limit, random 503s, an outage) and
exposes admin endpoints under /_admin/ to drive them and read request counts.
"""

from __future__ import annotations

import argparse
import hmac
import json
import math
import random
import shlex
import socket
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from auth0_sync.names import LOCAL_CRM_PORT, LOCAL_CRM_TOKEN, Env
from auth0_sync_cli.argtypes import real_number, whole_number
from auth0_sync_cli.crm_store import (
    PAGE_LIMIT_DEFAULT,
    PAGE_LIMIT_MAX,
    ContactNotFound,
    ContactStore,
    EmailTaken,
    InvalidContact,
    validate_fields,
)
from auth0_sync_cli.exits import CommandError, cannot_listen
from auth0_sync_cli.fakes.loopback import ServedInThread, serve_in_thread
from auth0_sync_cli.secrets import secret_from
from auth0_sync_cli.signals import held_stop_signals

CONTACTS_PATH = "/contacts"
ADMIN_PREFIX = "/_admin/"
IDEMPOTENCY_HEADER = "Idempotency-Key"
DEFAULT_OUTAGE_STATUS = 503
SERVER_THREADS = 8


class Faults:
    """Fault injection settings, decided per request before any change is made."""

    def __init__(
        self,
        *,
        latency_ms: float = 0,
        rate_limit: float | None = None,
        failure_rate: float = 0.0,
        seed: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._rng = random.Random(seed)
        self._window_start = 0.0
        self._window_count = 0
        self.latency_ms = 0.0
        self.rate_limit: float | None = None
        self.failure_rate = 0.0
        self.outage: int | None = None
        self.set_latency(latency_ms)
        self.set_rate_limit(rate_limit)
        self.set_failure_rate(failure_rate)

    def set_latency(self, latency_ms: float) -> None:
        """Sleep this long before answering each contract request."""
        if not latency_ms >= 0:
            raise ValueError(f"latency_ms must be >= 0, got {latency_ms!r}")
        self.latency_ms = float(latency_ms)

    def set_rate_limit(self, rps: float | None) -> None:
        """Allow `rps` requests per one-second window (None = unlimited)."""
        if rps is not None and not rps > 0:
            raise ValueError(f"rate limit must be > 0 requests per second or None, got {rps!r}")
        with self._lock:
            self.rate_limit = None if rps is None else float(rps)
            self._window_start = 0.0
            self._window_count = 0

    def set_failure_rate(self, rate: float) -> None:
        """Answer this share of contract requests (0..1) with 503."""
        if not 0 <= rate <= 1:
            raise ValueError(f"failure rate must be between 0 and 1, got {rate!r}")
        self.failure_rate = float(rate)

    def set_outage(self, status: int | None) -> None:
        """Answer every contract request with `status` (None = outage off)."""
        if status is not None and not 400 <= status <= 599:
            raise ValueError(f"outage status must be an HTTP error status 400..599, got {status}")
        self.outage = status

    def describe(self) -> dict[str, Any]:
        """The current settings, as the admin endpoints report them."""
        return {
            "latency_ms": self.latency_ms,
            "rate_limit": self.rate_limit,
            "failure_rate": self.failure_rate,
            "outage": self.outage,
        }

    def _rate_limited(self) -> int | None:
        """Seconds until the window resets if this request is over the limit, else None."""
        rps = self.rate_limit
        if rps is None:
            return None
        # Fixed windows of one second holding floor(rps) requests; below 1 rps, one request
        # per window of 1/rps seconds, so a fractional limit still means what it says.
        window, allowed = (1.0, math.floor(rps)) if rps >= 1 else (1.0 / rps, 1)
        now = self._clock()
        start = math.floor(now / window) * window
        if start != self._window_start:
            self._window_start, self._window_count = start, 0
        if self._window_count < allowed:
            self._window_count += 1
            return None
        return max(1, math.ceil(start + window - now))

    def decide(self) -> Response | None:
        """The fault response for this request, or None to serve it normally."""
        if self.outage is not None:
            response = _error(self.outage, "outage", "the CRM is in a simulated outage")
            if self.outage == 429:
                response.headers["Retry-After"] = "1"
            return response
        with self._lock:
            retry_after = self._rate_limited()
            failed = retry_after is None and self._rng.random() < self.failure_rate
        if retry_after is not None:
            response = _error(
                429, "rate_limited", f"over {self.rate_limit:g} requests per second; retry later"
            )
            response.headers["Retry-After"] = str(retry_after)
            return response
        if failed:
            return _error(503, "unavailable", "simulated failure (failure rate); retry later")
        return None


class RequestStats:
    """Counts of contract requests by method and by response status."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_method: Counter[str] = Counter()
        self._by_status: Counter[str] = Counter()

    def record(self, method: str, status: int) -> None:
        """Count one answered contract request."""
        with self._lock:
            self._by_method[method] += 1
            self._by_status[str(status)] += 1

    def snapshot(self) -> dict[str, Any]:
        """`{"total": n, "by_method": {...}, "by_status": {...}}`."""
        with self._lock:
            by_method = {"GET": 0, "POST": 0, "PATCH": 0, **self._by_method}
            return {
                "total": sum(self._by_method.values()),
                "by_method": by_method,
                "by_status": dict(sorted(self._by_status.items())),
            }

    def reset(self) -> None:
        """Forget every count."""
        with self._lock:
            self._by_method.clear()
            self._by_status.clear()


def _error(status: int, error: str, message: str) -> Response:
    response = Response(
        json.dumps({"error": error, "message": message}),
        status=status,
        mimetype="application/json",
    )
    if status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


def _json(payload: object, status: int = 200) -> Response:
    return Response(json.dumps(payload), status=status, mimetype="application/json")


def _is_contract_path(path: str) -> bool:
    return path == CONTACTS_PATH or path.startswith(CONTACTS_PATH + "/")


def _auth_problem(expected_token: str) -> str | None:
    header = request.headers.get("Authorization")
    if header is None:
        return "missing Authorization header; send 'Authorization: Bearer <token>'"
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return "Authorization header must be 'Bearer <token>'"
    if not hmac.compare_digest(token.strip().encode(), expected_token.encode()):
        return "wrong bearer token"
    return None


def _request_body() -> object:
    """The JSON body; InvalidContact (422) if it is not JSON at all."""
    raw = request.get_data(cache=False)
    if not raw.strip():
        raise InvalidContact("a JSON object body is required")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidContact(f"body is not valid JSON: {exc}") from exc


def _admin_body() -> dict[str, Any]:
    raw = request.get_data(cache=False)
    try:
        body = json.loads(raw) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidContact(f"body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise InvalidContact("body must be a JSON object")
    return body


def _page_limit(raw: str | None) -> int | None:
    """The listing's `limit` (default when absent), or None when it is not 1..500."""
    if raw is None:
        return PAGE_LIMIT_DEFAULT
    if not raw.isascii() or not raw.isdigit():
        return None
    limit = int(raw)
    return limit if 1 <= limit <= PAGE_LIMIT_MAX else None


def _number(body: dict[str, Any], name: str, *, nullable: bool) -> float | None:
    if name not in body:
        raise InvalidContact(f"missing field '{name}'")
    value = body[name]
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        kind = "a number or null" if nullable else "a number"
        raise InvalidContact(f"field '{name}' must be {kind}, got {value!r}")
    return float(value)


def _apply(setter: Callable[[Any], None], value: object) -> None:
    """Call a Faults setter with an admin body's value; its ValueError becomes a 422."""
    try:
        setter(value)
    except ValueError as exc:
        raise InvalidContact(str(exc)) from exc


def create_app(
    store: ContactStore, faults: Faults, stats: RequestStats, token: str | Callable[[], str]
) -> Flask:
    """The Flask app serving the contract and the admin endpoints over `store`; `token` may
    be read per request (a server whose token is rotated while it runs)."""
    app = Flask(__name__)

    @app.before_request
    def guard() -> Response | None:
        contract = _is_contract_path(request.path)
        g.contract = contract
        if contract and faults.latency_ms:
            time.sleep(faults.latency_ms / 1000)
        problem = _auth_problem(token() if callable(token) else token)
        if problem is not None:
            return _error(401, "unauthorized", problem)
        if contract:
            return faults.decide()
        return None

    @app.after_request
    def count(response: Response) -> Response:
        if g.get("contract"):
            stats.record(request.method, response.status_code)
        return response

    @app.errorhandler(InvalidContact)
    def invalid(exc: InvalidContact) -> Response:
        return _error(422, "invalid", str(exc))

    @app.errorhandler(ContactNotFound)
    def not_found(exc: ContactNotFound) -> Response:
        return _error(404, "not_found", f"no contact with id {exc.args[0]!r}")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        response = exc.get_response()
        status = exc.code or 500
        name = (exc.name or "error").lower().replace(" ", "_")
        error = _error(status, name, exc.description or exc.name or "error")
        if "Allow" in response.headers:
            error.headers["Allow"] = response.headers["Allow"]
        return error

    @app.get(CONTACTS_PATH)
    def find_contacts() -> Response:
        email = request.args.get("email")
        auth0_user_id = request.args.get("auth0_user_id")
        # A limit outside its range is refused even where it has no effect (a lookup).
        limit = _page_limit(request.args.get("limit"))
        if limit is None:
            return _error(
                400,
                "bad_request",
                f"query parameter 'limit' must be a whole number from 1 to {PAGE_LIMIT_MAX}, "
                f"got {request.args.get('limit')!r}",
            )
        if email is not None or auth0_user_id is not None:
            # A lookup answers every match: `limit` and `after` are ignored (the contract).
            return _json(store.find(email=email, auth0_user_id=auth0_user_id))
        return _json(store.page(after=request.args.get("after"), limit=limit))

    @app.post(CONTACTS_PATH)
    def create_contact() -> Response:
        fields = validate_fields(_request_body(), require_email=True)
        try:
            contact, created = store.create(fields, request.headers.get(IDEMPOTENCY_HEADER))
        except EmailTaken as exc:
            return _error(409, "conflict", str(exc))
        response = _json(contact, 201 if created else 200)
        response.headers["Location"] = f"{CONTACTS_PATH}/{contact['id']}"
        return response

    @app.get(f"{CONTACTS_PATH}/<contact_id>")
    def read_contact(contact_id: str) -> Response:
        return _json(store.get(contact_id))

    @app.patch(f"{CONTACTS_PATH}/<contact_id>")
    def update_contact(contact_id: str) -> Response:
        store.get(contact_id)  # 404 before 422: the id is checked first
        fields = validate_fields(_request_body(), require_email=False)
        try:
            return _json(store.update(contact_id, fields))
        except EmailTaken as exc:  # only a server with unique emails refuses it
            message = f"field 'email' is already used by another contact: {exc.contact_id}"
            return _error(409, "conflict", message)

    @app.get(ADMIN_PREFIX + "stats")
    def admin_stats() -> Response:
        return _json(stats.snapshot())

    @app.post(ADMIN_PREFIX + "stats/reset")
    def admin_reset_stats() -> Response:
        stats.reset()
        return _json(stats.snapshot())

    @app.post(ADMIN_PREFIX + "outage")
    def admin_outage() -> Response:
        body = _admin_body()
        enabled = body.get("enabled")
        if not isinstance(enabled, bool):
            raise InvalidContact(f"field 'enabled' must be true or false, got {enabled!r}")
        status = body.get("status", DEFAULT_OUTAGE_STATUS)
        if isinstance(status, bool) or not isinstance(status, int):
            raise InvalidContact(f"field 'status' must be an integer, got {status!r}")
        _apply(faults.set_outage, status if enabled else None)
        return _json(faults.describe())

    @app.post(ADMIN_PREFIX + "rate-limit")
    def admin_rate_limit() -> Response:
        _apply(faults.set_rate_limit, _number(_admin_body(), "rps", nullable=True))
        return _json(faults.describe())

    @app.post(ADMIN_PREFIX + "failure-rate")
    def admin_failure_rate() -> Response:
        _apply(faults.set_failure_rate, _number(_admin_body(), "rate", nullable=False))
        return _json(faults.describe())

    @app.post(ADMIN_PREFIX + "latency")
    def admin_latency() -> Response:
        _apply(faults.set_latency, _number(_admin_body(), "ms", nullable=False))
        return _json(faults.describe())

    @app.get(ADMIN_PREFIX + "faults")
    def admin_faults() -> Response:
        return _json(faults.describe())

    @app.get(ADMIN_PREFIX + "contacts")
    def admin_contacts() -> Response:
        return _json(store.all())

    @app.post(ADMIN_PREFIX + "reset")
    def admin_reset() -> Response:
        store.reset()
        stats.reset()
        return _json({"contacts": 0})

    return app


class CrmServer(ServedInThread):
    """The reference CRM on a loopback port, served by waitress from a background thread;
    `stop()` keeps the contacts for a later `start()`."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        db_path: str | None = None,
        token: str = LOCAL_CRM_TOKEN,
        latency_ms: float = 0,
        rate_limit: float | None = None,
        failure_rate: float = 0.0,
        seed: int | None = None,
        clock: Callable[[], float] = time.time,
        unique_emails: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.token = token
        # unique_emails: a PATCH to an email another contact holds is refused (409), as a
        # POST always is.
        self.store = ContactStore(db_path, unique_emails=unique_emails)
        self.faults = Faults(
            latency_ms=latency_ms,
            rate_limit=rate_limit,
            failure_rate=failure_rate,
            seed=seed,
            clock=clock,
        )
        self.request_stats = RequestStats()
        # Read per request: setting `token` rotates it (the old one is refused at once).
        self.app = create_app(self.store, self.faults, self.request_stats, lambda: self.token)

    @property
    def base_url(self) -> str:
        """E.g. "http://127.0.0.1:54321" (the real port once started)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> CrmServer:
        """Bind, serve from a background thread, and return once connections are accepted."""
        if self._server is not None:
            raise RuntimeError("the CRM server is already running")
        self._server, self._thread, self.port = serve_in_thread(
            self.app, self._bind_address(), self.port, threads=SERVER_THREADS, name="crm-server"
        )
        return self

    def _bind_address(self) -> str:
        """One address for the host: a name like "localhost" would make waitress listen on
        several sockets (IPv4 and IPv6), which serve and stop differently."""
        infos = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
        infos.sort(key=lambda info: info[0] != socket.AF_INET)
        return str(infos[0][4][0])

    def set_outage(self, status: int | None) -> None:
        """Answer every contract request with `status` (e.g. 503); None ends the outage."""
        self.faults.set_outage(status)

    def set_rate_limit(self, rps: float | None) -> None:
        """Answer 429 over `rps` requests per second; None removes the limit."""
        self.faults.set_rate_limit(rps)

    def set_failure_rate(self, rate: float) -> None:
        """Answer this share (0..1) of contract requests with 503."""
        self.faults.set_failure_rate(rate)

    def set_latency(self, latency_ms: float) -> None:
        """Sleep this many milliseconds before each contract request."""
        self.faults.set_latency(latency_ms)

    def clear_faults(self) -> None:
        """No latency, no rate limit, no failures, no outage."""
        self.faults.set_latency(0)
        self.faults.set_rate_limit(None)
        self.faults.set_failure_rate(0.0)
        self.faults.set_outage(None)

    def stats(self) -> dict[str, Any]:
        """Contract request counts, as GET /_admin/stats returns them."""
        return self.request_stats.snapshot()

    def reset_stats(self) -> None:
        """Forget the request counts."""
        self.request_stats.reset()

    def contacts(self) -> list[dict[str, Any]]:
        """Every contact, ordered by id."""
        return self.store.all()

    def reset(self) -> None:
        """Delete every contact and idempotency key and forget the counts."""
        self.store.reset()
        self.request_stats.reset()

    def seed_contact(self, **fields: Any) -> dict[str, Any]:
        """Insert a contact directly, skipping the email-uniqueness check."""
        return self.store.seed(fields)


def run(args: argparse.Namespace) -> int:
    """Serve the reference CRM until Ctrl-C or SIGTERM."""
    token = secret_from(
        args.crm_token_file,
        flag="--crm-token-file",
        variable=Env.CRM_API_TOKEN,
        what="the CRM token",
    )
    # The banner repeats the local default only: a real token is not printed (nor logged).
    if token is None:
        token, shown = LOCAL_CRM_TOKEN, LOCAL_CRM_TOKEN
    elif args.crm_token_file:
        shown = f'"$(cat {shlex.quote(args.crm_token_file)})"'
    else:
        shown = f'"${Env.CRM_API_TOKEN}"'
    try:
        server = CrmServer(
            host=args.host,
            port=args.port,
            db_path=args.db,
            token=token,
            latency_ms=args.latency_ms,
            rate_limit=args.rate_limit,
            failure_rate=args.failure_rate,
            seed=args.seed,
            unique_emails=args.unique_emails,
        )
    except sqlite3.Error as exc:
        raise CommandError(f"--db {args.db}: cannot open the database: {exc}") from exc
    # Stop signals are held before the server starts and before it says it is listening:
    # a Ctrl-C at any moment after the banner is waited for, never raised mid-start-up.
    with held_stop_signals() as wait_for_stop:
        try:
            server.start()
        except OSError as exc:
            raise cannot_listen(args.host, args.port, exc) from exc
        try:
            print(
                f"crm-server listening on {server.base_url} (Ctrl-C to stop); use it with: "
                f"export {Env.CRM_BASE_URL}={server.base_url} {Env.CRM_API_TOKEN}={shown}",
                flush=True,
            )
            wait_for_stop()
        finally:
            server.stop()
    print("crm-server stopped", flush=True)
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `crm-server` sub-command."""
    parser = subparsers.add_parser(
        "crm-server",
        help="run the reference CRM server (the contacts contract, with fault injection)",
        description=(
            "Serve the reference CRM over HTTP: the contacts API of "
            "docs/contracts/crm-contacts-api.yaml, stored in SQLite, plus admin endpoints "
            "under /_admin/ and optional fault injection."
        ),
        epilog="examples:\n"
        "  auth0-sync crm-server --port 0\n"
        "  auth0-sync crm-server --rate-limit 5 --failure-rate 0.1 --seed 7 --db crm.db",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    parser.add_argument(
        "--port",
        type=whole_number(0, 65535, what="a port number"),
        default=LOCAL_CRM_PORT,
        help="0 = any free port (default %(default)s)",
    )
    parser.add_argument("--db", metavar="PATH", help="SQLite file (default: in memory)")
    parser.add_argument(
        "--crm-token-file",
        metavar="FILE",
        help=f"read the bearer token to accept from FILE (default: ${Env.CRM_API_TOKEN}, else "
        f"{LOCAL_CRM_TOKEN}); never on the command line, where `ps` shows it",
    )
    parser.add_argument(
        "--latency-ms", type=real_number(), default=0.0, metavar="N", help="delay per request"
    )
    parser.add_argument(
        "--rate-limit",
        type=real_number(above_zero=True),
        metavar="RPS",
        help="answer 429 over RPS requests/second",
    )
    parser.add_argument(
        "--failure-rate",
        type=real_number(high=1),
        default=0.0,
        metavar="F",
        help="share of requests (0..1) answered 503",
    )
    parser.add_argument("--seed", type=int, metavar="N", help="seed of the failure-rate RNG")
    parser.add_argument(
        "--unique-emails",
        action="store_true",
        help="refuse (409) a PATCH giving a contact an email another one holds, as a POST is",
    )
    parser.set_defaults(func=run)
