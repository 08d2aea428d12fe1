"""The deactivation brake: how many contacts one bulk run may deactivate before a person says so.

A wrong export (another tenant, a truncated file), a sweep against the wrong CRM or a
`reconcile --fix` with stale data would deactivate nearly every contact in one run. The
bulk commands (backfill's sweep, `reconcile --fix`) count the deactivations they are about
to send, ask `check` before writing anything, and stop when the count is above the limit;
`--allow-deactivations N` raises the limit to N for that run.

`DEACTIVATION_LIMIT` is a bare count (`250`) or a share of the CRM's contacts (`10%`). The
default, 10%, is far above the few users a tenant loses between two runs and far below a
wrong export, which orphans nearly every contact (Entra's provisioning stops on the same
kind of threshold, "accidental deletions prevention"). A share is rounded up, so a CRM of a
few contacts can still lose one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from auth0_sync.errors import ConfigError
from auth0_sync.names import Env

DEFAULT_DEACTIVATION_LIMIT = "10%"
_SHARE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")
_COUNT = re.compile(r"^\s*(\d+)\s*$")


@dataclass(frozen=True)
class DeactivationLimit:
    """A count (`share` None) or a share in percent of the contacts (`count` None)."""

    count: int | None = None
    share: float | None = None

    @classmethod
    def parse(cls, text: str) -> DeactivationLimit:
        """`250` or `10%`; a `ConfigError` naming the variable otherwise."""
        if match := _COUNT.match(text):
            return cls(count=int(match.group(1)))
        if (match := _SHARE.match(text)) and float(match.group(1)) <= 100:
            return cls(share=float(match.group(1)))
        raise ConfigError(
            f"{Env.DEACTIVATION_LIMIT}={text!r}: give a count of contacts (e.g. 250) or a "
            f"share of them (e.g. 10%), default {DEFAULT_DEACTIVATION_LIMIT}"
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> DeactivationLimit:
        return cls.parse(environ.get(Env.DEACTIVATION_LIMIT) or DEFAULT_DEACTIVATION_LIMIT)

    def allowed(self, contacts: int) -> int:
        """How many deactivations one run may send against a CRM of `contacts` contacts."""
        if self.count is not None:
            return self.count
        return math.ceil((self.share or 0.0) * contacts / 100)

    def __str__(self) -> str:
        return str(self.count) if self.count is not None else f"{self.share:g}%"


@dataclass(frozen=True)
class Verdict:
    """The brake's answer for one run: `stopped` when `planned` is above `allowed`."""

    planned: int
    contacts: int
    allowed: int
    limit: str  # how the limit was set, for the message

    @property
    def stopped(self) -> bool:
        return self.planned > self.allowed

    def message(self, command: str) -> str:
        return (
            f"{command} would deactivate {self.planned} contact(s) of {self.contacts}, above "
            f"the limit of {self.allowed} ({self.limit}): nothing was written. Check the export "
            "and the CRM it runs against; if these deactivations are right, run again with "
            f"--allow-deactivations {self.planned}"
        )


def check(
    planned: int,
    contacts: int,
    limit: DeactivationLimit,
    allow: int | None = None,
) -> Verdict:
    """`planned` deactivations against a CRM of `contacts`: above the limit (or above `allow`,
    a person's `--allow-deactivations N`, when given) the run must stop before writing."""
    if allow is not None:
        return Verdict(planned, contacts, allow, f"--allow-deactivations {allow}")
    return Verdict(planned, contacts, limit.allowed(contacts), f"{Env.DEACTIVATION_LIMIT}={limit}")
