"""The conftest guard that keeps unit tests off the network."""

from __future__ import annotations

import socket

import pytest

pytestmark = pytest.mark.unit


def test_unit_tests_cannot_open_a_connection() -> None:
    with (
        socket.socket() as sock,
        pytest.raises(RuntimeError, match="unit tests must not use the network"),
    ):
        sock.connect(("127.0.0.1", 9))


def test_unit_tests_cannot_reach_a_host_by_name() -> None:
    with pytest.raises(RuntimeError, match="unit tests must not use the network"):
        socket.create_connection(("localhost", 9), timeout=1)
