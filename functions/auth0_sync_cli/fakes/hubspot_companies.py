"""The fake HubSpot's companies, company properties and v4 contact-to-company associations,
written from HubSpot's public documentation:

- companies: https://developers.hubspot.com/docs/api-reference/latest/crm/objects/companies/
  guide and .../legacy/crm/objects/companies/create-company (`POST /crm/v3/objects/
  companies` with `properties`, 201 with `id`, `properties`, `createdAt`, `updatedAt`,
  `archived`); reads and updates by id or by a property with unique values (`idProperty`,
  https://developers.hubspot.com/changelog/updating-objects-by-custom-field-and-adding-
  owner-properties-via-the-api); DELETE archives; a unique value another company holds is
  409 CONFLICT (as for contacts: the fake's own message);
- company properties: `/crm/v3/properties/companies[/{name}]`, as the contacts' ones;
- associations v4 (https://developers.hubspot.com/docs/api-reference/crm-associations-v4/
  guide; basic/put-crm-v4-objects-objectType-objectId-associations-toObjectType-toObjectId):
  `PUT /crm/v4/objects/contacts/{id}/associations/companies/{id}` with a list of
  `{associationCategory, associationTypeId}` adds those types to the pair and answers
  `{fromObjectTypeId, fromObjectId, toObjectTypeId, toObjectId, labels}` (the generated
  type `LabelsBetweenObjectPair`: here the labels now on the pair); `DELETE` of the same
  path removes the association with all its labels (204); `POST /crm/v4/associations/
  contacts/companies/batch/labels/archive` removes the given labels (.../associate-records/
  batch/delete-association-labels: "deleting an unlabeled association will also delete
  all labeled associations"); the labels API (`GET`/`POST /crm/v4/associations/contacts/
  companies/labels`, results of `{category, typeId, label}`, .../associations-schema/
  labels/create-associations-label). The default unlabeled type is HUBSPOT_DEFINED 279
  and "Primary" is 1 (the associations overview's example).
Readings where the pages give no example: an unknown contact or company in the PUT path
is 404 OBJECT_NOT_FOUND, an unknown association type 400 VALIDATION_ERROR, a label name
already used 409 CONFLICT. Not modelled: association limits, paired labels, the
company-to-contact direction, company search and listing.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, Response, request

from auth0_sync_cli.fakes.hubspot_objects import (
    add_property_routes,
    not_unique,
    object_view,
    unique_taken,
)

STANDARD_COMPANY_PROPERTIES: dict[str, dict[str, Any]] = {
    name: {"name": name, "type": "string", "fieldType": "text", "hubspotDefined": True}
    for name in ("name", "domain", "industry", "city", "phone")
}
UNLABELED, PRIMARY = 279, 1
CONTACT_TYPE, COMPANY_TYPE = "0-1", "0-2"


class CompanyStore:
    """The fake's companies, properties, labels and associations (use under the fake's lock)."""

    def __init__(self, custom_properties: bool) -> None:
        self.properties: dict[str, dict[str, Any]] = dict(STANDARD_COMPANY_PROPERTIES)
        if custom_properties:
            from auth0_sync.destinations.hubspot_companies import CUSTOM_COMPANY_PROPERTIES

            for spec in CUSTOM_COMPANY_PROPERTIES:
                self.properties[spec["name"]] = dict(spec)
        self.records: dict[str, dict[str, Any]] = {}
        self.labels: dict[int, dict[str, Any]] = {
            UNLABELED: {"category": "HUBSPOT_DEFINED", "typeId": UNLABELED, "label": None},
            PRIMARY: {"category": "HUBSPOT_DEFINED", "typeId": PRIMARY, "label": "Primary"},
        }
        self.label_names: dict[str, int] = {}
        # (contact id, company id) -> association type ids on the pair
        self.pairs: dict[tuple[str, str], set[int]] = {}
        self._ids = itertools.count(5001)
        self._type_ids = itertools.count(101)

    def reset(self) -> None:
        self.records.clear()
        self.pairs.clear()

    def find(self, key: str, id_property: str | None) -> dict[str, Any] | None:
        if id_property and id_property != "hs_object_id":
            for record in self.records.values():
                if not record["archived"] and record["properties"].get(id_property) == key:
                    return record
            return None
        found = self.records.get(key)
        return None if found is None or found["archived"] else found

    def label_texts(self, types: set[int]) -> list[str]:
        return sorted(str(self.labels[t]["label"]) for t in types if self.labels[t]["label"])

    def view(self, record: dict[str, Any], wanted: list[str]) -> dict[str, Any]:
        return object_view(
            record,
            wanted,
            always={"hs_object_id", "createdate", "hs_lastmodifieddate"},
            default={"name", "domain"},
        )


def add_company_routes(
    app: Flask,
    fake: Any,
    error: Callable[..., Response],
    ok: Callable[..., Response],
    now: Callable[[], str],
) -> None:
    """Register the companies, company properties and v4 associations routes on `app`."""
    store: CompanyStore = fake.companies_store

    def not_found() -> Response:
        return error(404, "OBJECT_NOT_FOUND", "Object not found.  objectId are usually numeric.")

    def invalid(properties: dict[str, Any]) -> Response | None:
        for name, value in properties.items():
            spec = store.properties.get(name)
            if spec is None:
                return error(400, "VALIDATION_ERROR", f'Property "{name}" does not exist')
            options = [o["value"] for o in spec.get("options", [])]
            if spec.get("type") == "enumeration" and value not in ("", None, *options):
                return error(
                    400, "VALIDATION_ERROR", f"{value!r} was not one of the allowed options"
                )
        return None

    def taken(properties: dict[str, Any], own_id: str | None) -> Response | None:
        def every(_name: str, _value: str) -> Iterable[dict[str, Any]]:
            return store.records.values()

        return unique_taken(error, store.properties, every, properties, own_id, noun="company")

    def write(record: dict[str, Any], properties: dict[str, Any]) -> None:
        for name, value in properties.items():
            record["properties"][name] = "" if value is None else str(value)
        record["properties"]["hs_lastmodifieddate"] = record["updatedAt"] = now()

    def addressed(key: str) -> dict[str, Any] | Response:
        """The live company a path names, by id or by a unique `idProperty`; else the
        refusal (400 for a property without unique values, 404)."""
        id_property = request.args.get("idProperty")
        refused = not_unique(error, store.properties, id_property)
        if refused is not None:
            return refused
        record = store.find(key, id_property)
        return not_found() if record is None else record

    add_property_routes(app, fake.lock, store.properties, "companies", error, ok)

    @app.post("/crm/v3/objects/companies")
    def create_company() -> Response:
        properties = (request.get_json(silent=True) or {}).get("properties")
        if not isinstance(properties, dict):
            return error(400, "VALIDATION_ERROR", "Invalid input JSON: properties")
        with fake.lock:
            problem = invalid(properties) or taken(properties, None)
            if problem is not None:
                return problem
            new_id = str(next(store._ids))
            stamp = now()
            record = {
                "id": new_id,
                "properties": {"hs_object_id": new_id, "createdate": stamp},
                "createdAt": stamp,
                "archived": False,
            }
            write(record, properties)
            store.records[new_id] = record
            return ok(store.view(record, list(properties)), 201)

    @app.get("/crm/v3/objects/companies/<path:key>")
    def read_company(key: str) -> Response:
        with fake.lock:
            record = addressed(key)
            if isinstance(record, Response):
                return record
            wanted = [p for p in request.args.get("properties", "").split(",") if p]
            return ok(store.view(record, wanted))

    @app.patch("/crm/v3/objects/companies/<path:key>")
    def update_company(key: str) -> Response:
        properties = (request.get_json(silent=True) or {}).get("properties")
        if not isinstance(properties, dict):
            return error(400, "VALIDATION_ERROR", "Invalid input JSON: properties")
        with fake.lock:
            record = addressed(key)
            if isinstance(record, Response):
                return record
            problem = invalid(properties) or taken(properties, record["id"])
            if problem is not None:
                return problem
            write(record, properties)
            return ok(store.view(record, list(properties)))

    @app.delete("/crm/v3/objects/companies/<path:key>")
    def archive_company(key: str) -> Response:
        with fake.lock:
            record = store.find(key, None)
            if record is not None:
                record["archived"] = True
        return Response(status=204)

    pair_path = "/crm/v4/objects/contacts/<contact_id>/associations/companies/<company_id>"

    @app.put(pair_path)
    def associate(contact_id: str, company_id: str) -> Response:
        body = request.get_json(silent=True)
        if not isinstance(body, list) or not body:
            return error(400, "VALIDATION_ERROR", "a list of association types is required")
        with fake.lock:
            contact = fake.records.get(contact_id)
            if contact is None or contact["archived"] or store.find(company_id, None) is None:
                return not_found()
            wanted: set[int] = set()
            for spec in body:
                type_id = spec.get("associationTypeId") if isinstance(spec, dict) else None
                label = store.labels.get(type_id) if isinstance(type_id, int) else None
                if label is None or spec.get("associationCategory") != label["category"]:
                    return error(400, "VALIDATION_ERROR", f"invalid association type {spec!r}")
                wanted.add(int(type_id))  # type: ignore[arg-type]
            types = store.pairs.setdefault((contact_id, company_id), set())
            types |= wanted | {UNLABELED}
            return ok(
                {
                    "fromObjectTypeId": CONTACT_TYPE,
                    "fromObjectId": contact_id,
                    "toObjectTypeId": COMPANY_TYPE,
                    "toObjectId": company_id,
                    "labels": store.label_texts(types),
                }
            )

    @app.delete(pair_path)
    def dissociate(contact_id: str, company_id: str) -> Response:
        with fake.lock:
            store.pairs.pop((contact_id, company_id), None)
        return Response(status=204)

    @app.post("/crm/v4/associations/contacts/companies/batch/labels/archive")
    def archive_labels() -> Response:
        inputs = (request.get_json(silent=True) or {}).get("inputs")
        if not isinstance(inputs, list):
            return error(400, "VALIDATION_ERROR", "Invalid input JSON: inputs")
        with fake.lock:
            for one in inputs:
                pair = (str(one["from"]["id"]), str(one["to"]["id"]))
                gone = {int(t["associationTypeId"]) for t in one.get("types") or []}
                types = store.pairs.get(pair)
                if types is None:
                    continue
                types -= gone
                if UNLABELED in gone or not types:
                    store.pairs.pop(pair, None)
        return Response(status=204)

    @app.get("/crm/v4/associations/contacts/companies/labels")
    def labels() -> Response:
        with fake.lock:
            return ok({"results": [dict(x) for x in store.labels.values()]})

    @app.post("/crm/v4/associations/contacts/companies/labels")
    def create_label() -> Response:
        body = request.get_json(silent=True) or {}
        label, name = body.get("label"), body.get("name")
        if not isinstance(label, str) or not isinstance(name, str) or not label or not name:
            return error(400, "VALIDATION_ERROR", "label and name are required")
        with fake.lock:
            if name in store.label_names:
                return error(409, "CONFLICT", f"A label named '{name}' already exists.")
            type_id = next(store._type_ids)
            store.labels[type_id] = {"category": "USER_DEFINED", "typeId": type_id, "label": label}
            store.label_names[name] = type_id
            return ok({"results": [dict(store.labels[type_id])]})
