"""docs/architecture.png: what the stack deploys and how an event flows through it.

Text alternative (kept in the README): Auth0 event stream -> partner event source ->
partner event bus -> one rule per event type -> one Lambda handler per type -> CRM over
REST (per-user state in DynamoDB, the CRM token in Secrets Manager); delivery failures,
Lambda's on-failure records and the handlers' permanent failures go to one SQS DLQ, which
is alarmed, redriven automatically for transient reasons, and listed and replayed by a
person with `auth0-sync dlq` and `auth0-sync replay`.
"""

from __future__ import annotations

from pathlib import Path

from docs.pictures.boxes import COLOURS, Box, arrow, box, canvas, save

DEFAULT_PATH = Path(__file__).resolve().parents[1] / "architecture.png"
TYPES = ("user.created", "user.updated", "user.deleted")


def draw(path: str | Path = DEFAULT_PATH) -> Path:
    figure, axes = canvas(18, 9.6, scale=0.75)
    main_y = 6.6
    tenant = box(
        axes,
        Box(
            1.4, main_y, 2.4, 1.3, "Auth0 tenant\nevent stream\n(EventBridge\ndestination)", "auth0"
        ),
    )
    source = box(axes, Box(4.3, main_y, 2.7, 1.3, "partner\nevent source\naws.partner/auth0.com/…"))
    bus = box(axes, Box(7.3, main_y, 2.6, 1.3, "partner\nevent bus\n(created or imported)"))
    arrow(axes, tenant.edge("right"), source.edge("left"), "events")
    arrow(axes, source.edge("right"), bus.edge("left"))

    crm = box(axes, Box(16.6, main_y, 2.2, 1.5, "CRM\nREST API\n(contacts)", "crm"))
    rules, handlers = [], []
    for row, kind in enumerate(TYPES):
        y = main_y + 1.7 - row * 1.7
        rule = box(axes, Box(10.4, y, 3.0, 1.0, f"rule\ndetail.type = {kind}", "aws"))
        handler = box(axes, Box(13.5, y, 2.3, 1.0, f"λ handler\n{kind}", "lambda"))
        arrow(axes, bus.edge("right"), rule.edge("left"))
        arrow(axes, rule.edge("right"), handler.edge("left"))
        arrow(
            axes, handler.edge("right"), crm.edge("left"), "only what changed" if row == 0 else ""
        )
        rules.append(rule)
        handlers.append(handler)

    state = box(axes, Box(13.0, 2.9, 2.5, 1.0, "DynamoDB\nper-user sync state", "store"))
    secret = box(axes, Box(16.6, 2.9, 2.2, 1.0, "Secrets Manager\nCRM token", "store"))
    arrow(
        axes, handlers[-1].edge("bottom"), state.edge("top"), "order, tombstones,\nwhat was written"
    )
    arrow(axes, (14.65, main_y - 1.7), secret.edge("top"), "", dashed=True, colour=COLOURS["store"])

    dlq = box(axes, Box(8.2, 1.3, 2.8, 1.1, "SQS dead-letter queue\n(encrypted, 14 days)", "queue"))
    failure = COLOURS["queue"]
    arrow(
        axes,
        rules[-1].edge("bottom"),
        (8.9, 1.85),
        "delivery\nfailures",
        colour=failure,
        dashed=True,
        label_at=0.45,
    )
    arrow(
        axes,
        (12.6, main_y - 2.2),
        (9.6, 1.85),
        "on-failure records,\npermanent failures",
        colour=failure,
        dashed=True,
        label_at=0.55,
    )

    alarm = box(axes, Box(4.3, 2.9, 2.9, 1.0, "CloudWatch\ndashboard, alarms → SNS"))
    redrive = box(
        axes, Box(13.5, 0.7, 2.6, 1.0, "λ redrive (scheduled)\ntransient reasons", "lambda")
    )
    person = box(
        axes,
        Box(
            4.3, 0.7, 2.9, 1.1, "a person: auth0-sync\ndlq list / show / delete,\nreplay", "person"
        ),
    )
    arrow(axes, dlq.edge("left"), alarm.edge("bottom"), "depth, age", label_at=0.4)
    arrow(axes, dlq.edge("left"), person.edge("right"), "", bend=-0.1)
    arrow(axes, dlq.edge("right"), redrive.edge("left"), "receive")
    arrow(axes, redrive.edge("right"), (14.4, main_y - 2.2), "invoke", bend=0.3, label_at=0.3)
    axes.set_title("auth0-sync: Auth0 Event Streams → EventBridge → Lambda → CRM", fontsize=12)
    return save(figure, path)


if __name__ == "__main__":
    print(draw())
