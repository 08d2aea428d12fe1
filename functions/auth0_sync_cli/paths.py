"""Where the files a command writes go, and the check every output path gets before any work.

A file the user did not name (a users export, the dead letters of an in-memory run) goes to
one folder named in `--help`, `$XDG_STATE_HOME/auth0-sync` (default
`~/.local/state/auth0-sync`), never silently into the current folder. It is created for the
user alone (0700): those files hold profiles.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from auth0_sync_cli.exits import CommandError

XDG_STATE_HOME = "XDG_STATE_HOME"
OUTPUT_DIR_HELP = "$XDG_STATE_HOME/auth0-sync, by default ~/.local/state/auth0-sync"


def output_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The folder for files the user did not name (not created here)."""
    env = os.environ if environ is None else environ
    base = env.get(XDG_STATE_HOME) or str(Path.home() / ".local" / "state")
    return Path(base) / "auth0-sync"


def default_output(name: str, environ: Mapping[str, str] | None = None) -> str:
    """`name` in the output folder, which is created (0700) if need be."""
    folder = output_dir(environ)
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise CommandError(
            f"cannot create the output folder {folder}: {exc.strerror or exc}; set "
            f"{XDG_STATE_HOME} to a writable folder, or name the file with its flag"
        ) from exc
    return str(folder / name)


def output_problem(path: str, *, may_exist: bool = True) -> str | None:
    """Why `path` cannot be written (None: it can), checked before any work starts."""
    target = Path(path)
    if target.is_dir():
        return f"{path} is a folder; give a file name"
    if target.exists():
        if not may_exist:
            return f"{path} exists; give a new file name"
        if not os.access(target, os.W_OK):
            return f"{path}: no permission to write it"
        return None
    folder = target.parent
    if not folder.is_dir():
        return f"no folder {folder} for {target.name}: create it first"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"no permission to write in {folder}"
    return None


def output_file(*, may_exist: bool = True) -> Callable[[str], str]:
    """argparse type of a flag naming a file to write: refused at parse time, before the
    command does anything, when it cannot be written."""

    def parse(text: str) -> str:
        if not text:
            raise argparse.ArgumentTypeError("an empty file name")
        problem = output_problem(text, may_exist=may_exist)
        if problem is not None:
            raise argparse.ArgumentTypeError(problem)
        return text

    return parse
