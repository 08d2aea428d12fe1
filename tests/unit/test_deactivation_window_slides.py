"""The live brake's window slides (`auth0_sync.deactivation_window`): a deactivation counts
for exactly DEACTIVATION_WINDOW_SECONDS after it was admitted, wherever the clock's hour
starts. Both stores, the in-memory one and the state table's item (moto), on a clock set by
hand; expected answers written by hand."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from auth0_sync.deactivation_window import (
    DeactivationWindow,
    DynamoDeactivationWindow,
    MemoryDeactivationWindow,
)
from auth0_sync.names import STATE_TABLE_PK

pytestmark = pytest.mark.unit

HOUR = 3600
START = 1_800_000_000.0  # a whole hour in epoch seconds: a fixed window would start here


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


Make = Callable[[int, Clock], DeactivationWindow]


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The state table's key schema in moto (in-process), nothing else of the stack."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        monkeypatch.setenv(name, value)
    with mock_aws():
        boto3.client("dynamodb").create_table(
            TableName="state",
            KeySchema=[{"AttributeName": STATE_TABLE_PK, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": STATE_TABLE_PK, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield "state"


@pytest.fixture(params=["memory", "dynamodb"])
def make(request: pytest.FixtureRequest) -> Make:
    if request.param == "memory":
        return lambda limit, clock: MemoryDeactivationWindow(limit, HOUR, clock=clock)
    name: str = request.getfixturevalue("table")
    return lambda limit, clock: DynamoDeactivationWindow(name, limit, HOUR, clock=clock)


def admits_at(window: DeactivationWindow, clock: Clock, *offsets: float) -> list[bool]:
    answers = []
    for offset in offsets:
        clock.now = START + offset
        answers.append(window.admit())
    return answers


def test_the_limit_holds_in_any_window_not_only_a_clock_hour(make: Make) -> None:
    """Three deletes in two minutes across the hour's boundary, limit 2: the third waits
    (a fixed hourly window would have started afresh at the boundary and let it through)."""
    clock = Clock()
    window = make(2, clock)

    assert admits_at(window, clock, HOUR - 60, HOUR - 30, HOUR + 30) == [True, True, False]


def test_at_the_boundary_n_minus_one_passes_and_n_plus_one_stops(make: Make) -> None:
    clock = Clock()
    window = make(3, clock)

    # Two (N-1) pass, then the third (N) is the last one admitted; the fourth stops.
    assert admits_at(window, clock, 0, 10, 20, 30) == [True, True, True, False]


def test_a_deactivation_a_whole_window_old_no_longer_counts(make: Make) -> None:
    clock = Clock()
    window = make(2, clock)
    assert admits_at(window, clock, 0, 1800) == [True, True]

    assert admits_at(window, clock, HOUR - 0.001) == [False]  # both still within the hour
    assert admits_at(window, clock, HOUR) == [True]  # the first one is an hour old: gone
    assert admits_at(window, clock, HOUR + 1) == [False]  # 1800 and 3600 still count


def test_every_invocation_counts_against_the_same_item(table: str) -> None:
    """Two Lambda invocations (two windows on the one state table) share the count."""
    clock = Clock()
    first, second = (DynamoDeactivationWindow(table, 2, HOUR, clock=clock) for _ in range(2))

    assert admits_at(first, clock, 0) == [True]
    assert admits_at(second, clock, 1) == [True]
    assert admits_at(first, clock, 2) == [False]


class Interloper:
    """The DynamoDB client, with another invocation admitting a delete between our read
    of the window and our write (once)."""

    def __init__(self, client: Any, other: DynamoDeactivationWindow) -> None:
        self.client, self.other, self.done = client, other, False

    def get_item(self, **kwargs: Any) -> Any:
        return self.client.get_item(**kwargs)

    def update_item(self, **kwargs: Any) -> Any:
        if not self.done:
            self.done = True
            assert self.other.admit()
        return self.client.update_item(**kwargs)


@pytest.mark.parametrize("before", [0, 1], ids=["first-item", "item-exists"])
def test_a_delete_racing_another_is_decided_on_the_window_the_other_left(
    table: str, before: int
) -> None:
    clock = Clock()
    limit = before + 1
    other = DynamoDeactivationWindow(table, limit, HOUR, clock=clock)
    assert admits_at(other, clock, *range(before)) == [True] * before
    ours = DynamoDeactivationWindow(
        table,
        limit,
        HOUR,
        client=Interloper(boto3.client("dynamodb"), other),
        clock=clock,
    )

    # The other took the last place while ours was deciding: ours reads again, and waits.
    assert ours.admit() is False
    assert admits_at(other, clock, 5) == [False]
