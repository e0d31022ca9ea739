"""Service configuration: a TOML file, `LOADMASTER_…` environment overrides, validated at start.

Every error names the key (`scheduler.cycle_seconds: …`) so a bad deployment fails at once
and says where. Environment variables override file values key by key:
`LOADMASTER_<SECTION>_<KEY>` (for example `LOADMASTER_STORE_URL`,
`LOADMASTER_SCHEDULER_CYCLE_SECONDS`); values are read as TOML scalars when they parse as one
(`2`, `1.5`, `true`), otherwise as strings.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from loadmaster.input_errors import InputError, validation_problems

ENV_PREFIX = "LOADMASTER_"


class ConfigError(InputError):
    """A configuration that cannot be used."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _non_negative(value: dict[str, float]) -> dict[str, float]:
    for name, amount in value.items():
        if amount < 0:
            raise ValueError(f"{name}: must not be negative (got {amount:g})")
    return value


class StoreConfig(_Section):
    url: str | None = None  # default: a SQLite file in the data directory
    pg_schema: str | None = None  # PostgreSQL only: keep every table in this schema


class SchedulerConfig(_Section):
    data_dir: str = "loadmaster-data"
    cycle_seconds: Annotated[float, Field(gt=0)] = 1.0
    queue_mode: Literal["FIFO", "LIFO"] = "FIFO"
    queue_limit: Annotated[int, Field(ge=1)] = 500
    engine: Literal["reference", "fast"] = "fast"
    policy: Literal["reference", "backfill"] = "reference"
    on_shutdown: Literal["leave", "kill"] = "leave"
    framework_id: Annotated[str, Field(min_length=1)] = "loadmaster"
    health_min_free_mib: Annotated[float, Field(ge=0)] = 256.0
    sync_seconds: Annotated[float, Field(gt=0)] = 5.0

    @field_validator("queue_mode", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


class LocalAgentConfig(_Section):
    name: Annotated[str, Field(min_length=1)]
    resources: dict[str, float]

    @field_validator("resources")
    @classmethod
    def _check(cls, value: dict[str, float]) -> dict[str, float]:
        return _non_negative(value)


class LocalBackendConfig(_Section):
    work_dir: str | None = None  # default: <data_dir>/agents
    reserve: dict[str, float] = Field(default_factory=lambda: {"cpus": 0.0, "mem": 256.0})
    agents: list[LocalAgentConfig] = Field(default_factory=list)
    kill_grace_seconds: Annotated[float, Field(ge=0)] = 5.0

    @field_validator("reserve")
    @classmethod
    def _check(cls, value: dict[str, float]) -> dict[str, float]:
        return _non_negative(value)


class MesosBackendSection(_Section):
    """`[backend.mesos]`: a framework on the v1 scheduler HTTP API (docs/mesos.md)."""

    master: Annotated[str, Field(pattern=r"^https?://[^/\s]+/?$")]
    role: Annotated[str, Field(min_length=1, pattern=r"^\S+$")] = "*"
    principal: str | None = None
    secret: str | None = None
    secret_file: str | None = None  # read at start; keeps the secret out of the file
    failover_timeout_seconds: Annotated[float, Field(ge=0)] = 7 * 24 * 3600.0
    framework_name: Annotated[str, Field(min_length=1)] = "loadmaster"
    docker_image: Annotated[str, Field(min_length=1)] | None = None
    refuse_seconds: Annotated[float, Field(ge=0)] = 5.0

    @model_validator(mode="after")
    def _secret_needs_principal(self) -> MesosBackendSection:
        if (self.secret or self.secret_file) and not self.principal:
            raise ValueError("secret: needs a principal")
        if self.secret and self.secret_file:
            raise ValueError("secret: give secret or secret_file, not both")
        return self


class DaskBackendSection(_Section):
    """`[backend.dask]`: the workers of an existing Dask cluster are the agents (docs/dask.md)."""

    scheduler_address: Annotated[str, Field(pattern=r"^(tcp|tls|ws|wss|ucx)://[^\s/]+$")]
    work_dir: str | None = None  # on every worker; default: loadmaster/ in its local directory
    connect_timeout_seconds: Annotated[float, Field(gt=0)] = 10.0
    kill_grace_seconds: Annotated[float, Field(ge=0)] = 5.0
    forward_env: list[str] = Field(default_factory=list)  # glob patterns of service variables
    log_limit_bytes: Annotated[int, Field(gt=0)] = 1024 * 1024


class BackendConfig(_Section):
    kind: Literal["local", "mesos", "dask"] = "local"
    local: LocalBackendConfig = Field(default_factory=LocalBackendConfig)
    mesos: MesosBackendSection | None = None
    dask: DaskBackendSection | None = None

    @model_validator(mode="after")
    def _dask_needs_its_section(self) -> BackendConfig:
        if self.kind == "dask" and self.dask is None:
            raise ValueError('dask: kind = "dask" needs a [backend.dask] section')
        return self

    @model_validator(mode="after")
    def _mesos_needs_its_section(self) -> BackendConfig:
        if self.kind == "mesos" and self.mesos is None:
            raise ValueError('mesos: kind = "mesos" needs a [backend.mesos] section')
        return self


class ServiceTaskConfig(_Section):
    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
    command: Annotated[list[str], Field(min_length=1)]
    resources: dict[str, float] = Field(default_factory=lambda: {"cpus": 0.1, "mem": 32.0})
    count: Annotated[int, Field(ge=0)] = 1
    shell: bool = False
    env: dict[str, str] = Field(default_factory=dict)

    @field_validator("resources")
    @classmethod
    def _check(cls, value: dict[str, float]) -> dict[str, float]:
        return _non_negative(value)


class LoggingConfig(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


class ApiConfig(_Section):
    """The HTTP API `serve` hosts beside the loop. Mutations need `token` when one is set; a
    non-loopback `host` without a token is refused at start."""

    enabled: bool = True
    host: Annotated[str, Field(min_length=1)] = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8750  # 0: any free port
    token: str | None = None
    max_body_bytes: Annotated[int, Field(ge=1024)] = 1_048_576
    max_batch: Annotated[int, Field(ge=1)] = 1000
    status_seconds: Annotated[float, Field(gt=0)] = 2.0

    @field_validator("token", mode="before")
    @classmethod
    def _token_text(cls, value: object) -> object:
        """An all-digit token from the environment parses as a number; it is still text."""
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        return value or None


class Config(_Section):
    store: StoreConfig = Field(default_factory=StoreConfig)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    backend: BackendConfig = Field(default_factory=BackendConfig)
    services: list[ServiceTaskConfig] = Field(default_factory=list)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)

    def data_path(self) -> Path:
        return Path(self.scheduler.data_dir).expanduser()

    def store_url(self) -> str:
        if self.store.url:
            return self.store.url
        return f"sqlite:///{self.data_path() / 'loadmaster.db'}"

    def work_dir(self) -> Path:
        local = self.backend.local
        return Path(local.work_dir).expanduser() if local.work_dir else self.data_path() / "agents"


# Sections whose scalar keys may be overridden from the environment.
_ENV_SECTIONS: dict[str, type[BaseModel]] = {
    "store": StoreConfig,
    "scheduler": SchedulerConfig,
    "logging": LoggingConfig,
    "api": ApiConfig,
}


def _env_value(raw: str) -> object:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def apply_environment(data: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """Overlay `LOADMASTER_<SECTION>_<KEY>` values onto the file's data."""
    out = {key: (dict(value) if isinstance(value, dict) else value) for key, value in data.items()}
    for section, model in _ENV_SECTIONS.items():
        for key in model.model_fields:
            name = f"{ENV_PREFIX}{section}_{key}".upper()
            if name in environ:
                out.setdefault(section, {})[key] = _env_value(environ[name])
    if f"{ENV_PREFIX}BACKEND_KIND" in environ:
        out.setdefault("backend", {})["kind"] = environ[f"{ENV_PREFIX}BACKEND_KIND"]
    return out


def parse_config(data: Mapping[str, Any], source: str = "configuration") -> Config:
    try:
        return Config.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError(validation_problems(exc, source)) from None


def load_config(path: Path | None, environ: Mapping[str, str] | None = None) -> Config:
    """Read the file (if any), apply the environment, validate."""
    env = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    source = "configuration"
    if path is not None:
        source = str(path)
        try:
            data = tomllib.loads(path.read_text())
        except OSError as exc:
            raise ConfigError([f"{path}: {exc.strerror or exc}"]) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None
    return parse_config(apply_environment(data, env), source)
