"""Stop signals of the long-running commands: held from start-up on, never lost, never raised."""

from __future__ import annotations

import signal
import threading

import pytest

from auth0_sync_cli.signals import held_stop_signals

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_before_the_wait_is_kept_for_it_not_raised(stop_signal: signal.Signals) -> None:
    main = threading.main_thread().ident
    assert main is not None
    assert threading.get_ident() == main

    with held_stop_signals() as wait_for_stop:
        # Arrives while the command is still starting up, before it waits: with Python's
        # default handling this raises KeyboardInterrupt (or kills the process) right here.
        signal.pthread_kill(main, stop_signal)
        received = wait_for_stop()

    assert received == stop_signal
    assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, [])


def test_threads_started_inside_hold_the_signals_too() -> None:
    masks: list[set[int | signal.Signals]] = []

    def record_mask() -> None:
        masks.append(signal.pthread_sigmask(signal.SIG_BLOCK, []))

    with held_stop_signals():
        thread = threading.Thread(target=record_mask)
        thread.start()
        thread.join()

    assert {signal.SIGINT, signal.SIGTERM} <= masks[0]
