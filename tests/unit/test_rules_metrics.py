"""What an applied outcome is counted as (`auth0_sync/lambda_app.py`'s `publish`), issue 28:
each outcome under its own CloudWatch metric, once, so a plain update is never counted as a
reactivation, nor a contact that changed hands (`linked`) as an update. The core's side
(which outcome an event is reported as) is held by `tests/unit/test_rules_sync.py`. Each
test failed when its rule was removed by hand.

The metric names are written out as the dashboard and the alarms read them (names.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from auth0_sync import lambda_app
from auth0_sync.outcome import Outcome

pytestmark = pytest.mark.unit


@pytest.fixture
def emitted() -> Iterator[None]:
    lambda_app.metrics.clear_metrics()
    yield
    lambda_app.metrics.clear_metrics()


def counted(outcome: Outcome) -> dict[str, Any]:
    """The metric values `publish` adds for one outcome (the EMF document's values)."""
    lambda_app.publish(outcome)
    document: dict[str, Any] = dict(lambda_app.metrics.serialize_metric_set())
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    return {metric["Name"]: document[metric["Name"]] for metric in directive["Metrics"]}


@pytest.mark.parametrize(
    ("reason", "metric"),
    [
        ("created", "ContactCreated"),
        ("updated", "ContactUpdated"),
        ("reactivated", "ContactReactivated"),
        ("linked", "ContactLinked"),
        ("deactivated", "ContactDeactivated"),
        ("anonymized", "ContactAnonymized"),
        # HubSpot's archive and GDPR erase are the deactivation that CRM offers.
        ("archived", "ContactDeactivated"),
        ("erased", "ContactDeactivated"),
    ],
)
def test_an_applied_outcome_is_counted_once_under_its_own_metric(
    emitted: None, reason: str, metric: str
) -> None:
    outcome = Outcome("applied", reason, "evt_1", "user.updated", "auth0|m28", "c_1", 2)
    assert counted(outcome) == {"CrmCalls": [2.0], metric: [1.0]}
