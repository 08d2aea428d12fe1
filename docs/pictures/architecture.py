"""docs/architecture.png: what the stack deploys and how an event flows through it.

Text alternative (kept in the README): Auth0 event stream -> partner event source ->
partner event bus -> one rule per event type -> one Lambda handler per type (every lane of
the routing table, users' and organizations') -> CRM over REST (per-user state in
DynamoDB, the CRM token in Secrets Manager); delivery failures, Lambda's on-failure records
and the handlers' permanent failures go to one SQS DLQ, which is alarmed, redriven
automatically for transient reasons (the redrive invokes the event's handler again), and
listed and replayed by a person with `auth0-sync dlq` and `auth0-sync replay`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from auth0_sync.routing import ROUTES, Route
from docs.pictures.boxes import COLOURS, Box, arrow, box, canvas, save

Point = tuple[float, float]
DEFAULT_PATH = Path(__file__).resolve().parents[1] / "architecture.png"
LANE_GAP = 0.95
LANE_HEIGHT = 0.72
TOP_LANE_Y = 14.4
RULES_X, HANDLERS_X, SERVICES_X = 10.9, 14.6, 21.9

CRM = "CRM"
STATE = "DynamoDB"
SECRETS = "Secrets Manager"
DLQ = "DLQ"
REDRIVE = "redrive"

# What each kind of edge means, in the legend (one colour and style each).
EDGE_STYLES = {
    CRM: (COLOURS["crm"], "-", "writes only what changed (contacts; companies and memberships)"),
    STATE: (COLOURS["store"], "-", "sync state: order, tombstones, what was written, leases"),
    SECRETS: (COLOURS["store"], ":", "reads the CRM token"),
    DLQ: (COLOURS["queue"], "--", "on-failure records, permanent failures, delivery failures"),
    REDRIVE: (
        COLOURS["lambda"],
        "-.",
        "redrive: receives from the DLQ, invokes the event's handler",
    ),
}


@dataclass
class Drawing:
    """The figure, and every edge drawn (from, to), by the boxes' names."""

    figure: Figure
    edges: list[tuple[str, str]] = field(default_factory=list)


def handler_name(route: Route) -> str:
    return f"λ {route.construct_id}"


def rule_name(route: Route) -> str:
    return f"rule {route.event_type}"


def build(routes: tuple[Route, ...] = ROUTES) -> Drawing:
    figure, axes = canvas(24, 15.8, scale=0.7)
    drawing = Drawing(figure)

    def edge(a: Point, b: Point, name_a: str, name_b: str, kind: str) -> None:
        colour, style, _ = EDGE_STYLES[kind]
        arrow(axes, a, b, colour=colour, linestyle=style, linewidth=0.9)
        drawing.edges.append((name_a, name_b))

    lanes_mid = TOP_LANE_Y - (len(routes) - 1) * LANE_GAP / 2
    tenant = box(
        axes,
        Box(
            1.4,
            lanes_mid,
            2.4,
            1.6,
            "Auth0 tenant\nevent stream\n(EventBridge\ndestination)",
            "auth0",
        ),
    )
    source = box(
        axes, Box(4.2, lanes_mid, 2.5, 1.6, "partner\nevent source\naws.partner/\nauth0.com/…")
    )
    bus = box(axes, Box(6.9, lanes_mid, 2.2, 1.6, "partner\nevent bus\n(created or\nimported)"))
    arrow(axes, tenant.edge("right"), source.edge("left"))
    arrow(axes, source.edge("right"), bus.edge("left"))

    crm = box(axes, Box(SERVICES_X, 12.4, 3.2, 2.4, "CRM REST API\n(contacts,\ncompanies)", "crm"))
    secret = box(axes, Box(SERVICES_X, 9.4, 3.2, 1.1, "Secrets Manager\nCRM token", "store"))
    state = box(axes, Box(SERVICES_X, 7.2, 3.2, 1.3, "DynamoDB\nsync state table", "store"))
    dlq = box(
        axes,
        Box(SERVICES_X, 3.4, 3.2, 1.3, "SQS dead-letter\nqueue (encrypted,\n14 days)", "queue"),
    )
    redrive = box(
        axes, Box(18.7, 2.0, 2.6, 1.1, "λ redrive\n(scheduled):\ntransient reasons", "lambda")
    )
    alarm = box(axes, Box(5.6, 3.3, 3.6, 1.0, "CloudWatch dashboard,\nalarms → SNS"))
    person = box(
        axes,
        Box(
            5.6, 1.2, 3.6, 1.2, "a person: auth0-sync\ndlq list / show / delete,\nreplay", "person"
        ),
    )

    top = TOP_LANE_Y + LANE_HEIGHT / 2 + 0.3
    axes.text(RULES_X, top, "one EventBridge rule per event type", ha="center", fontsize=8.5)
    axes.text(HANDLERS_X, top, "one Lambda function each", ha="center", fontsize=8.5)
    last_rule = None
    for row, route in enumerate(routes):
        y = TOP_LANE_Y - row * LANE_GAP
        rule = box(
            axes, Box(RULES_X, y, 4.0, LANE_HEIGHT, str(route.event_type), "aws"), fontsize=7.5
        )
        handler = box(
            axes, Box(HANDLERS_X, y, 2.9, LANE_HEIGHT, handler_name(route), "lambda"), fontsize=7.5
        )
        arrow(axes, bus.edge("right"), rule.edge("left"), linewidth=0.8)
        arrow(axes, rule.edge("right"), handler.edge("left"), linewidth=0.9)
        name = handler_name(route)
        out = handler.edge("right")
        edge(out, crm.edge("left"), name, CRM, CRM)
        edge(out, secret.edge("left"), name, SECRETS, SECRETS)
        edge(out, state.edge("left"), name, STATE, STATE)
        edge(out, dlq.edge("left"), name, DLQ, DLQ)
        edge(redrive.edge("top"), out, REDRIVE, name, REDRIVE)
        last_rule = rule

    if last_rule is not None:  # EventBridge's delivery failures: every rule's target has the DLQ
        start = (last_rule.x, last_rule.y - last_rule.h / 2)
        edge(start, dlq.edge("left"), "rules", DLQ, DLQ)
    edge(dlq.edge("bottom"), redrive.edge("right"), DLQ, REDRIVE, REDRIVE)
    arrow(axes, dlq.edge("left"), alarm.edge("right"), "depth, age", label_at=0.35, fontsize=7.5)
    arrow(axes, dlq.edge("left"), person.edge("right"), "list, replay", label_at=0.3, fontsize=7.5)

    handles = [
        Line2D([], [], color=colour, linestyle=style, linewidth=1.4, label=text)  # type: ignore[arg-type]
        for colour, style, text in EDGE_STYLES.values()
    ]
    axes.legend(
        handles=handles, loc="upper left", bbox_to_anchor=(0.0, 0.995), fontsize=8, frameon=False
    )
    axes.set_title("auth0-sync: Auth0 Event Streams → EventBridge → Lambda → CRM", fontsize=12)
    return drawing


def draw(path: str | Path = DEFAULT_PATH) -> Path:
    return save(build().figure, path)


if __name__ == "__main__":
    print(draw())
