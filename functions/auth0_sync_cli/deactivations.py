"""The commands' side of the deactivation brakes: `--allow-deactivations N`, the bulk
commands' limit (`auth0_sync.brake`) and the message that stops them, and replay's release
of the deletes the live path held (`auth0_sync.deactivation_window`)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence

from auth0_sync.brake import DEFAULT_DEACTIVATION_LIMIT, DeactivationLimit, Verdict
from auth0_sync.errors import ConfigError
from auth0_sync.names import REASON_DEACTIVATION_LIMIT, Env
from auth0_sync.replay.letters import DeadLetter
from auth0_sync_cli.argtypes import whole_number
from auth0_sync_cli.exits import EXIT_NEEDS_ATTENTION, CommandError


def add_argument(parser: argparse.ArgumentParser, what: str | None = None) -> None:
    """--allow-deactivations N: `what` (backfill, reconcile --fix) may deactivate up to N
    contacts; without `what`, replay's meaning (release the held deletes)."""
    text = (
        f"{what} may deactivate up to N contacts in this run instead of "
        f"{Env.DEACTIVATION_LIMIT} (default {DEFAULT_DEACTIVATION_LIMIT} of the contacts): "
        "above the limit the command stops before writing and says how many it would "
        "deactivate"
        if what
        else "replay up to N deletes held by the live path's deactivation brake (DLQ reason "
        f"{REASON_DEACTIVATION_LIMIT}), past its window counter; more than N held: nothing is "
        "replayed. Without it, held deletes stay in the DLQ"
    )
    parser.add_argument(
        "--allow-deactivations",
        type=whole_number(0),
        metavar="N",
        help=text.replace("%", "%%"),
    )


def limit_of(environ: Mapping[str, str]) -> DeactivationLimit:
    try:
        return DeactivationLimit.from_env(environ)
    except ConfigError as exc:
        raise CommandError(str(exc)) from exc


def stop(verdict: Verdict, command: str) -> CommandError:
    """The error that ends a braked run (exit 1: a person decides)."""
    return CommandError(verdict.message(command), code=EXIT_NEEDS_ATTENTION)


def would_stop(verdict: Verdict, command: str) -> str:
    """A dry run's warning: the real run would stop here."""
    said = verdict.message(command).replace("nothing was written", "it would stop first")
    return f"without --dry-run, {said}"


class HeldDeletes:
    """`replay`'s side of the live brake: the deletes held under `deactivation_limit` stay in
    the DLQ unless a person gives `--allow-deactivations N`; with it, more than N of them
    stop the replay before anything is replayed."""

    def __init__(self, allow: int | None) -> None:
        self.allow = allow
        self.held = 0

    def wants(self, group: Sequence[DeadLetter]) -> bool:
        if any(letter.reason == REASON_DEACTIVATION_LIMIT for letter in group):
            self.held += 1
            return self.allow is not None
        return True

    def over(self) -> bool:
        """More held deletes selected than the person allowed."""
        return self.allow is not None and self.held > self.allow

    def gate(self, _events: int) -> str | None:
        if self.over():
            return (
                f"{self.held} delete(s) held by the deactivation brake are selected, more than "
                f"--allow-deactivations {self.allow}: nothing replayed; check them "
                f"(`auth0-sync dlq list`), then give --allow-deactivations {self.held}"
            )
        return None

    def note(self) -> str | None:
        """What the report adds when held deletes were left alone."""
        if self.allow is None and self.held:
            return (
                f"{self.held} delete(s) held by the deactivation brake (reason "
                f"{REASON_DEACTIVATION_LIMIT}) left in the DLQ: if they are real, "
                f"`auth0-sync replay --allow-deactivations {self.held}` releases them"
            )
        return None
