"""The reference CRM server against the OpenAPI contract (docs/contracts), with schemathesis.

Every built-in check runs (status codes, content type, response schema and headers, negative
data rejected, unsupported methods...) except positive_data_acceptance: the contract itself
documents valid-by-schema requests that are refused (a POST without email -> 422, an email
another contact holds -> 409). Responses are checked against the contract's own `Contact`
schema, as written (1.1 made it one flat schema that real contacts can match).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
import requests
import schemathesis
import yaml  # type: ignore[import-untyped]
from hypothesis import HealthCheck, settings

from auth0_sync_cli.crm_server import CrmServer

pytestmark = pytest.mark.contract

CONTRACT = Path(__file__).resolve().parents[2] / "docs" / "contracts" / "crm-contacts-api.yaml"
schema = schemathesis.openapi.from_path(CONTRACT)


@pytest.fixture(scope="module")
def unique_crm_server() -> Iterator[CrmServer]:
    """A reference CRM enforcing unique emails: the contract's optional rule."""
    with CrmServer(unique_emails=True) as server:
        yield server


@pytest.fixture(params=["default", "unique_emails"])
def server(
    request: pytest.FixtureRequest, crm_server: CrmServer, unique_crm_server: CrmServer
) -> CrmServer:
    return unique_crm_server if request.param == "unique_emails" else crm_server


def _validate(case: schemathesis.Case[Any], server: CrmServer) -> None:
    case.call_and_validate(
        base_url=server.base_url,
        headers={"Authorization": f"Bearer {server.token}"},
        excluded_checks=[schemathesis.checks.positive_data_acceptance],
    )


@schema.parametrize()
@settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
def test_server_honours_contract(case: schemathesis.Case[Any], server: CrmServer) -> None:
    _validate(case, server)


@schema.include(path="/contacts/{id}").parametrize()
@settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
def test_server_honours_contract_on_existing_contacts(
    case: schemathesis.Case[Any], server: CrmServer
) -> None:
    # Generated ids never name a real contact (those answer 404); point the case at one.
    contact = server.seed_contact(email=f"{uuid.uuid4().hex}@example.com", name="Ada")
    case.path_parameters = {"id": contact["id"]}

    _validate(case, server)


def test_a_listing_of_real_contacts_matches_the_contract_schema_as_written(
    crm: CrmServer,
) -> None:
    # Not left to generated cases: every optional property present, and some null.
    contract = yaml.safe_load(CONTRACT.read_text(encoding="utf-8"))
    page_schema = contract["paths"]["/contacts"]["get"]["responses"]["200"]["content"][
        "application/json"
    ]["schema"]
    full = {
        "email": "ada@example.com",
        "name": "Ada",
        "given_name": None,
        "family_name": "Lovelace",
        "phone": None,
        "status": "deactivated",
        "auth0_user_id": "auth0|1",
        "source_updated_at": "2026-03-04T10:15:30.000Z",
    }
    crm.seed_contact(**full)
    crm.seed_contact(email="grace@example.com")
    response = requests.get(
        crm.base_url + "/contacts",
        headers={"Authorization": f"Bearer {crm.token}"},
        timeout=5,
    )

    page = response.json()
    assert len(page) == 2
    # OpenAPI 3.0's `nullable` is not JSON Schema: validate with it spelled as type lists.
    jsonschema.validate(page, _nullable_as_types(page_schema, contract))


def _nullable_as_types(node: Any, contract: dict[str, Any]) -> Any:
    """`{type: string, nullable: true}` -> `{type: [string, "null"]}`, $refs resolved."""
    if isinstance(node, list):
        return [_nullable_as_types(item, contract) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[1]
        return _nullable_as_types(contract["components"]["schemas"][name], contract)
    out = {k: _nullable_as_types(v, contract) for k, v in node.items() if k != "nullable"}
    if node.get("nullable"):
        out["type"] = [node["type"], "null"]
    return out
