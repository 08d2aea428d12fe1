"""Settings: validated once, clear messages naming the variable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from auth0_sync.errors import ConfigError
from auth0_sync.names import Env
from auth0_sync.settings import DeletePolicy, MissingContactPolicy, Settings

pytestmark = pytest.mark.unit

BASE: dict[str, str] = {Env.CRM_BASE_URL: "https://crm.example.com/", Env.CRM_API_TOKEN: "t"}


def test_defaults() -> None:
    settings = Settings.from_env(BASE)
    assert settings.crm_base_url == "https://crm.example.com"
    assert settings.field_mapping["phone_number"] == "phone"
    assert settings.contact_id_path == "app_metadata.crm_contact_id"
    assert settings.missing_contact_policy is MissingContactPolicy.CREATE
    assert settings.delete_policy is DeletePolicy.DEACTIVATE


def test_mapping_from_json_and_from_file(tmp_path: Path) -> None:
    mapping = {"email": "email", "user_metadata.company": "name"}
    assert (
        Settings.from_env({**BASE, Env.FIELD_MAPPING: json.dumps(mapping)}).field_mapping == mapping
    )
    file = tmp_path / "mapping.json"
    file.write_text(json.dumps(mapping))
    assert Settings.from_env({**BASE, Env.FIELD_MAPPING_FILE: str(file)}).field_mapping == mapping


def test_mapping_outside_the_contract_fails_at_start_up() -> None:
    with pytest.raises(ConfigError, match=r"FIELD_MAPPING: .*\['company'\] outside the contract"):
        Settings.from_env({**BASE, Env.FIELD_MAPPING: '{"user_metadata.company": "company"}'})


def test_mapping_that_is_not_json_says_so() -> None:
    with pytest.raises(ConfigError, match=r"FIELD_MAPPING: .*not valid JSON"):
        Settings.from_env({**BASE, Env.FIELD_MAPPING: "{email: email"})


def test_unreadable_mapping_file_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="FIELD_MAPPING_FILE: cannot read"):
        Settings.from_env({**BASE, Env.FIELD_MAPPING_FILE: str(tmp_path / "nope.json")})


def test_missing_base_url_and_token_are_named() -> None:
    with pytest.raises(ConfigError, match="CRM_BASE_URL: Field required"):
        Settings.from_env({Env.CRM_API_TOKEN: "t"})
    with pytest.raises(ConfigError, match=r"CRM_TOKEN_SECRET_ARN .*or CRM_API_TOKEN"):
        Settings.from_env({Env.CRM_BASE_URL: "https://crm"})


def test_bad_policy_is_named() -> None:
    with pytest.raises(ConfigError, match="DELETE_POLICY"):
        Settings.from_env({**BASE, Env.DELETE_POLICY: "shred"})


def test_token_is_not_in_repr() -> None:
    assert "secret-token" not in repr(
        Settings.from_env({**BASE, Env.CRM_API_TOKEN: "secret-token"})
    )
