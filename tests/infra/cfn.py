"""Small readers over a synthesized template: resources by type, refs, policy statements."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Template

from auth0_sync.routing import Route

Resource = dict[str, Any]


def resources(template: Template, type_: str) -> dict[str, Resource]:
    """Logical id -> resource, for every resource of `type_`."""
    return {lid: dict(res) for lid, res in template.find_resources(type_).items()}


def only(template: Template, type_: str) -> tuple[str, Resource]:
    """The single resource of `type_` (fails if there are none or several)."""
    found = resources(template, type_)
    assert len(found) == 1, f"expected one {type_}, found {sorted(found)}"
    return next(iter(found.items()))


def logical_id(ref: Any) -> str:
    """The logical id a {"Ref": ...} or {"Fn::GetAtt": [..., ...]} points at."""
    if "Ref" in ref:
        return str(ref["Ref"])
    return str(ref["Fn::GetAtt"][0])


def function_for(template: Template, route: Route) -> tuple[str, Resource]:
    """The Lambda function whose handler is the route's."""
    matches = [
        (lid, res)
        for lid, res in resources(template, "AWS::Lambda::Function").items()
        if res["Properties"]["Handler"] == route.handler
    ]
    assert len(matches) == 1, f"expected one function for {route.handler}, got {matches}"
    return matches[0]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_statements(template: Template, role_id: str) -> list[Resource]:
    """Every statement of every policy attached to the role `role_id`."""
    statements: list[Resource] = []
    for policy in resources(template, "AWS::IAM::Policy").values():
        roles = [logical_id(ref) for ref in policy["Properties"].get("Roles", [])]
        if role_id in roles:
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


# Pseudo parameters of an example deployment, to read intrinsic functions as values.
PSEUDO = {
    "AWS::Partition": "aws",
    "AWS::Region": "eu-west-1",
    "AWS::AccountId": "123456789012",
    "AWS::URLSuffix": "amazonaws.com",
}


def render(value: Any, refs: dict[str, str] | None = None) -> str:
    """A string built from literals, Fn::Join and Refs to pseudo parameters (or `refs`)."""
    known = {**PSEUDO, **(refs or {})}
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Ref" in value:
        return known[value["Ref"]]
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(render(part, refs) for part in parts)
    raise ValueError(f"cannot render {value!r}")
