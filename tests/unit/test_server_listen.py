"""`portside serve` refuses an address something already listens on: granian binds with
SO_REUSEPORT, so a second server on the same port would otherwise start too and silently
take half the connections."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from portside.config import ConfigError, load_settings
from portside.server import check_listen_address


@pytest.fixture
def listening() -> Iterator[int]:
    """A port something listens on, with SO_REUSEPORT as granian binds."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


def test_a_free_address_passes() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    check_listen_address(load_settings(listen=f"127.0.0.1:{port}"))


def test_an_address_in_use_is_refused_naming_the_key(listening: int) -> None:
    with pytest.raises(ConfigError, match=r"listen: 127\.0\.0\.1:\d+ is already in use"):
        check_listen_address(load_settings(listen=f"127.0.0.1:{listening}"))


def test_an_unresolvable_host_is_refused() -> None:
    with pytest.raises(ConfigError, match="listen: cannot resolve"):
        check_listen_address(load_settings(listen="no-such-host.invalid:5000"))


def test_serve_exits_with_the_message(listening: int, tmp_path: Path) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PORTSIDE_")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "portside",
            "serve",
            "--listen",
            f"127.0.0.1:{listening}",
            "--data-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "is already in use" in result.stderr
