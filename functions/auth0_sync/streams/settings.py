"""What the scheduled stream health check reads from its environment, validated at cold start."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from auth0_sync.errors import ConfigError
from auth0_sync.names import PARTNER_SOURCE_PREFIX, Env


class HealthCheckSettings(BaseModel):
    """Field aliases are the environment variable names."""

    model_config = ConfigDict(frozen=True)

    mgmt_secret_arn: str = Field(validation_alias=Env.AUTH0_MGMT_SECRET_ARN, min_length=1)
    stream_id: str = Field(validation_alias=Env.AUTH0_STREAM_ID, pattern=r"^est_[A-Za-z0-9]+$")
    # The source the stack's bus is associated with: its state says whether events arrive.
    event_source_name: str = Field(
        validation_alias=Env.AUTH0_EVENT_SOURCE_NAME, pattern=rf"^{PARTNER_SOURCE_PREFIX}/.+"
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> HealthCheckSettings:
        """Build from the environment; a `ConfigError` names each bad or missing variable."""
        values = {name: environ[name] for name in Env if name in environ}
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
            )
            raise ConfigError(f"invalid configuration: {problems}") from exc
