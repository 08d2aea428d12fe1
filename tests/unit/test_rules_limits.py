"""The client-side rolling-window rate limit (`auth0_sync.destinations.limits`), on a fake
clock whose sleep moves it (issue 28): expected waits are worked out by hand from the rule
"at most `max_calls` sends in any `window` seconds, plus a margin of 5% of the window"."""

from __future__ import annotations

import pytest

from auth0_sync.destinations.limits import RollingLimit
from auth0_sync.errors import TransientError

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []
        self.asked: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def time_left(self, seconds: float) -> bool:
        self.asked.append(seconds)
        return True


def limit(clock: Clock, max_calls: int = 2, window: float = 10.0) -> RollingLimit:
    return RollingLimit(max_calls, window, name="hubspot", clock=clock)


def test_sends_within_the_limit_never_wait() -> None:
    clock = Clock()
    rolling = limit(clock)
    rolling.acquire(clock.time_left, clock.sleep)
    clock.now += 3
    rolling.acquire(clock.time_left, clock.sleep)
    assert (clock.slept, clock.asked, rolling.waited) == ([], [], 0.0)


def test_a_send_over_the_limit_waits_for_the_oldest_to_leave_the_window_plus_a_margin() -> None:
    clock = Clock()
    rolling = limit(clock)
    rolling.acquire(clock.time_left, clock.sleep)  # t=100
    clock.now += 3
    rolling.acquire(clock.time_left, clock.sleep)  # t=103
    clock.now += 1  # t=104: the first send leaves the window at 110; margin 0.5 s
    rolling.acquire(clock.time_left, clock.sleep)
    assert clock.slept == [pytest.approx(6.5)]
    assert clock.asked == [pytest.approx(6.5)]
    assert rolling.waited == pytest.approx(6.5)
    # The next one waits for the second send (103 + 10 + 0.5 = 113.5; now 110.5).
    rolling.acquire(clock.time_left, clock.sleep)
    assert clock.slept == [pytest.approx(6.5), pytest.approx(3.0)]
    assert rolling.waited == pytest.approx(9.5)


def test_a_slot_is_free_again_exactly_one_window_after_its_send() -> None:
    clock = Clock()
    rolling = limit(clock, max_calls=1)
    rolling.acquire(clock.time_left, clock.sleep)
    clock.now += 10.0
    rolling.acquire(clock.time_left, clock.sleep)
    assert clock.slept == []


def test_a_wait_the_invocation_cannot_afford_is_a_429_naming_the_limit() -> None:
    clock = Clock()
    rolling = limit(clock)
    rolling.acquire(clock.time_left, clock.sleep)
    rolling.acquire(clock.time_left, clock.sleep)
    asked: list[float] = []

    def no_time(seconds: float) -> bool:
        asked.append(seconds)
        return False

    with pytest.raises(TransientError) as refused:
        rolling.acquire(no_time, clock.sleep)
    assert refused.value.reason == "crm_429"
    assert refused.value.message == (
        "crm: hubspot limit of 2 per 10s reached; no time left in this invocation to wait 10.5s"
    )
    assert asked == [pytest.approx(10.5)]
    assert (clock.slept, rolling.waited) == ([], 0.0)


def test_what_the_vendor_says_beats_the_defaults() -> None:
    clock = Clock()
    rolling = limit(clock, max_calls=100, window=10.0)
    rolling.learn(1, 0.5)
    assert (rolling.max_calls, rolling.window) == (1, 0.5)
    rolling.acquire(clock.time_left, clock.sleep)
    rolling.acquire(clock.time_left, clock.sleep)
    assert clock.slept == [pytest.approx(0.525)]  # 0.5 s window, 5% margin


@pytest.mark.parametrize("said", [(None, None), (0, 0.0), (-1, -1.0)])
def test_no_limit_or_a_nonsensical_one_keeps_the_last(said: tuple[int | None, float]) -> None:
    rolling = limit(Clock(), max_calls=7, window=3.0)
    rolling.learn(*said)
    assert (rolling.max_calls, rolling.window) == (7, 3.0)


def test_a_limit_is_learnt_alone_without_its_window_and_back() -> None:
    rolling = limit(Clock(), max_calls=7, window=3.0)
    rolling.learn(4, None)
    assert (rolling.max_calls, rolling.window) == (4, 3.0)
    rolling.learn(None, 2.0)
    assert (rolling.max_calls, rolling.window) == (4, 2.0)
