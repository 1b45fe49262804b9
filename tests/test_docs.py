"""The README's configuration reference must list every setting the code accepts, and
the configurations the docs show (README's YAML examples, the deployment's compose
file) must load."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from portside.config import Settings, load_settings

README = Path(__file__).parent.parent / "README.md"


def _keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys: list[str] = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys.extend(_keys(annotation, f"{prefix}{name}."))
        else:
            keys.append(f"{prefix}{name}")
    return keys


def test_every_setting_is_documented_in_the_readme() -> None:
    text = README.read_text()
    missing = [key for key in _keys(Settings) if f"`{key}`" not in text]
    assert not missing, f"README configuration table lacks: {missing}"


DEPLOY = README.parent / "docs" / "deploy"
_TEMPLATE_VARIABLE = re.compile(r"\$\{(\w+)\}")


def _nested(variables: dict[str, str]) -> dict[str, Any]:
    """PORTSIDE_A__B__C=v as {"a": {"b": {"c": v}}}: given to load_settings as overrides,
    where every section forbids unknown keys, so a misspelt variable is an error (the
    environment source would just not read it)."""
    nested: dict[str, Any] = {}
    for name, value in variables.items():
        *sections, key = name.removeprefix("PORTSIDE_").lower().split("__")
        target = nested
        for section in sections:
            target = target.setdefault(section, {})
        target[key] = value
    return nested


def test_the_compose_file_settings_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/deploy/docker-compose.yml: the replicas' PORTSIDE_* variables are settings
    config.py defines, with valid values (the ${...} placeholders filled in)."""
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    environment: dict[str, str] = compose["x-portside"]["environment"]
    variables = {
        name: _TEMPLATE_VARIABLE.sub("placeholder", str(value))
        for name, value in environment.items()
        if name.startswith("PORTSIDE_")
    }
    assert "PORTSIDE_STORAGE__S3__BUCKET" in variables
    for name in list(os.environ):
        if name.startswith("PORTSIDE_"):
            monkeypatch.delenv(name)
    settings = load_settings(data_dir=tmp_path, **_nested(variables))
    assert settings.storage.driver == "s3"
    assert settings.storage.s3.bucket == "portside"
    assert settings.storage.s3.endpoint_url == "http://minio:9000"
    assert settings.storage.s3.path_style is True
    assert settings.storage.s3.access_key_id == "placeholder"
    assert (settings.database.url or "").startswith("postgresql+psycopg://")
    # Every replica of the compose file is that anchor.
    replicas = [name for name in compose["services"] if name.startswith("portside-")]
    assert len(replicas) == 3
    assert all(compose["services"][name] == compose["x-portside"] for name in replicas)


def _readme_configs() -> list[str]:
    """The README's YAML blocks that are Portside configuration files (top-level keys
    are settings; the retention rule example is not one)."""
    blocks = re.findall(r"```yaml\n(.*?)```", README.read_text(), re.DOTALL)
    return [b for b in blocks if set(yaml.safe_load(b)) <= set(Settings.model_fields)]


@pytest.mark.parametrize("block", _readme_configs())
def test_the_readme_configuration_examples_load(
    block: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(os.environ):
        if name.startswith("PORTSIDE_"):
            monkeypatch.delenv(name)
    path = tmp_path / "portside.yaml"
    path.write_text(block)
    load_settings(path)


def test_the_s3_example_is_among_the_checked_readme_configs() -> None:
    assert any("driver: s3" in block for block in _readme_configs())
