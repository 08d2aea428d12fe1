"""`auth0-sync replay` on this machine: the command (`command`), the dry run (`planning`),
the progress bar (`progress`), finding the DLQ and the functions (`locate`), and the
in-process target, batched or not (`local`, shared with `auth0-sync redrive`).

The DLQ reading, the replay loop, pacing and the Lambda target ship with the handlers, in
`auth0_sync.replay`, because the scheduled redrive runs them too.
"""

from auth0_sync.replay.replayer import ReplayReport, Selection
from auth0_sync_cli.replay.command import make_replayer, quiet_handler_logs, register

__all__ = ["ReplayReport", "Selection", "make_replayer", "quiet_handler_logs", "register"]
