"""docs/dlq-lifecycle.png: the life of a DLQ message, as a state diagram.

Text alternative: a failed event is received in the DLQ with its reason and attempts; a
transient reason first failed less than REDRIVE_MAX_AGE_DAYS ago is redriven automatically
(every REDRIVE_INTERVAL_MINUTES, once the CRM answers a probe); a permanent reason, or a
transient one grown too old, is left for a person (the DLQ alarm stays red), who replays it
(`auth0-sync replay`) or deletes it (`auth0-sync dlq delete --reason`, optionally
exported). Applied or skipped: the message is deleted. Failed again: a new message with one
more attempt replaces it. Past the queue's retention (14 days) SQS drops it.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from auth0_sync.names import REDRIVE_INTERVAL_MINUTES, REDRIVE_MAX_AGE_DAYS
from docs.pictures.boxes import COLOURS, Box, arrow, box, canvas, save

DEFAULT_PATH = Path(__file__).resolve().parents[1] / "dlq-lifecycle.png"


def draw(path: str | Path = DEFAULT_PATH) -> Path:
    return save(build(), path)


def build() -> Figure:
    figure, axes = canvas(14.6, 8.6, scale=0.8)
    failed = box(
        axes,
        Box(
            1.6,
            6.8,
            2.6,
            1.1,
            "an event fails\n(delivery, Lambda's retries,\nor a permanent reason)",
            "auth0",
        ),
    )
    received = box(
        axes,
        Box(5.6, 6.8, 2.8, 1.2, "received in the DLQ\nreason, attempts,\nfirst failure", "queue"),
    )
    redriven = box(
        axes,
        Box(
            12.0,
            6.8,
            3.2,
            1.2,
            f"redriven automatically\nevery {REDRIVE_INTERVAL_MINUTES} min, once the CRM\n"
            "answers a probe",
            "lambda",
        ),
    )
    person = box(
        axes, Box(5.6, 3.6, 2.8, 1.2, "left for a person\n(the DLQ alarm is red)", "person")
    )
    replayed = box(
        axes, Box(9.6, 3.6, 3.0, 1.2, "replayed\nauth0-sync replay\n(--dry-run first)", "lambda")
    )
    deleted = box(
        axes,
        Box(
            5.6,
            0.9,
            2.8,
            1.2,
            "deleted by a person\nauth0-sync dlq delete\n--reason (--export FILE)",
            "person",
        ),
    )
    done = box(
        axes, Box(10.6, 0.9, 3.2, 1.1, "done: applied or skipped,\nthe message deleted", "crm")
    )
    expired = box(
        axes, Box(1.6, 3.6, 2.6, 1.1, "dropped by SQS\nafter 14 days\n(retention)", "state")
    )

    arrow(axes, failed.edge("right"), received.edge("left"))
    arrow(
        axes,
        received.edge("right"),
        redriven.edge("left"),
        f"transient reason,\nfirst failed < {REDRIVE_MAX_AGE_DAYS} days ago",
    )
    arrow(
        axes,
        received.edge("bottom"),
        person.edge("top"),
        f"permanent reason, or\ntransient for {REDRIVE_MAX_AGE_DAYS}+ days",
    )
    arrow(
        axes,
        redriven.edge("top"),
        received.edge("top"),
        "failed again: a new message,\none more attempt",
        bend=0.35,
        colour=COLOURS["queue"],
        dashed=True,
    )
    arrow(
        axes,
        (redriven.x + 1.0, redriven.y - 0.6),
        (done.x + 1.4, done.y + 0.55),
        "applied or skipped",
        label_at=0.2,
    )
    arrow(axes, person.edge("right"), replayed.edge("left"), "cause fixed")
    arrow(axes, person.edge("bottom"), deleted.edge("top"), "poison: nothing\nto apply")
    arrow(
        axes,
        replayed.edge("bottom"),
        (done.x - 0.6, done.y + 0.55),
        "applied or skipped",
        label_at=0.45,
    )
    arrow(
        axes,
        (replayed.x - 1.0, replayed.y + 0.6),
        (received.x + 1.4, received.y - 0.6),
        "failed again",
        colour=COLOURS["queue"],
        dashed=True,
        label_at=0.35,
    )
    arrow(
        axes,
        person.edge("left"),
        expired.edge("right"),
        "nobody acts",
        colour=COLOURS["state"],
        dashed=True,
    )
    axes.set_title("The life of a DLQ message", fontsize=12)
    return figure


if __name__ == "__main__":
    print(draw())
