"""What the fake HubSpot's contacts (`hubspot`) and companies (`hubspot_companies`) share:
HubSpot's CRM v3 objects answer alike, whatever the object type (the documentation each
rests on is cited where the two modules model it): the properties API (`GET`/`POST
/crm/v3/properties/{objectType}`), unique property values (`hasUniqueValue`: a value
another record holds is 409 CONFLICT) and reads and updates by `idProperty` (a property
with unique values only).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from contextlib import AbstractContextManager
from typing import Any

from flask import Flask, Response, request

Specs = dict[str, dict[str, Any]]


def add_property_routes(
    app: Flask,
    lock: AbstractContextManager[Any],
    properties: Specs,
    object_type: str,
    error: Callable[..., Response],
    ok: Callable[..., Response],
) -> None:
    """Register `GET /crm/v3/properties/{object_type}/{name}` (404 OBJECT_NOT_FOUND) and
    `POST /crm/v3/properties/{object_type}` (409 OBJECT_ALREADY_EXISTS) on `app`."""

    def get_property(name: str) -> Response:
        with lock:
            spec = properties.get(name)
        if spec is None:
            return error(404, "OBJECT_NOT_FOUND", f"Unable to find property {name}")
        return ok(spec)

    def create_property() -> Response:
        spec = request.get_json(silent=True) or {}
        name = spec.get("name")
        if not isinstance(name, str) or not spec.get("type") or not spec.get("fieldType"):
            return error(400, "VALIDATION_ERROR", "name, type and fieldType are required")
        with lock:
            if name in properties:
                return error(
                    409, "OBJECT_ALREADY_EXISTS", f"A property named '{name}' already exists."
                )
            properties[name] = dict(spec)
        return ok(spec, 201)

    path = f"/crm/v3/properties/{object_type}"
    app.add_url_rule(f"{path}/<name>", f"get_{object_type}_property", get_property, methods=["GET"])
    app.add_url_rule(path, f"create_{object_type}_property", create_property, methods=["POST"])


def object_view(
    record: dict[str, Any], wanted: list[str], *, always: set[str], default: set[str]
) -> dict[str, Any]:
    """A record as HubSpot answers it: the `wanted` properties (null where unset), those
    it always shows, and its `default` ones when none is asked for."""
    shown = set(wanted) | always
    if not wanted:
        shown |= default
    properties = {k: v for k, v in record["properties"].items() if k in shown}
    for name in wanted:
        properties.setdefault(name, None)
    return {
        "id": record["id"],
        "properties": properties,
        "createdAt": record["createdAt"],
        "updatedAt": record["updatedAt"],
        "archived": record["archived"],
    }


def unique_taken(
    error: Callable[..., Response],
    specs: Specs,
    holding: Callable[[str, str], Iterable[dict[str, Any]]],
    properties: dict[str, Any],
    own_id: str | None,
    *,
    noun: str,
    exempt: Collection[str] = (),
) -> Response | None:
    """409 when a unique property (but `exempt`) gets a value another live record holds.

    `holding(name, value)`: the records that may hold it (all of them, or an index's pick;
    each is checked here)."""
    for name, value in properties.items():
        spec = specs.get(name) or {}
        if name in exempt or not spec.get("hasUniqueValue") or value in (None, ""):
            continue
        for record in holding(name, str(value)):
            held = record["properties"].get(name)
            if record["id"] != own_id and not record["archived"] and held == str(value):
                return error(
                    409,
                    "CONFLICT",
                    f"A {noun} with this {name} already exists. Existing ID: {record['id']}",
                )
    return None


def not_unique(
    error: Callable[..., Response],
    specs: Specs,
    id_property: str | None,
    *,
    unique: Collection[str] = (),
) -> Response | None:
    """An `idProperty` must be a property with unique values (or one of `unique`)."""
    if id_property in (None, "", "hs_object_id", *unique):
        return None
    if (specs.get(str(id_property)) or {}).get("hasUniqueValue"):
        return None
    return error(400, "VALIDATION_ERROR", f"{id_property} is not a property with unique values")
