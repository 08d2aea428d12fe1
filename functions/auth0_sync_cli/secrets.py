"""Secrets for the CLI come from a file or the environment, never from the command line.

A flag's value is visible to every user of the machine (`ps`, /proc/PID/cmdline) and stays
in the shell's history; a file readable by its owner only, or a variable, is neither.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from auth0_sync_cli.exits import CommandError


def read_secret_file(path: str, flag: str, what: str) -> str:
    """The secret in `path` (surrounding whitespace stripped); a warning if others may read it."""
    file = Path(path).expanduser()
    try:
        secret = file.read_text(encoding="utf-8").strip()
        mode = file.stat().st_mode
    except FileNotFoundError:
        raise CommandError(f"{flag} {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"{flag} {path}: cannot read it ({exc.__class__.__name__})") from None
    if not secret:
        raise CommandError(f"{flag} {path} is empty: it must hold {what}")
    if mode & 0o077:
        print(f"warning: {path} can be read by other users; `chmod 600 {path}`", file=sys.stderr)
    return secret


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
