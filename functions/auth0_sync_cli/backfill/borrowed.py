"""What backfill, reconcile and catch-up take from the core and from `replay`, in one place."""

from __future__ import annotations

from auth0_sync.outcome import Outcome
from auth0_sync.replay.lambda_target import LambdaInvoker
from auth0_sync.replay.lambda_target import parse_functions as parse_functions
from auth0_sync.replay.replayer import NotReplayable
from auth0_sync.state import StateStore
from auth0_sync.sync import SyncCore
from auth0_sync_cli.replay.command import quiet_handler_logs
from auth0_sync_cli.replay.locate import functions_of_stack
from auth0_sync_cli.replay.planning import KeptFailures, PlanningCrm, ReadOnlyState

__all__ = [
    "KeptFailures",
    "LambdaInvoker",
    "NotReplayable",
    "Outcome",
    "PlanningCrm",
    "ReadOnlyState",
    "StateStore",
    "SyncCore",
    "functions_of_stack",
    "parse_functions",
    "quiet_handler_logs",
]
