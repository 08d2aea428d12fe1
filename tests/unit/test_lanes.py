"""`Lanes`: one key's jobs one after the other in the order submitted, different keys at
once, and progress counted only through jobs that are all done."""

from __future__ import annotations

import threading

import pytest

from auth0_sync.lanes import Lanes


def test_one_keys_jobs_run_in_order_while_other_keys_run_at_once() -> None:
    lanes = Lanes(8)
    ran: dict[str, list[int]] = {}
    lock = threading.Lock()
    keys = [f"user{k}" for k in range(6)]
    # Each key's first job waits until every key's first job has started: only lanes
    # running different keys at once get past it.
    started = threading.Barrier(len({lanes.lane_of(k) for k in keys}), timeout=5)
    first_of_lane: set[int] = set()

    def job(key: str, n: int) -> None:
        lane = lanes.lane_of(key)
        with lock:
            wait = lane not in first_of_lane
            first_of_lane.add(lane)
        if wait:
            started.wait()
        with lock:
            ran.setdefault(key, []).append(n)

    for n in range(5):
        for key in keys:
            lanes.submit(key, lambda key=key, n=n: job(key, n))  # type: ignore[misc]
    lanes.close()

    assert ran == {key: [0, 1, 2, 3, 4] for key in keys}
    assert lanes.done_through() == 30


def test_every_job_of_one_key_goes_to_one_lane() -> None:
    lanes = Lanes(16)
    try:
        assert {lanes.lane_of("auth0|ada") for _ in range(50)} == {lanes.lane_of("auth0|ada")}
        assert len({lanes.lane_of(f"auth0|u{n}") for n in range(200)}) > 8  # spread
    finally:
        lanes.close()


def test_progress_counts_only_jobs_that_all_before_them_are_done() -> None:
    lanes = Lanes(4)
    hold = threading.Event()
    keys = ["a", "b"]
    while lanes.lane_of(keys[1]) == lanes.lane_of(keys[0]):  # two different lanes
        keys[1] += "x"

    def slow() -> None:
        hold.wait(5)

    lanes.submit(keys[0], slow)  # the first job is slow
    done_b = threading.Event()
    lanes.submit(keys[1], done_b.set)

    assert done_b.wait(5)
    assert lanes.done_through() == 0  # the second is done, the first is not
    hold.set()
    lanes.close()
    assert lanes.done_through() == 2


def test_a_failed_job_is_raised_and_the_rest_is_not_run() -> None:
    lanes = Lanes(1)
    ran: list[int] = []

    def fail() -> None:
        raise RuntimeError("boom")

    lanes.submit("a", fail)
    lanes.submit("a", lambda: ran.append(1))
    with pytest.raises(RuntimeError, match="boom"):
        lanes.close()
    assert ran == []
