"""A small OSV export and Debian tracker file, written for these tests, covering each
ecosystem the matcher orders, the fallback to an ecosystem without release, a
withdrawn record, `last_affected`, an unknown ecosystem, and one CVE reported by both
OSV and the tracker."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from portside.scanning.model import Package

CVSS_HIGH = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"  # 7.5

OSV: list[dict[str, Any]] = [
    {
        "id": "GHSA-aaaa-bbbb-cccc",
        "modified": "2024-02-01T00:00:00Z",
        "aliases": ["CVE-2024-0001"],
        "summary": "Django SQL injection",
        "severity": [{"type": "CVSS_V3", "score": CVSS_HIGH}],
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "Django"},
                "ranges": [
                    {
                        "type": "ECOSYSTEM",
                        "events": [
                            {"introduced": "4.0"},
                            {"fixed": "4.2.10"},
                            {"introduced": "5.0"},
                            {"fixed": "5.0.2"},
                        ],
                    }
                ],
            }
        ],
        "references": [{"type": "WEB", "url": "https://example.test/django"}],
        "database_specific": {"severity": "HIGH"},
    },
    {
        "id": "GHSA-lodash-0000-0000",
        "modified": "2024-02-01T00:00:00Z",
        "details": "Prototype pollution in lodash.\nMore text.",
        "affected": [
            {
                "package": {"ecosystem": "npm", "name": "lodash"},
                "ranges": [
                    {"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "4.17.21"}]}
                ],
            }
        ],
        "database_specific": {"severity": "MODERATE"},
    },
    {
        "id": "GHSA-minimist-0000",
        "modified": "2024-02-01T00:00:00Z",
        "affected": [
            {
                "package": {"ecosystem": "npm", "name": "minimist"},
                "ranges": [
                    {"type": "SEMVER", "events": [{"introduced": "0"}, {"last_affected": "1.2.5"}]}
                ],
            }
        ],
    },
    {
        "id": "GO-2024-0001",
        "modified": "2024-02-01T00:00:00Z",
        "aliases": ["CVE-2023-45288"],
        "affected": [
            {
                "package": {"ecosystem": "Go", "name": "golang.org/x/net"},
                "ranges": [
                    {"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "0.23.0"}]}
                ],
            }
        ],
    },
    {
        "id": "DEBIAN-CVE-2024-1000",
        "modified": "2024-02-01T00:00:00Z",
        "upstream": ["CVE-2024-1000"],
        "summary": "openssl: a flaw",
        "affected": [
            {
                "package": {"ecosystem": "Debian:12", "name": "openssl"},
                "ranges": [
                    {
                        "type": "ECOSYSTEM",
                        "events": [{"introduced": "0"}, {"fixed": "3.0.13-1~deb12u1"}],
                    }
                ],
            }
        ],
    },
    {
        "id": "DEBIAN-ZLIB-1",
        "modified": "2024-02-01T00:00:00Z",
        "affected": [
            {
                "package": {"ecosystem": "Debian", "name": "zlib"},
                "ranges": [
                    {
                        "type": "ECOSYSTEM",
                        "events": [{"introduced": "0"}, {"fixed": "1:1.2.13.dfsg-2"}],
                    }
                ],
            }
        ],
    },
    {
        "id": "CVE-2024-2000",
        "modified": "2024-02-01T00:00:00Z",
        "affected": [
            {
                "package": {"ecosystem": "Alpine:v3.19", "name": "busybox"},
                "ranges": [
                    {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.36.1-r16"}]}
                ],
            },
            {
                "package": {"ecosystem": "Alpine:v3.18", "name": "busybox"},
                "ranges": [
                    {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.36.1-r7"}]}
                ],
            },
        ],
        "severity": [
            {
                "type": "CVSS_V4",
                "score": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
            }
        ],
    },
    {
        "id": "GHSA-withdrawn",
        "modified": "2024-02-01T00:00:00Z",
        "withdrawn": "2024-02-02T00:00:00Z",
        "affected": [
            {
                "package": {"ecosystem": "npm", "name": "lodash"},
                "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}]}],
            }
        ],
    },
    {
        "id": "HSEC-2024-0001",
        "modified": "2024-02-01T00:00:00Z",
        "affected": [
            {
                "package": {"ecosystem": "Hackage", "name": "aeson"},
                "ranges": [
                    {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.2"}]}
                ],
                "versions": ["1.0.0"],
            }
        ],
    },
]

TRACKER: dict[str, Any] = {
    "openssl": {
        "CVE-2024-1000": {
            "description": "a flaw in openssl",
            "scope": "remote",
            "releases": {
                "bookworm": {
                    "status": "resolved",
                    "fixed_version": "3.0.13-1~deb12u1",
                    "urgency": "medium",
                    "repositories": {"bookworm": "3.0.13-1~deb12u1"},
                },
                "bullseye": {
                    "status": "resolved",
                    "fixed_version": "1.1.1w-0+deb11u2",
                    "urgency": "high",
                },
                "sid": {"status": "resolved", "fixed_version": "3.1.5-1", "urgency": "medium"},
            },
        },
        "CVE-2024-1001": {"releases": {"bookworm": {"status": "open", "urgency": "low**"}}},
        "CVE-2024-1002": {
            "releases": {"bookworm": {"status": "resolved", "fixed_version": "0", "urgency": "low"}}
        },
    },
    "glibc": {"TEMP-0000000-ABCDEF": {"releases": {"bookworm": {"status": "undetermined"}}}},
}


def osv_directory(root: Path, records: list[dict[str, Any]] = OSV) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for record in records:
        (root / f"{record['id']}.json").write_text(json.dumps(record))
    return root


def osv_zip(path: Path, records: list[dict[str, Any]] = OSV) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for record in records:
            archive.writestr(f"{record['id']}.json", json.dumps(record))
    return path


def tracker_file(path: Path, data: dict[str, Any] = TRACKER) -> Path:
    path.write_text(json.dumps(data))
    return path


def pkg(ecosystem: str, name: str, version: str, source: str | None = None) -> Package:
    return Package(
        ecosystem=ecosystem,
        name=name,
        version=version,
        path="fixture",
        purl=f"pkg:generic/{name}@{version}",
        source_name=source,
    )


INVENTORY = [
    pkg("Debian:12", "libssl3", "3.0.11-1~deb12u2", "openssl"),
    pkg("Debian:12", "zlib1g", "1:1.2.13.dfsg-1", "zlib"),
    pkg("Debian:11", "libssl1.1", "1.1.1n-0+deb11u5", "openssl"),
    pkg("Debian:12", "libssl3-new", "3.0.13-1~deb12u1", "openssl"),
    pkg("Alpine:v3.19", "busybox", "1.36.1-r15"),
    pkg("Alpine:v3.19", "busybox-binsh", "1.36.1-r15", "busybox"),
    pkg("Alpine:v3.19", "busybox-new", "1.36.1-r16", "busybox"),
    pkg("PyPI", "django", "4.2.1"),
    pkg("PyPI", "Django", "4.2.10"),
    pkg("npm", "lodash", "4.17.20"),
    pkg("npm", "minimist", "1.2.5"),
    pkg("npm", "minimist", "1.2.6"),
    pkg("Go", "golang.org/x/net", "v0.22.0"),
    pkg("Hackage", "aeson", "1.0.0"),
    pkg("Hackage", "aeson", "2.1.0"),
]
