"""`auth0-sync crm-server`: the reference CRM, a real HTTP server honouring the generic CRM
contract 1.2 (docs/contracts/crm-contacts-api.yaml).

Used by the local demo, the tests and the benchmarks. The contract's paths, each in its own
module: contacts and their batches (crm_contacts: `/contacts`, `/contacts/{id}` with `ETag`
and `If-Match`, `/contacts/batch`, `/contacts/batch/find`), companies and memberships
(crm_company_routes over crm_companies: `/companies`, `/companies/{id}`,
`/companies/{id}/members`, `/companies/{id}/members/{contact_id}`), stored in one SQLite
database (crm_store, crm_companies). Optional rules: `--unique-emails`, `--unique-org-ids`.
The admin endpoints below are served by crm_admin.

Fault injection (crm_faults) applies to every contract path alike, before anything is
changed: latency, a rate limit (429 with Retry-After; a batch is one request), a share of
random 503s, an outage answering one status, and a batch cut (a batch longer than N applies
its first N operations, then answers 503). Contract requests are counted by method and
status. Every 4xx/5xx body is the contract's `Error`: `{"error": code, "message": text}`.

Admin endpoints (the same bearer token; never faulted, never counted):
  GET   /_admin/stats              counts: {"total", "by_method", "by_status"}
  POST  /_admin/stats/reset        forget the counts
  GET   /_admin/faults             the fault settings
  POST  /_admin/outage             {"enabled": true|false, "status": 503}
  POST  /_admin/rate-limit         {"rps": N | null}
  POST  /_admin/failure-rate       {"rate": 0..1}
  POST  /_admin/latency            {"ms": N}
  POST  /_admin/batch-cut          {"after": N | null}
  GET   /_admin/contacts           every contact, by id
  PATCH /_admin/contacts/{id}      edit a contact as a person in the CRM would: no
                                   uniqueness check; it gets a new ETag, so a client's
                                   write made before it gets 412
  GET   /_admin/companies          every company, by id
  GET   /_admin/memberships        every membership, with its company_id
  POST  /_admin/reset              delete everything (ids restart) and the counts
`CrmServer` offers the same from Python (set_outage, set_batch_cut, edit_contact,
seed_contact, seed_company, seed_membership, companies, memberships...).
"""

from __future__ import annotations

import argparse
import hmac
import shlex
import socket
import sqlite3
import time
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from auth0_sync.names import LOCAL_CRM_PORT, LOCAL_CRM_TOKEN, Env
from auth0_sync_cli.argtypes import real_number, whole_number
from auth0_sync_cli.crm_admin import membership_row, register_admin_routes
from auth0_sync_cli.crm_companies import CompanyNotFound, CompanyStore
from auth0_sync_cli.crm_company_routes import COMPANIES_PATH, register_company_routes
from auth0_sync_cli.crm_contacts import CONTACTS_PATH, BatchTooLarge, register_contact_routes
from auth0_sync_cli.crm_faults import Faults, RequestStats
from auth0_sync_cli.crm_fields import InvalidBody
from auth0_sync_cli.crm_http import (
    error_response,
)
from auth0_sync_cli.crm_store import (
    ContactNotFound,
    ContactStore,
)
from auth0_sync_cli.exits import CommandError, cannot_listen
from auth0_sync_cli.fakes.loopback import ServedInThread, serve_in_thread
from auth0_sync_cli.secrets import secret_from
from auth0_sync_cli.signals import held_stop_signals

__all__ = ["CrmServer", "Faults", "RequestStats", "create_app", "register", "run"]

CONTRACT_ROOTS = (CONTACTS_PATH, COMPANIES_PATH)
SERVER_THREADS = 8


def _is_contract_path(path: str) -> bool:
    """Every path of the contract: faults, latency and counts apply to them all."""
    return any(path == root or path.startswith(root + "/") for root in CONTRACT_ROOTS)


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


def create_app(
    store: ContactStore,
    companies: CompanyStore,
    faults: Faults,
    stats: RequestStats,
    token: str | Callable[[], str],
) -> Flask:
    """The Flask app serving the contract and the admin endpoints over the stores; `token`
    may be read per request (a server whose token is rotated while it runs)."""
    app = Flask(__name__)

    @app.before_request
    def guard() -> Response | None:
        contract = _is_contract_path(request.path)
        g.contract = contract
        if contract and faults.latency_ms:
            time.sleep(faults.latency_ms / 1000)
        problem = _auth_problem(token() if callable(token) else token)
        if problem is not None:
            return error_response(401, "unauthorized", problem)
        if contract:
            return faults.decide()
        return None

    @app.after_request
    def count(response: Response) -> Response:
        if g.get("contract"):
            stats.record(request.method, response.status_code)
        return response

    @app.errorhandler(InvalidBody)
    def invalid(exc: InvalidBody) -> Response:
        return error_response(422, "invalid", str(exc))

    @app.errorhandler(ContactNotFound)
    def not_found(exc: ContactNotFound) -> Response:
        return error_response(404, "not_found", f"no contact with id {exc.args[0]!r}")

    @app.errorhandler(CompanyNotFound)
    def company_not_found(exc: CompanyNotFound) -> Response:
        return error_response(404, "not_found", f"no company with id {exc.args[0]!r}")

    @app.errorhandler(BatchTooLarge)
    def too_large(exc: BatchTooLarge) -> Response:
        return error_response(413, "too_large", str(exc))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        response = exc.get_response()
        status = exc.code or 500
        name = (exc.name or "error").lower().replace(" ", "_")
        error = error_response(status, name, exc.description or exc.name or "error")
        if "Allow" in response.headers:
            error.headers["Allow"] = response.headers["Allow"]
        return error

    register_contact_routes(app, store, faults)
    register_company_routes(app, companies)
    register_admin_routes(app, store, companies, faults, stats)

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
        unique_org_ids: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.token = token
        # unique_emails: a PATCH to an email another contact holds is refused (409), as a
        # POST always is.
        self.store = ContactStore(db_path, unique_emails=unique_emails)
        # unique_org_ids: a POST or PATCH giving a company an auth0_org_id another one
        # holds is refused (409); without it, the server keeps what it is sent.
        self.company_store = CompanyStore(self.store, unique_org_ids=unique_org_ids)
        self.faults = Faults(
            latency_ms=latency_ms,
            rate_limit=rate_limit,
            failure_rate=failure_rate,
            seed=seed,
            clock=clock,
        )
        self.request_stats = RequestStats()
        # Read per request: setting `token` rotates it (the old one is refused at once).
        self.app = create_app(
            self.store, self.company_store, self.faults, self.request_stats, lambda: self.token
        )

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

    def set_batch_cut(self, after: int | None) -> None:
        """Batches of more than `after` operations apply their first `after`, then answer
        503; None: off."""
        self.faults.set_batch_cut(after)

    def clear_faults(self) -> None:
        """No latency, no rate limit, no failures, no outage, no batch cut."""
        self.faults.set_latency(0)
        self.faults.set_rate_limit(None)
        self.faults.set_failure_rate(0.0)
        self.faults.set_outage(None)
        self.faults.set_batch_cut(None)

    def stats(self) -> dict[str, Any]:
        """Contract request counts, as GET /_admin/stats returns them."""
        return self.request_stats.snapshot()

    def reset_stats(self) -> None:
        """Forget the request counts."""
        self.request_stats.reset()

    def contacts(self) -> list[dict[str, Any]]:
        """Every contact, ordered by id."""
        return self.store.all()

    def companies(self) -> list[dict[str, Any]]:
        """Every company, ordered by id."""
        return self.company_store.all()

    def memberships(self) -> list[dict[str, Any]]:
        """Every membership as `{"company_id", "contact_id", "roles"[, "source_updated_at"]}`,
        by company then contact (as GET /_admin/memberships answers)."""
        return [membership_row(m) for m in self.company_store.all_memberships()]

    def reset(self) -> None:
        """Delete every contact, company, membership and idempotency key; forget the counts."""
        self.company_store.reset()
        self.store.reset()
        self.request_stats.reset()

    def seed_contact(self, **fields: Any) -> dict[str, Any]:
        """Insert a contact directly, skipping the email-uniqueness check."""
        return self.store.seed(fields)

    def seed_company(self, **fields: Any) -> dict[str, Any]:
        """Insert a company directly (one made in the CRM by hand), with no uniqueness check."""
        return self.company_store.seed(fields)

    def seed_membership(self, company_id: str, contact_id: str, roles: list[str]) -> None:
        """Make a contact a member of a company directly, bypassing faults and counts."""
        self.company_store.put_member(company_id, contact_id, tuple(roles))

    def edit_contact(self, contact_id: str, **fields: Any) -> dict[str, Any]:
        """Change a contact as a person in the CRM would (PATCH /_admin/contacts/{id}): no
        uniqueness check, no fault; it gets a new ETag if anything changed."""
        return self.store.edit(contact_id, fields)

    def etag(self, contact_id: str) -> str:
        """The contact's current ETag, as its answers carry it."""
        return self.store.read(contact_id).etag


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
            unique_org_ids=args.unique_org_ids,
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


ADMIN_HELP = """\
admin endpoints (same bearer token; never faulted nor counted):
  GET   /_admin/stats, POST /_admin/stats/reset     request counts by method and status
  GET   /_admin/faults                              the fault settings
  POST  /_admin/outage        {"enabled": true, "status": 503}
  POST  /_admin/rate-limit    {"rps": 5}            (null: no limit; a batch is one request)
  POST  /_admin/failure-rate  {"rate": 0.1}         share of requests answered 503
  POST  /_admin/latency       {"ms": 200}
  POST  /_admin/batch-cut     {"after": 2}          longer batches apply 2 operations, then 503
  GET   /_admin/contacts, /_admin/companies, /_admin/memberships      everything stored
  PATCH /_admin/contacts/{id} {"name": "..."}       a person's edit (a new ETag)
  POST  /_admin/reset                               delete everything and the counts"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `crm-server` sub-command."""
    parser = subparsers.add_parser(
        "crm-server",
        help="run the reference CRM server (the generic CRM contract, with fault injection)",
        description=(
            "Serve the reference CRM over HTTP: the generic CRM contract 1.2 of "
            "docs/contracts/crm-contacts-api.yaml (contacts with ETags, batches, companies, "
            "memberships), stored in SQLite, plus admin endpoints under /_admin/ and optional "
            "fault injection."
        ),
        epilog="examples:\n"
        "  auth0-sync crm-server --port 0\n"
        "  auth0-sync crm-server --rate-limit 5 --failure-rate 0.1 --seed 7 --db crm.db\n"
        "  auth0-sync crm-server --unique-emails --unique-org-ids\n\n" + ADMIN_HELP,
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
    parser.add_argument(
        "--unique-org-ids",
        action="store_true",
        help="refuse (409) a POST or PATCH giving a company an auth0_org_id another one holds",
    )
    parser.set_defaults(func=run)
