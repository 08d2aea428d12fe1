"""Secrets for the CLI come from a file or the environment, never from the command line.

A flag's value is visible to every user of the machine (`ps`, /proc/PID/cmdline) and stays
in the shell's history; a file readable by its owner only, or a variable, is neither.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from auth0_sync.errors import ConfigError
from auth0_sync.streams.client import read_token_file
from auth0_sync_cli.exits import CommandError


def read_secret_file(path: str, flag: str, what: str) -> str:
    """The secret in `path` (surrounding whitespace stripped); a warning if others may read it."""
    try:
        return read_token_file(path, flag, what)
    except ConfigError as exc:
        raise CommandError(str(exc)) from None


def secret_from(
    file: str | None,
    *,
    flag: str,
    variable: str,
    what: str,
    default: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> str | None:
    """`flag FILE`, else $variable, else `default`; both at once is a mistake."""
    env = os.environ if environ is None else environ
    from_env = env.get(variable, "").strip()
    if file is not None:
        if from_env:
            raise CommandError(f"give {what} once: {flag} or {variable}, not both")
        return read_secret_file(file, flag, what)
    return from_env or default
