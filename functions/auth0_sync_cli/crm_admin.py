"""The reference CRM's admin endpoints (`/_admin/...`, listed in crm_server's docstring and
`crm-server --help`): fault settings, request counts, what is stored, a person's edit, reset.
They take the same bearer token as the contract and are never faulted nor counted."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, Response

from auth0_sync_cli.crm_companies import CompanyStore, Membership
from auth0_sync_cli.crm_faults import Faults, RequestStats
from auth0_sync_cli.crm_fields import InvalidBody
from auth0_sync_cli.crm_http import admin_body, contact_response, json_response
from auth0_sync_cli.crm_store import ContactStore

ADMIN_PREFIX = "/_admin/"
DEFAULT_OUTAGE_STATUS = 503


def _number(body: dict[str, Any], name: str, *, nullable: bool) -> float | None:
    if name not in body:
        raise InvalidBody(f"missing field '{name}'")
    value = body[name]
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        kind = "a number or null" if nullable else "a number"
        raise InvalidBody(f"field '{name}' must be {kind}, got {value!r}")
    return float(value)


def _apply(setter: Callable[[Any], None], value: object) -> None:
    """Call a Faults setter with an admin body's value; its ValueError becomes a 422."""
    try:
        setter(value)
    except ValueError as exc:
        raise InvalidBody(str(exc)) from exc


def membership_row(membership: Membership) -> dict[str, Any]:
    return {"company_id": membership.company_id, **membership.as_json()}


def register_admin_routes(
    app: Flask,
    store: ContactStore,
    companies: CompanyStore,
    faults: Faults,
    stats: RequestStats,
) -> None:
    """Serve the admin endpoints over the stores, the faults and the counts."""

    @app.get(ADMIN_PREFIX + "stats")
    def admin_stats() -> Response:
        return json_response(stats.snapshot())

    @app.post(ADMIN_PREFIX + "stats/reset")
    def admin_reset_stats() -> Response:
        stats.reset()
        return json_response(stats.snapshot())

    @app.post(ADMIN_PREFIX + "outage")
    def admin_outage() -> Response:
        body = admin_body()
        enabled = body.get("enabled")
        if not isinstance(enabled, bool):
            raise InvalidBody(f"field 'enabled' must be true or false, got {enabled!r}")
        status = body.get("status", DEFAULT_OUTAGE_STATUS)
        if isinstance(status, bool) or not isinstance(status, int):
            raise InvalidBody(f"field 'status' must be an integer, got {status!r}")
        _apply(faults.set_outage, status if enabled else None)
        return json_response(faults.describe())

    @app.post(ADMIN_PREFIX + "rate-limit")
    def admin_rate_limit() -> Response:
        _apply(faults.set_rate_limit, _number(admin_body(), "rps", nullable=True))
        return json_response(faults.describe())

    @app.post(ADMIN_PREFIX + "failure-rate")
    def admin_failure_rate() -> Response:
        _apply(faults.set_failure_rate, _number(admin_body(), "rate", nullable=False))
        return json_response(faults.describe())

    @app.post(ADMIN_PREFIX + "latency")
    def admin_latency() -> Response:
        _apply(faults.set_latency, _number(admin_body(), "ms", nullable=False))
        return json_response(faults.describe())

    @app.post(ADMIN_PREFIX + "batch-cut")
    def admin_batch_cut() -> Response:
        body = admin_body()
        if "after" not in body:
            raise InvalidBody("missing field 'after'")
        _apply(faults.set_batch_cut, body["after"])
        return json_response(faults.describe())

    @app.get(ADMIN_PREFIX + "faults")
    def admin_faults() -> Response:
        return json_response(faults.describe())

    @app.get(ADMIN_PREFIX + "contacts")
    def admin_contacts() -> Response:
        return json_response(store.all())

    @app.patch(ADMIN_PREFIX + "contacts/<contact_id>")
    def admin_edit_contact(contact_id: str) -> Response:
        # A person editing the contact in the CRM: no uniqueness check, no precondition,
        # no fault; the contact gets a new ETag, so a write made before it gets 412.
        return contact_response(store.read(store.edit(contact_id, admin_body())["id"]))

    @app.get(ADMIN_PREFIX + "companies")
    def admin_companies() -> Response:
        return json_response(companies.all())

    @app.get(ADMIN_PREFIX + "memberships")
    def admin_memberships() -> Response:
        return json_response([membership_row(m) for m in companies.all_memberships()])

    @app.post(ADMIN_PREFIX + "reset")
    def admin_reset() -> Response:
        companies.reset()
        store.reset()
        stats.reset()
        return json_response({"contacts": 0, "companies": 0, "memberships": 0})
