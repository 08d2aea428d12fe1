"""`auth0-sync backfill`: the users that existed before the stream, through the same core.

- `snapshot`: an exported user as a synthetic `user.updated` bus event;
- `targets`: where events go (this process, the deployed handlers, or a read-only plan) at
  a CRM call rate shared by every worker;
- `checkpoint`: the last export line done, so an interrupted backfill resumes;
- `engine`: the loop, its counts and its progress line; `command`: the flags.
"""

from auth0_sync_cli.backfill.command import register

__all__ = ["register"]
