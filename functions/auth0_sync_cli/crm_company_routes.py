"""The reference CRM's company routes (contract 1.2): `/companies`, `/companies/{id}`,
`/companies/{id}/members` and `/companies/{id}/members/{contact_id}`. The stores raise,
crm_server's error handlers answer (404, 409, 422); the faults apply as to contacts."""

from __future__ import annotations

from flask import Flask, Response, request

from auth0_sync_cli.crm_companies import (
    CompanyStore,
    OrgIdTaken,
    validate_company,
    validate_membership,
)
from auth0_sync_cli.crm_contacts import IDEMPOTENCY_HEADER
from auth0_sync_cli.crm_http import error_response, json_response, listing_limit, request_body

COMPANIES_PATH = "/companies"


def register_company_routes(app: Flask, companies: CompanyStore) -> None:
    """Serve the contract's company and membership paths from `companies`."""

    @app.get(COMPANIES_PATH)
    def find_companies() -> Response:
        limit = listing_limit()  # refused even where it has no effect, as for contacts
        if isinstance(limit, Response):
            return limit
        auth0_org_id = request.args.get("auth0_org_id")
        if auth0_org_id is not None:
            return json_response(companies.find(auth0_org_id))
        return json_response(companies.page(after=request.args.get("after"), limit=limit))

    @app.post(COMPANIES_PATH)
    def create_company() -> Response:
        fields = validate_company(request_body(), creating=True)
        try:
            company, created = companies.create(fields, request.headers.get(IDEMPOTENCY_HEADER))
        except OrgIdTaken as exc:
            return error_response(409, "conflict", str(exc))
        response = json_response(company, 201 if created else 200)
        response.headers["Location"] = f"{COMPANIES_PATH}/{company['id']}"
        return response

    @app.get(f"{COMPANIES_PATH}/<company_id>")
    def read_company(company_id: str) -> Response:
        return json_response(companies.get(company_id))

    @app.patch(f"{COMPANIES_PATH}/<company_id>")
    def update_company(company_id: str) -> Response:
        companies.get(company_id)  # 404 before 422, as for contacts
        fields = validate_company(request_body(), creating=False)
        try:
            return json_response(companies.update(company_id, fields))
        except OrgIdTaken as exc:
            return error_response(409, "conflict", str(exc))

    @app.get(f"{COMPANIES_PATH}/<company_id>/members")
    def list_members(company_id: str) -> Response:
        return json_response([m.as_json() for m in companies.members(company_id)])

    @app.put(f"{COMPANIES_PATH}/<company_id>/members/<contact_id>")
    def put_member(company_id: str, contact_id: str) -> Response:
        # 404 (company, then contact) before 422: check both before reading the body.
        companies.get(company_id)
        companies.require_contact(contact_id)
        roles, source_updated_at = validate_membership(request_body())
        membership, created = companies.put_member(company_id, contact_id, roles, source_updated_at)
        return json_response(membership.as_json(), 201 if created else 200)

    @app.delete(f"{COMPANIES_PATH}/<company_id>/members/<contact_id>")
    def delete_member(company_id: str, contact_id: str) -> Response:
        companies.delete_member(company_id, contact_id)
        return Response(status=204)
