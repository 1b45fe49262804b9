"""What a test does when a tool it drives (a client binary, a daemon, Chromium) is missing.

Outside CI it is skipped, so a developer without docker can still run the rest. Under CI
(`CI` set, as scripts/test sets it after scripts/test-deps installed every tool) it FAILS:
a skip there would hide that a whole client went untested.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def missing_tool(message: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI is set, so this fails instead of skipping)", pytrace=False)
    pytest.skip(message)
