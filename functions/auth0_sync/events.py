"""The event as it arrives on the bus: an EventBridge envelope around an Auth0 CloudEvent.

Parsed with Powertools Parser models (pydantic). A malformed event raises `InvalidEvent`
with a message naming the field, e.g. `detail.data.object.user_id: Field required`.
"""

from __future__ import annotations

from datetime import datetime
from functools import cached_property
from typing import Any

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from auth0_sync.errors import InvalidEvent
from auth0_sync.names import LEGACY_TYPE_PREFIX, EventType


def normalise_type(raw_type: str) -> str:
    """`com.auth0.user.created` -> `user.created`; other spellings are returned unchanged."""
    return raw_type.removeprefix(LEGACY_TYPE_PREFIX)


class UserProfile(BaseModel):
    """`data.object` of user.created / user.updated: only `user_id` is relied on."""

    model_config = ConfigDict(extra="allow")

    user_id: str = Field(min_length=1)
    email: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    app_metadata: dict[str, Any] = Field(default_factory=dict)
    user_metadata: dict[str, Any] = Field(default_factory=dict)


class DeletedUser(BaseModel):
    """`data.object` of user.deleted: older tenants send only these two fields."""

    model_config = ConfigDict(extra="allow")

    user_id: str = Field(min_length=1)
    deleted_at: datetime
    email: str | None = None
    app_metadata: dict[str, Any] = Field(default_factory=dict)


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
    id: str = Field(min_length=1)
    time: datetime
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


class Auth0BusEvent(EventBridgeModel):
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


def _describe(exc: ValidationError, prefix: str = "") -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"])
        parts.append(f"{prefix}{where}: {error['msg']}")
    return "; ".join(parts)


def parse_event(raw: Any) -> Auth0BusEvent:
    """Parse and validate one bus event; unknown types pass with their envelope only."""
    if not isinstance(raw, dict):
        raise InvalidEvent(f"event: expected a JSON object, got {type(raw).__name__}")
    try:
        event = Auth0BusEvent.model_validate(raw)
    except ValidationError as exc:
        raise InvalidEvent(_describe(exc)) from exc
    if event.detail.type in EventType.__members__.values():
        try:
            _ = event.user
        except ValidationError as exc:
            raise InvalidEvent(_describe(exc, "detail.data.object.")) from exc
    return event


def identity_of(raw: Any) -> dict[str, str | None]:
    """Best-effort ids of a raw (maybe malformed) event, for logs and DLQ listings."""

    def field(container: Any, key: str) -> Any:
        return container.get(key) if isinstance(container, dict) else None

    detail = field(raw, "detail")
    obj = field(field(detail, "data"), "object")
    raw_type, event_id, user_id = field(detail, "type"), field(detail, "id"), field(obj, "user_id")
    return {
        "event_id": event_id if isinstance(event_id, str) else None,
        "event_type": normalise_type(raw_type) if isinstance(raw_type, str) else None,
        "user_id": user_id if isinstance(user_id, str) else None,
    }
