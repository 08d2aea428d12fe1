"""The one routing definition: every handled type, a handler that exists, a pattern."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from auth0_sync.names import PARTNER_SOURCE_PREFIX, EventType
from auth0_sync.routing import ROUTES, route_for

pytestmark = pytest.mark.unit

ASSET_ROOT = Path(__file__).resolve().parents[2] / "functions"


def test_one_route_per_event_type() -> None:
    assert [r.event_type for r in ROUTES] == list(EventType)
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
    assert route_for("organization.created") is None
    assert route_for("com.auth0.user.created") is None  # callers normalise first
