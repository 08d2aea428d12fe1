"""Benchmarks (`make bench`, not part of `make test`): measure, compare with a baseline,
and write docs/benchmarks.md. One module per figure; `python -m bench --quick` for a fast run.
"""
