"""Fixtures of the e2e suite, shared by its modules."""

from tests.e2e.test_demo import servers

__all__ = ["servers"]
