"""The client-side rolling limit counts the calls the vendor says were made, ours or not
(HubSpot's X-HubSpot-RateLimit-Remaining is per account)."""

from __future__ import annotations

from auth0_sync.destinations.limits import RollingLimit


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_calls_another_process_made_are_waited_out_before_sending() -> None:
    clock = Clock()
    limit = RollingLimit(10, 10.0, name="test", clock=clock)
    limit.acquire(lambda _: True, clock.sleep)  # ours: 1 of 10
    limit.learn(10, 10.0, remaining=2)  # the vendor has counted 8: 7 were someone else's
    limit.acquire(lambda _: True, clock.sleep)
    assert limit.waited == 0
    limit.acquire(lambda _: True, clock.sleep)
    assert limit.waited == 0  # the 10th call of the window
    limit.acquire(lambda _: True, clock.sleep)
    assert limit.waited > 10.0  # the 11th waits for the window to move on


def test_a_remaining_count_never_frees_slots_we_know_are_taken() -> None:
    clock = Clock()
    limit = RollingLimit(3, 1.0, name="test", clock=clock)
    for _ in range(3):
        limit.acquire(lambda _: True, clock.sleep)
    limit.learn(3, 1.0, remaining=3)  # an answer counted before our last calls landed
    limit.acquire(lambda _: True, clock.sleep)
    assert limit.waited > 1.0
