"""Portside's settings: defaults, a YAML file, and `PORTSIDE_*` environment variables.

Precedence, highest first: command-line overrides, environment (`PORTSIDE_LISTEN`,
`PORTSIDE_DATABASE__URL`: nested keys joined by `__`), the YAML file, defaults.
Every problem is reported as a ConfigError naming the dotted key.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)


class ConfigError(Exception):
    """A configuration problem, worded for the person who wrote the config."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseSettings(_Section):
    url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the metadata database. Default: SQLite file "
        "`portside.db` in the data directory. PostgreSQL: "
        "`postgresql+psycopg://user:password@host/dbname`.",
    )

    @field_validator("url")
    @classmethod
    def _known_dialect(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("sqlite", "postgresql")):
            raise ValueError("only sqlite:// and postgresql+psycopg:// URLs are supported")
        return value


class FilesystemStorageSettings(_Section):
    root: Path | None = Field(
        default=None, description="Directory for blobs and uploads. Default: `<data_dir>/storage`."
    )


class StorageSettings(_Section):
    driver: Literal["filesystem"] = Field(default="filesystem", description="Storage driver.")
    filesystem: FilesystemStorageSettings = FilesystemStorageSettings()


class ServerSettings(_Section):
    workers: int = Field(
        default=0, ge=0, le=256, description="Worker processes; 0 means one per CPU core."
    )


class RegistrySettings(_Section):
    delete_enabled: bool = Field(
        default=True, description="Allow DELETE of manifests, tags and blob links."
    )
    manifest_max_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=1024,
        le=64 * 1024 * 1024,
        description="Largest manifest accepted on PUT, in bytes.",
    )
    upload_expiry_hours: int = Field(
        default=24, ge=1, description="Incomplete uploads idle this long may be purged."
    )


class LogSettings(_Section):
    level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Lowest level written."
    )
    format: Literal["json", "console"] = Field(
        default="json", description="`json` lines, or `console` for people."
    )
    access: bool = Field(default=True, description="One log line per HTTP request.")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PORTSIDE_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    listen: str = Field(
        default="127.0.0.1:5000", description="Address and port to listen on, `HOST:PORT`."
    )
    data_dir: Path = Field(
        default=Path("portside-data"),
        description="Directory holding the SQLite database and stored blobs by default.",
    )
    database: DatabaseSettings = DatabaseSettings()
    storage: StorageSettings = StorageSettings()
    server: ServerSettings = ServerSettings()
    registry: RegistrySettings = RegistrySettings()
    log: LogSettings = LogSettings()

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("expected HOST:PORT, for example 127.0.0.1:5000 or [::1]:5000")
        return value

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{self.data_dir.absolute() / 'portside.db'}"

    @property
    def storage_root(self) -> Path:
        return (self.storage.filesystem.root or self.data_dir / "storage").absolute()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _YamlSource(settings_cls)


class _YamlSource(InitSettingsSource):
    """Feeds the YAML file named by `load_settings` in below the environment."""

    current: ClassVar[dict[str, Any]] = {}

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls, dict(_YamlSource.current))


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of settings")
    return data


def _describe(error: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid configuration"]
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown setting"
        lines.append(f"  {key}: {message} (got {item.get('input')!r})")
    return "\n".join(lines)


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build Settings from the file, the environment and non-None overrides."""
    file_data = _read_yaml(config_file) if config_file else {}
    source = str(config_file) if config_file else "command line and PORTSIDE_* variables"
    _YamlSource.current = file_data
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from exc
    finally:
        _YamlSource.current = {}


SERIALIZED_ENV = "PORTSIDE_INTERNAL_SETTINGS_JSON"


def settings_from_environment() -> Settings:
    """Settings a worker process was handed by `portside serve` (see cli.serve)."""
    raw = os.environ.get(SERIALIZED_ENV)
    if raw is None:
        return load_settings()
    return Settings.model_validate_json(raw)
