"""npm packages: the package.json at the root of each package under a node_modules
directory (node_modules/name/ or node_modules/@scope/name/, at any depth, which also
covers pnpm's .pnpm store). An application's own package.json is not a dependency and
is not read."""

from __future__ import annotations

import json

from portside.scanning.collectors.base import Draft, Found
from portside.scanning.limits import Limits


def _licenses(document: dict[str, object]) -> tuple[str, ...]:
    value = document.get("license")
    if isinstance(value, dict):
        value = value.get("type")
    if isinstance(value, str) and value:
        return (value,)
    found = document.get("licenses")
    if isinstance(found, list):
        names = [e.get("type") if isinstance(e, dict) else e for e in found]
        return tuple(n for n in names if isinstance(n, str) and n)
    return ()


class NpmPackage:
    pattern = r"(?:.*/)?node_modules/(?:@[^/]+/)?[^/@][^/]*/package\.json"

    def collect(self, path: str, data: bytes, limits: Limits) -> Found:
        document = json.loads(data)
        if not isinstance(document, dict):
            return Found(warnings=(f"{path}: not a JSON object",))
        name, version = document.get("name"), document.get("version")
        if not isinstance(name, str) or not isinstance(version, str) or not name or not version:
            return Found()  # test fixtures and partial packages carry no name or version
        scope, _, bare = name.rpartition("/")
        return Found(
            drafts=(
                Draft(
                    kind="npm",
                    name=bare,
                    namespace=scope or None,
                    version=version,
                    licenses=_licenses(document),
                ),
            )
        )
