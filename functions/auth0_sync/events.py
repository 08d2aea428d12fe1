"""The event as it arrives on the bus: an EventBridge envelope around an Auth0 CloudEvent.

Parsed with pydantic models. A malformed event raises `InvalidEvent` with a message naming
the field, e.g. `detail.data.object.user_id: Field required`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from auth0_sync.errors import InvalidEvent
from auth0_sync.names import LEGACY_TYPE_PREFIX, EventType

# How far a change time may run ahead of the event's own time, or of our clock: clocks
# drift a little; a profile dated years ahead would make every real change look stale.
CLOCK_SKEW = timedelta(minutes=5)
# A login's `last_login` and `updated_at` are one moment; allow for rounding.
LOGIN_STAMP_TOLERANCE = timedelta(seconds=1)
# DynamoDB keys are at most 2048 bytes; Auth0 user ids are far shorter than this.
MAX_USER_ID_LENGTH = 512
# At equal change times: a delete wins over an update, an update over a create.
TYPE_RANK = {EventType.USER_CREATED: 0, EventType.USER_UPDATED: 1, EventType.USER_DELETED: 2}


def _as_utc(moment: datetime) -> datetime:
    """A time without an offset is read as UTC (Auth0 writes UTC; a missing `Z` is a slip)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _no_control_characters(value: str) -> str:
    """An id goes into HTTP headers, logs and one-line listings: no line break may hide in it."""
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters (a line break, a tab...)")
    return value


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]
UserId = Annotated[
    str,
    Field(min_length=1, max_length=MAX_USER_ID_LENGTH),
    AfterValidator(_no_control_characters),
]
EventId = Annotated[str, Field(min_length=1), AfterValidator(_no_control_characters)]


def normalise_type(raw_type: str) -> str:
    """`com.auth0.user.created` -> `user.created`; other spellings are returned unchanged."""
    return raw_type.removeprefix(LEGACY_TYPE_PREFIX)


class Identity(BaseModel):
    """One entry of `identities[]`; a linked secondary's full id is `provider|user_id`."""

    model_config = ConfigDict(extra="allow")

    # Lenient: an odd entry must not make the whole event invalid; it is just not a link.
    provider: str | None = None
    user_id: str | int | None = None


class UserProfile(BaseModel):
    """`data.object` of user.created / user.updated: only `user_id` is relied on."""

    model_config = ConfigDict(extra="allow")

    user_id: UserId
    email: str | None = None
    created_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None
    app_metadata: dict[str, Any] | None = None
    user_metadata: dict[str, Any] | None = None
    identities: list[Identity] = Field(default_factory=list)

    @property
    def linked_user_ids(self) -> list[str]:
        """The full ids of the secondary accounts linked into this (primary) user."""
        ids = (f"{i.provider}|{i.user_id}" for i in self.identities if i.provider and i.user_id)
        return sorted({uid for uid in ids if uid != self.user_id})


class DeletedUser(BaseModel):
    """`data.object` of user.deleted: older tenants send only these two fields."""

    model_config = ConfigDict(extra="allow")

    user_id: UserId
    deleted_at: UtcDatetime
    email: str | None = None
    app_metadata: dict[str, Any] | None = None


class EventData(BaseModel):
    model_config = ConfigDict(extra="allow")

    object: dict[str, Any]
    previous_object: dict[str, Any] | None = None


class Auth0Event(BaseModel):
    """The Auth0 CloudEvent (the EventBridge `detail`)."""

    model_config = ConfigDict(extra="allow")

    specversion: str | None = None
    type: str = Field(min_length=1)
    source: str
    id: EventId
    time: UtcDatetime
    data: EventData
    a0tenant: str | None = None
    a0stream: str | None = None
    a0purpose: str | None = None

    @field_validator("type")
    @classmethod
    def _normalise(cls, value: str) -> str:
        return normalise_type(value)

    @property
    def is_test(self) -> bool:
        return self.a0purpose == "test"


class EventBridgeEnvelope(BaseModel):
    """The envelope EventBridge puts around every event, its fields as AWS documents them
    ("Amazon EventBridge events": version, id, detail-type, source, account, time, region,
    resources, detail; replay-name on a replayed one). Not Powertools' `EventBridgeModel`:
    importing it builds all of the parser's models for other services, about 28 ms of a
    cold start that no event of ours uses (docs/benchmarks.md, figure 5)."""

    model_config = ConfigDict(populate_by_name=True)

    version: str
    id: str
    detail_type: str = Field(alias="detail-type")
    source: str
    account: str
    time: datetime
    region: str
    resources: list[str]
    replay_name: str | None = Field(default=None, alias="replay-name")


class Auth0BusEvent(EventBridgeEnvelope):
    """EventBridge envelope; route on `detail.type`, never on `detail-type` (undocumented)."""

    detail: Auth0Event

    @cached_property
    def user(self) -> UserProfile | DeletedUser:
        """The typed `data.object`; validated by `parse_event` for the types we handle."""
        model = DeletedUser if self.detail.type == EventType.USER_DELETED else UserProfile
        return model.model_validate(self.detail.data.object)

    @property
    def event_id(self) -> str:
        return self.detail.id

    @property
    def event_type(self) -> str:
        return self.detail.type

    @property
    def user_id(self) -> str:
        return self.user.user_id

    @property
    def change_time(self) -> datetime:
        """When the change happened in Auth0: the ordering key."""
        user = self.user
        stamp = user.deleted_at if isinstance(user, DeletedUser) else user.updated_at
        return stamp or self.detail.time

    @property
    def order_key(self) -> tuple[str, int, str]:
        """The total order of one user's changes: time, then type at a tie, then event id."""
        return (iso(self.change_time), TYPE_RANK[EventType(self.event_type)], self.event_id)


def looks_like_a_login(profile: Mapping[str, Any]) -> bool:
    """Whether a `user.updated` profile has the shape of a login: Auth0 stamps a login's
    `last_login` and `updated_at` alike, where a profile edit moves `updated_at` alone. A
    hint for the hot path only (which request to try first), never a rule: unreadable or
    missing stamps count as a login."""
    login, updated = profile.get("last_login"), profile.get("updated_at")
    if not isinstance(updated, str):
        return True
    if not isinstance(login, str):
        return False  # never logged in: the update is an edit
    try:
        gap = _as_utc(datetime.fromisoformat(updated)) - _as_utc(datetime.fromisoformat(login))
    except ValueError:
        return True
    return abs(gap) <= LOGIN_STAMP_TOLERANCE


def iso(moment: datetime) -> str:
    """Fixed-width UTC ISO-8601, so stored strings also sort in time order."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _check_clock(event: Auth0BusEvent, now: datetime) -> None:
    change = event.change_time
    field_name = "deleted_at" if event.event_type == EventType.USER_DELETED else "updated_at"
    where = f"detail.data.object.{field_name}"
    if change > event.detail.time + CLOCK_SKEW:
        raise InvalidEvent(
            f"{where}: {iso(change)} is later than the event's own time {iso(event.detail.time)}"
        )
    if change > now + CLOCK_SKEW:
        raise InvalidEvent(f"{where}: {iso(change)} is in the future (now {iso(now)})")


def _describe(exc: ValidationError, prefix: str = "") -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"])
        parts.append(f"{prefix}{where}: {error['msg']}")
    return "; ".join(parts)


def parse_event(raw: Any, now: datetime | None = None) -> Auth0BusEvent:
    """Parse and validate one bus event; unknown types pass with their envelope only."""
    if not isinstance(raw, dict):
        raise InvalidEvent(f"event: expected a JSON object, got {type(raw).__name__}")
    try:
        event = Auth0BusEvent.model_validate(raw)
    except ValidationError as exc:
        raise InvalidEvent(_describe(exc)) from exc
    except RecursionError as exc:
        raise InvalidEvent("event: nested too deeply to be an Auth0 event") from exc
    if event.detail.type in EventType.__members__.values():
        try:
            _ = event.user
        except ValidationError as exc:
            raise InvalidEvent(_describe(exc, "detail.data.object.")) from exc
        if not event.detail.is_test:  # a test event writes nothing; its sample data is old
            _check_clock(event, datetime.now(UTC) if now is None else now)
    return event


def identity_of(raw: Any) -> dict[str, str | None]:
    """Best-effort ids of a raw (maybe malformed) event, for logs and DLQ listings."""

    def field(container: Any, key: str) -> Any:
        return container.get(key) if isinstance(container, dict) else None

    detail = field(raw, "detail")
    obj = field(field(detail, "data"), "object")
    raw_type, event_id, user_id = field(detail, "type"), field(detail, "id"), field(obj, "user_id")
    if user_id is None:  # organization member events: `data.object.user.user_id`
        user_id = field(field(obj, "user"), "user_id")
    return {
        "event_id": event_id if isinstance(event_id, str) else None,
        "event_type": normalise_type(raw_type) if isinstance(raw_type, str) else None,
        "user_id": user_id if isinstance(user_id, str) else None,
    }
