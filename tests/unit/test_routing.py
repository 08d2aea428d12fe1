"""The one routing definition: every handled type, a handler that exists, a pattern."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from auth0_sync.names import PARTNER_SOURCE_PREFIX, EventType, OrgEventType
from auth0_sync.routing import ORG_ROUTES, ROUTES, USER_ROUTES, route_for

pytestmark = pytest.mark.unit

ASSET_ROOT = Path(__file__).resolve().parents[2] / "functions"


def test_one_route_per_event_type() -> None:
    assert [r.event_type for r in USER_ROUTES] == list(EventType)
    assert [r.event_type for r in ORG_ROUTES] == list(OrgEventType)
    assert ROUTES == USER_ROUTES + ORG_ROUTES
    assert len({r.construct_id for r in ROUTES}) == len(ROUTES)


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.event_type)
def test_handler_module_exists_and_exposes_handler(route: object) -> None:
    from auth0_sync.routing import Route

    assert isinstance(route, Route)
    assert (ASSET_ROOT / route.handler_file).is_file()
    module = importlib.import_module(route.module)
    assert callable(module.handler)
    assert route.handler == f"{route.module}.handler"


def test_pattern_matches_detail_type_both_spellings_and_source_prefix() -> None:
    route = route_for("user.deleted")
    assert route is not None
    assert route.event_pattern() == {
        "source": [{"prefix": PARTNER_SOURCE_PREFIX}],
        "detail": {"type": ["user.deleted", "com.auth0.user.deleted"]},
    }


def test_unknown_types_have_no_route() -> None:
    assert route_for("organization.connection.added") is None  # early access: ignored
    assert route_for("group.created") is None
    assert route_for("com.auth0.user.created") is None  # callers normalise first


def test_organization_types_are_routed_like_the_user_types() -> None:
    route = route_for("organization.member.role.assigned")
    assert route is not None
    assert route.handler == "auth0_sync.handlers.org_member_role_assigned.handler"
    assert route.event_pattern()["detail"] == {
        "type": ["organization.member.role.assigned", "com.auth0.organization.member.role.assigned"]
    }
