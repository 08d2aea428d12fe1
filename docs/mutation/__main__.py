"""`make mutation`: run mutmut over the core modules, then write docs/mutation.md.

    python -m docs.mutation                  # every core module (long: run it niced)
    python -m docs.mutation ownership sync   # some modules; the others keep their results
    python -m docs.mutation --report         # only write the page from the last results
    python -m docs.mutation --again state    # test again only what was not killed
    python -m docs.mutation --fresh ...      # forget every earlier result first

mutmut names a mutant after the module it imports, and `functions/` is a source root (the
Lambda asset), not a package: mutmut would call the core `functions.auth0_sync...` while
the tests import `auth0_sync...`. So each module is run in its own staging folder,
`.mutation/<module>/` (ignored by git), holding copies of `auth0_sync`, `auth0_sync_cli`
and `tests` at its top, with a pytest configuration without `pythonpath` (mutmut puts its
mutated copy first on `sys.path`) that selects the module's own tests (`TESTS`). mutmut
keeps its results there between runs: the modules named are tested again in full (with
`--again`, only their mutants not killed yet, e.g. after new tests), one module after
the other; the others keep their last results. After a change to a module's `TESTS`,
run it in full, not `--again`: mutmut forgets every result of a staging folder whose
test selection changed, and `--again` would leave all but the survivors "not run".
"""

from __future__ import annotations

import argparse
import difflib
import filecmp
import json
import os
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
STAGE = Path(os.environ.get("MUTATION_STAGE") or ROOT / ".mutation")
PAGE = ROOT / "docs" / "mutation.md"
EQUIVALENT = Path(__file__).resolve().parent / "equivalent.toml"

# The core modules (short name -> path under functions/).
CORE = {
    "ordering": "auth0_sync/ordering.py",
    "events": "auth0_sync/events.py",
    "mapping": "auth0_sync/mapping.py",
    "ownership": "auth0_sync/ownership.py",
    "sync": "auth0_sync/sync.py",
    "sync_base": "auth0_sync/sync_base.py",
    "upsert": "auth0_sync/upsert.py",
    "deletion": "auth0_sync/deletion.py",
    "lateness": "auth0_sync/lateness.py",
    "state_model": "auth0_sync/state_model.py",
    "state_dynamo": "auth0_sync/state_dynamo.py",
    "state_memory": "auth0_sync/state_memory.py",
    "outcome": "auth0_sync/outcome.py",
    "service": "auth0_sync/service.py",
    "transport": "auth0_sync/destinations/transport.py",
    "rest": "auth0_sync/destinations/rest.py",
    "limits": "auth0_sync/destinations/limits.py",
}

# The fast tests that cover each core module: its own unit tests, the sync core's (which
# reach most of the core through a memory CRM and a memory state store), the state stores
# on moto, and the HTTP transport and REST adapter against the reference CRM on loopback.
# A mutant runs only those of its module's tests that reach it. Each module has its own
# list (and its own staging folder, `.mutation/<module>/`): the whole unit suite would run
# for every mutant of events.py or mapping.py, which every sync test reaches. The slower
# integration tests (handlers, lifecycles over HTTP, exactly-once) are left out: each
# would run for most mutants of sync.py, and the exactly-once ones race threads against a
# rate limit and a deadline, which a niced run on a busy machine loses at times.
_SYNC_UNIT = [
    "tests/unit/test_rules_sync.py",
    "tests/unit/test_sync_core.py",
    "tests/unit/test_lifecycle.py",
    "tests/unit/test_sync_modes.py",
    "tests/unit/test_delete_policy_none.py",
    "tests/unit/test_hot_path.py",
    "tests/unit/test_guarded_writes.py",
    "tests/unit/test_deactivation_window.py",
    "tests/unit/test_sync_histories.py",
]
# The sync core's parts also run their own rules file (written against their survivors).
_SYNC_PARTS = [_SYNC_UNIT[0], "tests/unit/test_rules_sync_parts.py", *_SYNC_UNIT[1:]]


# The state stores (split by concern: the model, DynamoDB's, the in-memory one) share tests;
# each store has its own rules file too (the model is reached through the memory store's).
def _state(own: str) -> list[str]:
    return [
        "tests/unit/test_rules_state.py",
        own,
        "tests/integration/test_state_store.py",
        *_SYNC_UNIT,
    ]


TESTS: dict[str, list[str]] = {
    "ordering": ["tests/unit/test_ordering.py", *_SYNC_UNIT],
    "events": [
        "tests/unit/test_rules_events.py",
        "tests/unit/test_events.py",
        "tests/unit/test_ordering.py",
        *_SYNC_UNIT,
    ],
    "mapping": ["tests/unit/test_mapping.py", "tests/unit/test_reconcile_compare.py", *_SYNC_UNIT],
    "ownership": ["tests/unit/test_rules_ownership.py", *_SYNC_UNIT],
    # The sync core is split by concern (sync.py the frame, SyncCore(Upserts, Deletions,
    # Lateness) over sync_base.CoreBase): each part against the sync core's unit tests, plus
    # the create-only mode's (an upsert that fills only empty fields, a delete's deactivation).
    "sync": _SYNC_PARTS,
    "sync_base": [*_SYNC_PARTS, "tests/unit/test_sync_create_only.py"],
    "upsert": [*_SYNC_PARTS, "tests/unit/test_sync_create_only.py"],
    "deletion": [*_SYNC_PARTS, "tests/unit/test_sync_create_only.py"],
    "lateness": [*_SYNC_PARTS, "tests/unit/test_sync_create_only.py"],
    "state_model": _state("tests/unit/test_rules_state_memory.py"),
    "state_dynamo": _state("tests/unit/test_rules_state_dynamo.py"),
    "state_memory": _state("tests/unit/test_rules_state_memory.py"),
    "outcome": ["tests/unit/test_outcome.py", "tests/unit/test_service.py"],
    "service": ["tests/unit/test_service.py"],
    "transport": [
        "tests/unit/test_rules_breaker.py",
        "tests/unit/test_rules_transport_answers.py",
        "tests/integration/test_rules_transport.py",
        "tests/integration/test_rules_rest.py",
        "tests/integration/test_crm_client.py",
    ],
    "rest": [
        "tests/integration/test_rules_rest.py",
        "tests/integration/test_crm_client.py",
        "tests/integration/test_rules_transport.py",
    ],
    "limits": ["tests/unit/test_rules_limits.py"],
}

# mutmut's exit codes (mutmut/stats.py), as this page counts them.
KILLED = {1, 3, 37}
SURVIVED = {0}
TIMEOUT = {24, 36, -24, 152, 255}


def _sync_tree(source: Path, target: Path) -> None:
    """Make `target` a copy of `source`: changed files copied (keeping their time, which
    is how mutmut tells a changed source), files gone from `source` removed."""
    target.mkdir(parents=True, exist_ok=True)
    names = {p.name for p in source.iterdir() if p.name != "__pycache__"}
    for old in target.iterdir():
        if old.name not in names:
            shutil.rmtree(old) if old.is_dir() else old.unlink()
    for name in sorted(names):
        src, dst = source / name, target / name
        if src.is_dir():
            _sync_tree(src, dst)
        elif not dst.exists() or not filecmp.cmp(src, dst, shallow=False):
            shutil.copy2(src, dst)


def _pytest_config() -> dict[str, object]:
    """The project's pytest settings, less `pythonpath` (mutmut sets the path)."""
    with (ROOT / "pyproject.toml").open("rb") as handle:
        options = dict(tomllib.load(handle)["tool"]["pytest"]["ini_options"])
    options.pop("pythonpath", None)
    options.pop("testpaths", None)
    return options


def _toml_value(value: object) -> str:
    return json.dumps(value)  # strings, numbers and lists of strings: TOML reads JSON's form


def stage(module: str) -> Path:
    """Copy the code and the tests into .mutation/<module>/ and write its pyproject.toml."""
    folder = STAGE / module
    for name in ("auth0_sync", "auth0_sync_cli"):
        _sync_tree(ROOT / "functions" / name, folder / name)
    _sync_tree(ROOT / "tests", folder / "tests")
    mutmut = {
        "source_paths": ["auth0_sync", "auth0_sync_cli"],
        "only_mutate": [CORE[module]],
        "pytest_add_cli_args": ["-p", "no:randomly", "-p", "no:cacheprovider", "-q"],
        "pytest_add_cli_args_test_selection": TESTS[module],
        # git change detection looks at the repository, not at this copy.
        "use_git_change_detection": False,
    }
    lines = ["# Written by `python -m docs.mutation`; do not edit.", "[tool.mutmut]"]
    lines += [f"{key} = {_toml_value(value)}" for key, value in mutmut.items()]
    lines += ["", "[tool.pytest.ini_options]"]
    lines += [f"{key} = {_toml_value(value)}" for key, value in _pytest_config().items()]
    (folder / "pyproject.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def _codes(module: str) -> dict[str, int | None]:
    meta = STAGE / module / "mutants" / f"{CORE[module]}.meta"
    if not meta.exists():
        return {}
    codes: dict[str, int | None] = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
    return codes


def _last_run(module: str) -> str:
    meta = STAGE / module / "mutants" / f"{CORE[module]}.meta"
    if not meta.exists():
        return "never"
    return datetime.fromtimestamp(meta.stat().st_mtime, UTC).strftime("%Y-%m-%d %H:%M")


def run(module: str, children: int, again: bool) -> int:
    """mutmut over one module's mutants (`again`: those not killed), in its staging
    folder. mutmut tests again every mutant it is given by name."""
    names = [CORE[module][: -len(".py")].replace("/", ".") + ".*"]
    if again:
        equivalent = load_equivalent()
        names = [
            key
            for key, code in _codes(module).items()
            if code not in KILLED and key not in equivalent
        ]
        if not names:
            return 0
    folder = stage(module)
    command = [sys.executable, "-m", "mutmut", "run", "--max-children", str(children), *names]
    env = {**os.environ, "PYTHONPATH": "", "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(command, cwd=folder, env=env, check=False).returncode


@dataclass
class Module:
    name: str
    path: str
    killed: int = 0
    timeout: int = 0
    equivalent: list[tuple[str, str]] = field(default_factory=list)
    survived: list[str] = field(default_factory=list)
    other: dict[str, int] = field(default_factory=dict)  # not run, no tests, ...

    @property
    def counted(self) -> int:
        """Mutants that change behaviour and were tested: the score's denominator."""
        return self.killed + self.timeout + len(self.survived)

    @property
    def score(self) -> float | None:
        return (self.killed + self.timeout) / self.counted if self.counted else None


OTHER_STATUS = {None: "not run", 5: "no tests", 33: "no tests", 34: "skipped", 35: "suspicious"}


def load_equivalent() -> dict[str, str]:
    with EQUIVALENT.open("rb") as handle:
        table = tomllib.load(handle)
    return {str(name): str(reason) for name, reason in table.get("equivalent", {}).items()}


def collect() -> tuple[list[Module], dict[str, str]]:
    equivalent = load_equivalent()
    modules = []
    for name, path in CORE.items():
        module = Module(name, path)
        for key, code in sorted(_codes(name).items(), key=lambda kv: _natural(kv[0])):
            if code in KILLED:
                module.killed += 1
            elif code in TIMEOUT:
                module.timeout += 1
            elif key in equivalent:
                module.equivalent.append((key, equivalent[key]))
            elif code in SURVIVED:
                module.survived.append(key)
            else:
                status = OTHER_STATUS.get(code, f"exit {code}")
                module.other[status] = module.other.get(status, 0) + 1
        modules.append(module)
    return modules, equivalent


def _natural(key: str) -> tuple[str, int]:
    head, _, number = key.rpartition("__mutmut_")
    return head, int(number) if number.isdigit() else 0


_PARSED: dict[str, Any] = {}


def _diff(key: str, path: str) -> str:
    """The mutant's change as +/- lines. mutmut's own `get_diff_for_mutant` parses the whole
    mutated module for each mutant (minutes for sync.py); this parses each module once."""
    import libcst  # the mutation venv only, with mutmut
    from mutmut.mutation.diff_apply import (
        read_mutant_function,
        read_mutants_module,
        read_original_function,
    )

    try:
        if path not in _PARSED:
            _PARSED[path] = read_mutants_module(path)
        module = _PARSED[path]
        before, after = (
            libcst.Module([function]).code.strip().split("\n")
            for function in (read_original_function(module, key), read_mutant_function(module, key))
        )
    except Exception as exc:  # a stale name: say so on the page rather than fail
        return f"(no diff: {type(exc).__name__})"
    return "\n".join(
        line
        for line in difflib.unified_diff(before, after, lineterm="")
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    )


# Issue 28's examples of behaviour no test held when it was filed: each example, the
# tests that hold it now (file, name), and the one-line change to the rule (made by hand,
# then undone) that each of those tests was seen to fail on. Static text of the page.
_RULES = "tests/unit/test_rules_sync.py"
EXAMPLES: list[tuple[str, list[tuple[str, str]], str]] = [
    (
        "a commit after the lease was lost (another invocation took it) is accepted",
        [
            (
                "tests/unit/test_rules_state.py",
                "test_a_commit_after_the_lease_was_lost_is_refused",
            )
        ],
        "`state_memory.py` `commit`: `if held.owner != owner:` -> `if False:` (`[memory]`); "
        '`state_dynamo.py` `_write_holding_lease`: `ConditionExpression="lease_owner = :owner"`'
        ' -> `"attribute_exists(lease_owner) OR :owner = :owner"` (`[dynamodb]`)',
    ),
    (
        "an email lookup may take a contact that carries another live user's id",
        [
            (
                "tests/unit/test_rules_ownership.py",
                "test_an_email_lookup_never_takes_a_contact_carrying_another_users_id",
            ),
            (
                "tests/unit/test_rules_ownership.py",
                "test_an_email_lookup_refuses_a_live_users_contact_even_with_a_state",
            ),
        ],
        "`ownership.py` `by_email`: `if not self.ownership.may_take(match, user_id, linked):` "
        "-> `if False:` (the first); `may_take`: `previous.deleted_at is not None or "
        "previous.linked_to == user_id` -> `True` (the second)",
    ),
    (
        "an anonymized contact may keep its `auth0_user_id`",
        [(_RULES, "test_an_anonymized_contact_loses_the_auth0_user_id_and_the_state_its_mapping")],
        '`deletion.py` `_erasure`: `body[OWNER_FIELD] = ""` -> `pass`',
    ),
    (
        "anonymize may keep the state's mapping",
        [
            (
                _RULES,
                "test_an_anonymized_contact_loses_the_auth0_user_id_and_the_state_its_mapping",
            ),
            (_RULES, "test_a_re_signup_after_anonymize_gets_a_new_contact"),
        ],
        "`deletion.py` `_deactivate`: `if applied is Applied.ANONYMIZED:` -> `if False:`",
    ),
    (
        "a create's idempotency key may be random (so a retried create makes a second contact)",
        [(_RULES, "test_a_retried_create_makes_no_second_contact")],
        "`ownership.py` `idempotency_key`: the hash of user and event id -> `uuid4().hex`",
    ),
    (
        "a created contact may lack its `source_updated_at` stamp",
        [(_RULES, "test_a_created_contact_carries_the_events_change_time")],
        "`upsert.py` `_create`: `{OWNER_FIELD: event.user_id, **self._stamp(event)}` -> "
        "`{OWNER_FIELD: event.user_id}`",
    ),
    (
        "a plain update may be reported as a reactivation",
        [
            (
                _RULES,
                "test_an_update_through_a_mapping_without_digests_is_an_update_not_a_reactivation",
            )
        ],
        '`upsert.py` `_take`: `if new_life and found.how == "state":` -> '
        '`if found.how == "state":`',
    ),
    (
        "a transfer may be reported as an update",
        [
            (_RULES, "test_a_contact_taken_over_from_a_deleted_user_is_a_transfer"),
            (_RULES, "test_a_mapped_contact_that_lost_the_users_id_gets_it_back_as_a_link"),
        ],
        '`upsert.py` `_take`: `elif found.how in ("state", "auth0_user_id") and not '
        "extra.get(OWNER_FIELD):` -> `elif True:` (the first); its clause "
        "`and not extra.get(OWNER_FIELD)` dropped (the second)",
    ),
    (
        "... and counted in the metrics as such",
        [
            (
                "tests/unit/test_rules_metrics.py",
                "test_an_applied_outcome_is_counted_once_under_its_own_metric",
            )
        ],
        "`lambda_app.py` `APPLIED_METRICS`: `Applied.UPDATED: Metric.CONTACT_UPDATED` -> "
        "`Metric.CONTACT_REACTIVATED`; `Applied.LINKED: Metric.CONTACT_LINKED` -> "
        "`Metric.CONTACT_UPDATED` (each alone)",
    ),
    (
        "the circuit breaker may never reset its failure count on success",
        [("tests/unit/test_rules_breaker.py", "test_a_success_resets_the_count_of_failures")],
        "`transport.py` `CircuitBreaker.record`: `self._failures = 0` dropped",
    ),
    (
        "the circuit breaker may open on 429s",
        [("tests/integration/test_rules_transport.py", "test_429s_never_open_the_circuit")],
        "`transport.py` `HttpTransport.request`: `outage=status >= 500 or status == 408` -> "
        "`outage=status >= 500 or status in (408, 429)`",
    ),
    (
        "a late event's field-level order (`stated`) may not be recorded when nothing changed",
        [(_RULES, "test_a_late_event_that_changes_nothing_still_records_its_word_on_each_field")],
        "`lateness.py` `_late`: `Decision(replace(current, stated=stated) if fresh else None, "
        "outcome)` -> `Decision(None, outcome)`",
    ),
]


def examples_section() -> list[str]:
    """The page's section on issue 28's examples (static: written from `EXAMPLES`)."""
    out = [
        "## The issue's examples and the tests that hold them",
        "",
        "Issue 28 named behaviour that no test held when it was filed. Each example has a",
        "test that fails when its rule is removed: the rule was changed by hand as shown (one",
        "line), the test was run and seen to fail, and the change was undone.",
        "",
        "| example | test | the rule removed (by hand) |",
        "| --- | --- | --- |",
    ]
    for example, tests, mutation in EXAMPLES:
        held = ", ".join(f"`{path}::{name}`" for path, name in tests)
        out.append(f"| {example} | {held} | {mutation} |")
    return out


def write_page(modules: list[Module], equivalent: dict[str, str]) -> None:
    known = {key for m in modules for key, _ in m.equivalent}
    stale = sorted(set(equivalent) - known)
    out = [
        "# Mutation testing of the core",
        "",
        "Written by `make mutation` (`python -m docs.mutation`, see its docstring); do not",
        "edit by hand. mutmut 3 changes one thing at a time in a core module (a comparison,",
        "a constant, a dropped clause...) and runs the fast tests that reach the change; a",
        "change no test notices **survives**. Score: killed / (killed + survived), the",
        "equivalent mutants (no observable change; each explained in",
        "`docs/mutation/equivalent.toml`) left out. The target (issue 28) is 90% per module.",
        "",
        'Command: `make mutation MODULES="<module> ..."` (`python -m docs.mutation <module>`;',
        "`--again` tests again only what was not killed). Last run: when the module's results",
        "were last written (UTC).",
        "",
        "| module | mutants | killed | survived | equivalent | not counted | score | last run |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for m in modules:
        total = m.counted + len(m.equivalent) + sum(m.other.values())
        other = ", ".join(f"{n} {status}" for status, n in sorted(m.other.items())) or "0"
        score = "not run" if m.score is None else f"{m.score:.0%}"
        out.append(
            f"| `{m.path}` | {total} | {m.killed + m.timeout} | {len(m.survived)} | "
            f"{len(m.equivalent)} | {other} | {score} | {_last_run(m.name)} |"
        )
    out += [
        "",
        "Each module's mutants run against the fast tests that cover it (`TESTS` in",
        "`docs/mutation/__main__.py`), one mutant at a time (`--max-children 1`), in the",
        "module's own staging folder `.mutation/<module>/`:",
        "",
    ]
    out += [f"- `{m.name}`: " + " ".join(f"`{t}`" for t in TESTS[m.name]) for m in modules]
    out += ["", *examples_section()]
    for m in modules:
        if not m.survived:
            continue
        os.chdir(STAGE / m.name)  # mutmut reads its mutants relative to the working folder
        out += ["", f"## Surviving in `{m.path}` ({len(m.survived)})", ""]
        for key in m.survived:
            out += [f"- `{key}`", "", "  ```diff"]
            out += [f"  {line}" for line in _diff(key, m.path).splitlines()]
            out += ["  ```"]
    if any(m.equivalent for m in modules):
        out += ["", "## Equivalent (no observable change)", ""]
        for m in modules:
            for key, reason in m.equivalent:
                out.append(f"- `{key}`: {reason}")
    if stale:
        out += ["", "## Stale entries in equivalent.toml (no such surviving mutant now)", ""]
        out += [f"- `{key}`" for key in stale]
    PAGE.write_text("\n".join(out) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m docs.mutation", description=__doc__)
    parser.add_argument("modules", nargs="*", metavar="MODULE", help=", ".join(CORE))
    parser.add_argument("--report", action="store_true", help="only write docs/mutation.md")
    parser.add_argument("--fresh", action="store_true", help="forget earlier results")
    parser.add_argument(
        "--again", action="store_true", help="test again only the mutants not killed yet"
    )
    parser.add_argument("--children", type=int, default=1, help="parallel mutants (default 1)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.modules) - set(CORE))
    if unknown:
        parser.error(f"no core module {unknown}; choose from {', '.join(CORE)}")
    code = 0
    if not args.report:
        for module in args.modules or list(CORE):
            if args.fresh:
                shutil.rmtree(STAGE / module / "mutants", ignore_errors=True)
            code = run(module, args.children, args.again) or code
    modules, equivalent = collect()
    write_page(modules, equivalent)
    for m in modules:
        score = "not run" if m.score is None else f"{m.score:.0%}"
        print(f"{m.name:10} {score:>8}  ({len(m.survived)} surviving, {len(m.equivalent)} eq.)")
    print(f"wrote {PAGE.relative_to(ROOT)}")
    return code


if __name__ == "__main__":
    sys.exit(main())
