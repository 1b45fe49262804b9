"""A missing client binary or daemon skips its test on a developer's machine and fails it
under CI (`CI` set, as scripts/test sets it)."""

from __future__ import annotations

import pytest

from tests.clients.tooling import require_binary
from tests.missing import missing_tool

ABSENT = "portside-no-such-tool-binary"


def test_missing_tool_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception, match="not installed"):
        missing_tool("skopeo is not installed")


@pytest.mark.parametrize("value", [None, ""])
def test_missing_tool_skips_outside_ci(monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.skip.Exception, match="not installed"):
        missing_tool("skopeo is not installed")


def test_require_binary_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=ABSENT):
        require_binary(ABSENT)


def test_require_binary_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=ABSENT):
        require_binary(ABSENT)


def test_require_binary_finds_an_installed_tool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "1")
    assert require_binary("sh").endswith("/sh")
