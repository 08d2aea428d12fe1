"""Field mapping: Auth0 attribute paths (dotted) -> CRM fields, and the fingerprint of a mapping."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

_MISSING = object()


def get_path(document: Mapping[str, Any], path: str) -> Any:
    """Value at a dotted path (`user_metadata.company`), or None when any step is absent."""
    node: Any = document
    for step in path.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(step, _MISSING)
        if node is _MISSING:
            return None
    return node


def map_fields(profile: Mapping[str, Any], mapping: Mapping[str, str]) -> dict[str, Any]:
    """CRM fields for the mapped attributes present in the profile.

    Absent, null and empty values are left out, so an update never blanks a CRM field
    (Auth0 omits optional attributes freely, and the CRM keeps what PATCH does not send).
    """
    fields: dict[str, Any] = {}
    for source_path, crm_field in mapping.items():
        value = get_path(profile, source_path)
        if value is None or value == "":
            continue
        fields[crm_field] = value
    return fields


def fingerprint(fields: Mapping[str, Any]) -> str:
    """A stable digest of mapped values: equal digests mean no CRM call is needed."""
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


def anonymous_email(user_id: str) -> str:
    """A non-identifying, stable placeholder that still satisfies a required email field."""
    digest = hashlib.sha256(user_id.encode("utf-8")).hexdigest()[:20]
    return f"deleted-{digest}@anonymized.invalid"
