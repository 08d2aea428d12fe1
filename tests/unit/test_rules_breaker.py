"""The circuit breaker's rules (`auth0_sync/destinations/transport.py`, issue 28): only
consecutive outage failures open it, a success resets the count, after the cool-down one
probe is let through and its answer closes or reopens it. Each test failed when its rule
was removed by hand. The breaker reads `time.monotonic`; the tests move that clock.
"""

from __future__ import annotations

import pytest

from auth0_sync.destinations.transport import CircuitBreaker
from auth0_sync.errors import TransientError

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr("auth0_sync.destinations.transport.time.monotonic", fake)
    return fake


def fails_fast(breaker: CircuitBreaker) -> TransientError | None:
    try:
        breaker.before_call()
    except TransientError as exc:
        return exc
    return None


def test_a_success_resets_the_count_of_failures(clock: Clock) -> None:
    breaker = CircuitBreaker(threshold=3, cool_down=30.0)
    breaker.record(outage=True, reason="crm_503")
    breaker.record(outage=True, reason="crm_503")
    breaker.record(outage=False)
    breaker.record(outage=True, reason="crm_503")
    breaker.record(outage=True, reason="crm_503")
    assert fails_fast(breaker) is None  # 2 in a row since the success, not 4
    assert breaker.opened == 0


def test_it_opens_at_the_threshold_and_names_the_last_reason(clock: Clock) -> None:
    breaker = CircuitBreaker(threshold=3, cool_down=30.0, name="hubspot")
    breaker.record(outage=True, reason="hubspot_503")
    breaker.record(outage=True, reason="hubspot_503")
    assert fails_fast(breaker) is None
    breaker.record(outage=True, reason="hubspot_timeout")
    error = fails_fast(breaker)
    assert error is not None
    assert error.reason == "hubspot_timeout"
    assert error.message == (
        "hubspot: circuit open after 3 failures in a row, the last hubspot_timeout "
        "(next probe in 30s)"
    )
    assert breaker.opened == 1


def test_a_failure_without_a_reason_is_named_after_the_circuit(clock: Clock) -> None:
    breaker = CircuitBreaker(threshold=1, cool_down=30.0, name="auth0")
    breaker.record(outage=True)
    error = fails_fast(breaker)
    assert error is not None
    assert error.reason == "auth0_circuit_open"


def test_after_the_cool_down_one_probe_goes_and_its_success_closes(clock: Clock) -> None:
    breaker = CircuitBreaker(threshold=2, cool_down=30.0)
    breaker.record(outage=True, reason="crm_503")
    breaker.record(outage=True, reason="crm_503")
    clock.now += 29.9
    assert fails_fast(breaker) is not None
    clock.now += 0.1  # the cool-down is over
    assert fails_fast(breaker) is None  # the probe
    assert fails_fast(breaker) is not None  # anyone else waits for the probe's answer
    breaker.record(outage=False)
    assert fails_fast(breaker) is None
    assert fails_fast(breaker) is None
    assert breaker.opened == 1


def test_a_failed_probe_opens_it_again_for_a_whole_cool_down(clock: Clock) -> None:
    breaker = CircuitBreaker(threshold=2, cool_down=30.0)
    breaker.record(outage=True, reason="crm_503")
    breaker.record(outage=True, reason="crm_503")
    clock.now += 30.0
    assert fails_fast(breaker) is None  # the probe
    breaker.record(outage=True, reason="crm_502")
    assert breaker.opened == 2
    clock.now += 29.0
    error = fails_fast(breaker)
    assert error is not None
    assert error.reason == "crm_502"
    assert "after 3 failures in a row" in error.message
    assert "(next probe in 1s)" in error.message


def test_failures_while_open_do_not_count_as_new_openings(clock: Clock) -> None:
    breaker = CircuitBreaker(threshold=1, cool_down=30.0)
    breaker.record(outage=True, reason="crm_503")
    breaker.record(outage=True, reason="crm_503")  # another call already in flight
    assert breaker.opened == 1


def test_an_abandoned_probe_lets_the_next_call_probe(clock: Clock) -> None:
    """A probe that never reached the server (a bad URL) says nothing about its health."""
    breaker = CircuitBreaker(threshold=1, cool_down=30.0)
    breaker.record(outage=True, reason="crm_503")
    clock.now += 30.0
    assert fails_fast(breaker) is None
    breaker.abandon()
    assert fails_fast(breaker) is None
