"""HTTP pieces shared by the reference CRM's routes: JSON answers, the `Error` body of every
4xx and 5xx answer (contract 1.2: `{"error": ..., "message": ...}`), reading request bodies."""

from __future__ import annotations

import json
from typing import Any

from flask import Response, request

from auth0_sync_cli.crm_fields import InvalidBody
from auth0_sync_cli.crm_store import PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX, Versioned


def error_response(status: int, error: str, message: str) -> Response:
    response = Response(
        json.dumps({"error": error, "message": message}),
        status=status,
        mimetype="application/json",
    )
    if status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


def json_response(payload: object, status: int = 200) -> Response:
    return Response(json.dumps(payload), status=status, mimetype="application/json")


def contact_response(stored: Versioned, status: int = 200) -> Response:
    """One contact, with its ETag (contract 1.2: every answer carrying one contact has it)."""
    response = json_response(stored.contact, status)
    response.headers["ETag"] = stored.etag
    return response


def request_body() -> object:
    """The JSON body; InvalidBody (422) if it is not JSON at all."""
    raw = request.get_data(cache=False)
    if not raw.strip():
        raise InvalidBody("a JSON object body is required")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidBody(f"body is not valid JSON: {exc}") from exc


def admin_body() -> dict[str, Any]:
    raw = request.get_data(cache=False)
    try:
        body = json.loads(raw) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidBody(f"body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise InvalidBody("body must be a JSON object")
    return body


def page_limit(raw: str | None) -> int | None:
    """The listing's `limit` (default when absent), or None when it is not 1..500."""
    if raw is None:
        return PAGE_LIMIT_DEFAULT
    if not raw.isascii() or not raw.isdigit():
        return None
    limit = int(raw)
    return limit if 1 <= limit <= PAGE_LIMIT_MAX else None


def listing_limit() -> int | Response:
    """The `limit` of a listing request, or its 400 answer when it is not 1..500."""
    limit = page_limit(request.args.get("limit"))
    if limit is None:
        return error_response(
            400,
            "bad_request",
            f"query parameter 'limit' must be a whole number from 1 to {PAGE_LIMIT_MAX}, "
            f"got {request.args.get('limit')!r}",
        )
    return limit
