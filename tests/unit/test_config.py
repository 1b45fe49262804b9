"""load_settings: defaults, YAML, environment, overrides, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from portside.config import ConfigError, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("PORTSIDE_") and name != "PORTSIDE_TEST_DATABASE_URL":
            monkeypatch.delenv(name)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "portside.yaml"
    path.write_text(text)
    return path


def test_defaults() -> None:
    settings = load_settings()
    assert settings.listen == "127.0.0.1:5000"
    assert settings.host == "127.0.0.1"
    assert settings.port == 5000
    assert settings.registry.delete_enabled is True
    assert settings.registry.manifest_max_bytes == 4 * 1024 * 1024
    assert settings.database_url.startswith("sqlite:///")


def test_yaml_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "listen: 0.0.0.0:6000\nregistry:\n  delete_enabled: false\n  manifest_max_bytes: 2048\n",
    )
    settings = load_settings(path)
    assert settings.port == 6000
    assert settings.registry.delete_enabled is False
    assert settings.registry.manifest_max_bytes == 2048


def test_empty_yaml_file(tmp_path: Path) -> None:
    assert load_settings(write(tmp_path, "")).listen == "127.0.0.1:5000"


def test_ipv6_listen() -> None:
    settings = load_settings(listen="[::1]:5001")
    assert settings.host == "::1"
    assert settings.port == 5001


def test_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "listen: 127.0.0.1:6000\nregistry:\n  manifest_max_bytes: 2048\n")
    monkeypatch.setenv("PORTSIDE_LISTEN", "127.0.0.1:7000")
    settings = load_settings(path)
    assert settings.port == 7000  # environment over file
    assert settings.registry.manifest_max_bytes == 2048
    assert load_settings(path, listen="127.0.0.1:8000").port == 8000  # override over all


def test_env_nested_bool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTSIDE_REGISTRY__DELETE_ENABLED", "false")
    assert load_settings().registry.delete_enabled is False


def test_env_bad_bool_names_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTSIDE_REGISTRY__DELETE_ENABLED", "maybe")
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert "registry.delete_enabled" in str(raised.value)
    assert "maybe" in str(raised.value)


def test_env_bad_listen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTSIDE_LISTEN", "nonsense")
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert "listen" in str(raised.value)


@pytest.mark.parametrize("listen", ["5000", ":5000", "host:", "host:0", "host:65536", "host:abc"])
def test_bad_listen(listen: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(listen=listen)
    assert "listen" in str(raised.value)
    assert "HOST:PORT" in str(raised.value)


def test_unknown_top_level_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(write(tmp_path, "lisen: 1.2.3.4:5\n"))
    message = str(raised.value)
    assert "lisen" in message
    assert "unknown setting" in message
    assert str(tmp_path / "portside.yaml") in message


def test_unknown_nested_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(write(tmp_path, "registry:\n  delete_enabeld: true\n"))
    assert "registry.delete_enabeld" in str(raised.value)


def test_bad_nested_value(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(write(tmp_path, "registry:\n  manifest_max_bytes: 10\n"))
    assert "registry.manifest_max_bytes" in str(raised.value)


def test_bad_database_url() -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(database={"url": "mysql://x/y"})
    assert "database.url" in str(raised.value)


def test_bad_log_level() -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(log={"level": "loud"})
    assert "log.level" in str(raised.value)


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "42\n"])
def test_yaml_not_a_mapping(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(write(tmp_path, text))
    assert "mapping" in str(raised.value)
    assert "portside.yaml" in str(raised.value)


def test_yaml_syntax_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(write(tmp_path, "listen: [unclosed\n"))
    assert "YAML" in str(raised.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(tmp_path / "absent.yaml")
    assert "absent.yaml" in str(raised.value)


def test_yaml_does_not_leak_into_next_load(tmp_path: Path) -> None:
    load_settings(write(tmp_path, "listen: 127.0.0.1:6000\n"))
    assert load_settings().port == 5000


def test_storage_root_default(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    assert settings.storage_root == (tmp_path / "storage").absolute()
    assert settings.database_url == f"sqlite:///{tmp_path.absolute() / 'portside.db'}"


def test_scan_limits_have_the_scanners_names_and_defaults() -> None:
    """`scanning.limits` is built into portside.scanning.limits.Limits field by field."""
    from dataclasses import asdict

    from portside.scanning.limits import Limits

    assert load_settings().scanning.limits.model_dump() == asdict(Limits())


@pytest.mark.parametrize(
    ("limits", "named", "said"),
    [
        ({"max_entries": 0}, "scanning.limits.max_entries", "greater than 0"),
        ({"max_ratio": "lots"}, "scanning.limits.max_ratio", "lots"),
        ({"max_entries_total": 5}, "scanning.limits.max_entries_total", ""),
        (
            {"max_layer_bytes": 2000, "max_image_bytes": 1000},
            "scanning.limits",
            "max_image_bytes must be at least max_layer_bytes",
        ),
    ],
)
def test_bad_scan_limits_name_the_key(limits: dict[str, object], named: str, said: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(scanning={"limits": limits})
    assert named in str(raised.value)
    assert said in str(raised.value)


def test_scan_limits_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTSIDE_SCANNING__LIMITS__MAX_LAYERS", "7")
    assert load_settings().scanning.limits.max_layers == 7
