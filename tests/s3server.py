"""A real S3 API server for the tests: moto's server mode (`moto_server` from PyPI's
`moto[server]`), started as a subprocess on a free loopback port, one per test session.

Each test gets its own bucket. The server's request log (one line per HTTP request,
written by its werkzeug server) lets tests count the S3 requests Portside made.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import httpx
import pytest
from mypy_boto3_s3 import S3Client

from tests.durability.server import free_port
from tests.missing import missing_tool

ACCESS_KEY = "portside-test"
SECRET_KEY = "portside-test-secret"
REGION = "us-east-1"
MIB = 1024 * 1024


@dataclass
class MotoServer:
    endpoint: str
    log: Path

    def client(self) -> S3Client:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def requests(self, bucket: str) -> list[str]:
        """`METHOD /bucket/key?query` of every request to `bucket` logged so far."""
        lines = self.log.read_text(errors="replace").splitlines()
        found = []
        for line in lines:
            match = re.search(r'"([A-Z]+) (/[^ ]*) HTTP/', line)
            if match and match.group(2).startswith(f"/{bucket}"):
                found.append(f"{match.group(1)} {match.group(2)}")
        return found

    def new_bucket(self) -> str:
        name = f"portside-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=name)
        return name


@contextlib.contextmanager
def moto_server(directory: Path) -> Iterator[MotoServer]:
    binary = Path(sys.executable).parent / "moto_server"
    if not binary.exists() and shutil.which("moto_server") is None:
        missing_tool("moto_server is not installed (pip install 'moto[server]')")
    port = free_port()
    log = directory / "moto.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(binary if binary.exists() else "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"moto_server exited: {log.read_text(errors='replace')[-2000:]}")
            try:
                httpx.get(f"{endpoint}/moto-api/", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    pytest.fail("moto_server did not start within 60 s")
                time.sleep(0.2)
        yield MotoServer(endpoint, log)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def s3_settings(server: MotoServer, bucket: str, **extra: object) -> dict[str, object]:
    """The `storage` settings section for a bucket on the test server."""
    return {
        "driver": "s3",
        "s3": {
            "bucket": bucket,
            "endpoint_url": server.endpoint,
            "region": REGION,
            "access_key_id": ACCESS_KEY,
            "secret_access_key": SECRET_KEY,
            "path_style": True,
            **extra,
        },
    }


def s3_env(server: MotoServer, bucket: str, **extra: str) -> dict[str, str]:
    """The same as PORTSIDE_* variables, for `portside` subprocesses."""
    env = {
        "PORTSIDE_STORAGE__DRIVER": "s3",
        "PORTSIDE_STORAGE__S3__BUCKET": bucket,
        "PORTSIDE_STORAGE__S3__ENDPOINT_URL": server.endpoint,
        "PORTSIDE_STORAGE__S3__REGION": REGION,
        "PORTSIDE_STORAGE__S3__ACCESS_KEY_ID": ACCESS_KEY,
        "PORTSIDE_STORAGE__S3__SECRET_ACCESS_KEY": SECRET_KEY,
        "PORTSIDE_STORAGE__S3__PATH_STYLE": "true",
    }
    env.update({f"PORTSIDE_STORAGE__S3__{k.upper()}": v for k, v in extra.items()})
    return env
