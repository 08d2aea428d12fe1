"""The circuit breaker's rules (`auth0_sync/destinations/transport.py`, issue 28): only
consecutive outage failures open it, a success resets the count, after the cool-down one
probe is let through and its answer closes or reopens it. Each test failed when its rule
was removed by hand. The breaker reads `time.monotonic`; the tests move that clock.
"""

from __future__ import annotations

import pytest

from auth0_sync.destinations.transport import CircuitBreaker, RetryPolicy, last_answer
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


def test_a_default_breaker_is_the_crms_and_says_when_the_probe_is_due(clock: Clock) -> None:
    breaker = CircuitBreaker(threshold=1, cool_down=30.0)
    breaker.record(outage=True)
    error = fails_fast(breaker)
    assert error is not None
    assert error.reason == "crm_circuit_open"
    assert error.message == (
        "crm: circuit open after 1 failures in a row, the last crm_circuit_open (next probe in 30s)"
    )
    clock.now += 30.0
    assert fails_fast(breaker) is None  # the probe
    waiting = fails_fast(breaker)  # while the probe is out: no wait left, just the probe
    assert waiting is not None
    assert waiting.message.endswith("(next probe in 0s)")


def test_the_last_answer_is_only_ever_a_response() -> None:
    error = TransientError("crm GET /contacts: ConnectionError", "crm_unreachable")
    assert last_answer(error) is None
    error.response = "not an answer"  # type: ignore[attr-defined]
    assert last_answer(error) is None
    assert last_answer(ValueError("no response attribute at all")) is None


def test_the_backoff_doubles_up_to_its_cap() -> None:
    policy = RetryPolicy(backoff_base=0.1, backoff_cap=1.0, jitter=False)
    assert [round(policy.backoff(n), 6) for n in range(1, 6)] == [0.2, 0.4, 0.8, 1.0, 1.0]


def test_with_jitter_a_backoff_is_anywhere_up_to_its_ceiling() -> None:
    policy = RetryPolicy(backoff_base=0.2, backoff_cap=8.0)  # ceiling 0.4 at attempt 1
    waits = [policy.backoff(1) for _ in range(50)]
    assert all(0.0 <= wait <= 0.4 for wait in waits)
    assert len(set(waits)) > 1


@pytest.mark.parametrize("attempts", [0, -1])
def test_a_policy_makes_at_least_one_attempt(attempts: int) -> None:
    with pytest.raises(ValueError, match="max_attempts") as bad:
        RetryPolicy(max_attempts=attempts)
    assert str(bad.value) == f"RetryPolicy: max_attempts must be at least 1, not {attempts}"
    assert RetryPolicy(max_attempts=1).max_attempts == 1  # one attempt: no retry, allowed
