"""The reference CRM server against the OpenAPI contract (docs/contracts), with schemathesis.

Every built-in check runs (status codes, content type, response schema and headers, negative
data rejected, unsupported methods...) except positive_data_acceptance: the contract itself
documents valid-by-schema requests that are refused (a POST without email -> 422, an email
another contact holds -> 409). Responses are checked against the contract's own schemas, as
written (1.1 made `Contact` one flat schema that real contacts can match).

Two answers the contract documents count as rejecting bad data: 412 (1.2: a PATCH whose
If-Match names another version is refused before its body is read, RFC 9110 13.2.1) and 413
(more than 100 operations or values). And `POST /contacts/batch` is exempt from
negative_data_rejection: the contract answers a malformed *operation* with that operation's
422 inside a 200 (ContactBatchResult), so a batch holding one is rightly accepted.

The paths added in 1.2 (companies, memberships, batches) run with fewer examples than the
1.1 paths, to keep `make test` fast; their rules are tested one by one in test_crm_*.py.
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
from schemathesis.config import SchemathesisConfig

from auth0_sync_cli.crm_server import CrmServer

pytestmark = pytest.mark.contract

CONTRACT = Path(__file__).resolve().parents[2] / "docs" / "contracts" / "crm-contacts-api.yaml"
# Schemathesis's default rejection statuses, plus the contract's 412 and 413.
REJECTIONS = ["400", "401", "403", "404", "405", "406", "409", "412", "413", "415", "422", "428"]
CONFIG = SchemathesisConfig.from_dict(
    {"checks": {"negative_data_rejection": {"expected-statuses": [*REJECTIONS, "429", "5xx"]}}}
)
schema = schemathesis.openapi.from_path(CONTRACT, config=CONFIG)
PATHS_OF_1_2 = r"^/(companies|contacts/batch)"
BATCH_PATH = "/contacts/batch"


@pytest.fixture(scope="module")
def unique_crm_server() -> Iterator[CrmServer]:
    """A reference CRM enforcing the contract's optional rules: unique emails and unique
    `auth0_org_id`."""
    with CrmServer(unique_emails=True, unique_org_ids=True) as server:
        yield server


@pytest.fixture(params=["default", "unique"])
def server(
    request: pytest.FixtureRequest, crm_server: CrmServer, unique_crm_server: CrmServer
) -> CrmServer:
    return unique_crm_server if request.param == "unique" else crm_server


def _validate(case: schemathesis.Case[Any], server: CrmServer) -> None:
    excluded = [schemathesis.checks.positive_data_acceptance]
    if case.operation.path == BATCH_PATH:
        excluded.append(schemathesis.checks.negative_data_rejection)  # see the docstring
    case.call_and_validate(
        base_url=server.base_url,
        headers={"Authorization": f"Bearer {server.token}"},
        excluded_checks=excluded,
    )


@schema.exclude(path_regex=PATHS_OF_1_2).parametrize()
@settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
def test_server_honours_contract(case: schemathesis.Case[Any], server: CrmServer) -> None:
    _validate(case, server)


@schema.include(path_regex=PATHS_OF_1_2).parametrize()
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
def test_server_honours_contract_on_the_paths_of_1_2(
    case: schemathesis.Case[Any], server: CrmServer
) -> None:
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


@schema.include(path_regex=r"^/companies/").parametrize()
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
def test_server_honours_contract_on_existing_companies_and_members(
    case: schemathesis.Case[Any], server: CrmServer
) -> None:
    # Generated ids never name a real company or contact; point the case at real ones,
    # the contact a member already (so a PUT is a 200 as often as a 201).
    company = server.seed_company(name="acme", auth0_org_id=f"org_{uuid.uuid4().hex}")
    contact = server.seed_contact(email=f"{uuid.uuid4().hex}@example.com")
    server.seed_membership(company["id"], contact["id"], ["admin"])
    parameters = {"id": company["id"], "contact_id": contact["id"]}
    case.path_parameters = {name: parameters[name] for name in case.path_parameters or {}}

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


def test_real_companies_members_and_batch_results_match_the_contract_schemas_as_written(
    crm: CrmServer,
) -> None:
    # Every optional property present (and display_name null), which generated cases may miss.
    contract = yaml.safe_load(CONTRACT.read_text(encoding="utf-8"))
    paths = contract["paths"]
    headers = {"Authorization": f"Bearer {crm.token}"}
    crm.seed_company(
        name="acme-robotics",
        auth0_org_id="org_1",
        display_name=None,
        status="deactivated",
        source_updated_at="2026-03-04T10:15:30.000Z",
    )
    crm.seed_contact(email="ada@example.com", auth0_user_id="auth0|1")
    member = {"roles": ["b", "a"], "source_updated_at": "2026-03-04T10:15:31Z"}
    requests.put(
        f"{crm.base_url}/companies/co_1/members/c_1", json=member, headers=headers, timeout=5
    )
    operations = [
        {"op": "update", "id": "c_1", "fields": {"name": "Ada"}},
        {"op": "update", "id": "c_9", "fields": {"name": "Nobody"}},
    ]

    def answer(method: str, path: str, **kwargs: Any) -> Any:
        response = requests.request(
            method, crm.base_url + path, headers=headers, timeout=5, **kwargs
        )
        assert response.status_code == 200
        return response.json()

    def schema_of(path: str, method: str) -> Any:
        content = paths[path][method]["responses"]["200"]["content"]["application/json"]
        return _nullable_as_types(content["schema"], contract)

    cases = [
        (answer("GET", "/companies"), schema_of("/companies", "get")),
        (answer("GET", "/companies/co_1/members"), schema_of("/companies/{id}/members", "get")),
        (
            answer("POST", "/contacts/batch", json={"operations": operations}),
            schema_of("/contacts/batch", "post"),
        ),
    ]
    for body, body_schema in cases:
        assert body  # not an empty list or object
        jsonschema.validate(body, body_schema)


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
