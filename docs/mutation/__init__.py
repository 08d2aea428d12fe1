"""Mutation testing of the sync core (`make mutation`, not part of `make test`).

mutmut 3 (pinned in requirements-mutation.txt) changes the core modules one small edit at a
time and runs the fast tests that cover each edit; a mutant no test notices "survives".
`python -m docs.mutation [MODULE...]` runs it and writes docs/mutation.md: a score per
module and every surviving mutant. A mutant that changes nothing observable is marked
equivalent, with one line of reasoning, in docs/mutation/equivalent.toml (never silenced
in the code).
"""
