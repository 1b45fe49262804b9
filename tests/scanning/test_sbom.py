"""SBOM documents: checked against the required parts of the SPDX 2.3 and CycloneDX
1.5 JSON schemas (written here from the specifications: required fields, SPDXID and
serial number formats, enumerations), plus the cross-references the schemas cannot
express (every relationship and dependency names an element that exists)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import jsonschema
import pytest

from portside.scanning.inventory import inventory
from portside.scanning.model import Inventory, Package
from portside.scanning.sbom import (
    ARTIFACT_TYPES,
    CYCLONEDX_MEDIA_TYPE,
    SPDX_MEDIA_TYPE,
    Subject,
    cyclonedx,
    render,
    spdx,
    spdx_expression,
)
from tests.scanning.build import file, image

SPDX_ID = r"^SPDXRef-[A-Za-z0-9.\-]+$"
TIME = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"
SPDX_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [
        "spdxVersion",
        "dataLicense",
        "SPDXID",
        "name",
        "documentNamespace",
        "creationInfo",
    ],
    "properties": {
        "spdxVersion": {"const": "SPDX-2.3"},
        "dataLicense": {"const": "CC0-1.0"},
        "SPDXID": {"const": "SPDXRef-DOCUMENT"},
        "name": {"type": "string", "minLength": 1},
        "documentNamespace": {"type": "string", "pattern": r"^[a-z][a-z0-9+.\-]*:[^#\s]+$"},
        "creationInfo": {
            "type": "object",
            "required": ["created", "creators"],
            "properties": {
                "created": {"type": "string", "pattern": TIME},
                "creators": {
                    "type": "array",
                    "minItems": 1,
                    "items": {"type": "string", "pattern": "^(Tool|Organization|Person): .+"},
                },
            },
        },
        "packages": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["SPDXID", "name", "downloadLocation"],
                "properties": {
                    "SPDXID": {"type": "string", "pattern": SPDX_ID},
                    "name": {"type": "string", "minLength": 1},
                    "versionInfo": {"type": "string"},
                    "downloadLocation": {"type": "string"},
                    "filesAnalyzed": {"const": False},
                    "primaryPackagePurpose": {
                        "enum": [
                            "APPLICATION",
                            "FRAMEWORK",
                            "LIBRARY",
                            "CONTAINER",
                            "OPERATING-SYSTEM",
                            "DEVICE",
                            "FIRMWARE",
                            "SOURCE",
                            "ARCHIVE",
                            "FILE",
                            "INSTALL",
                            "OTHER",
                        ]
                    },
                    "checksums": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["algorithm", "checksumValue"],
                            "properties": {"algorithm": {"enum": ["SHA256", "SHA512"]}},
                        },
                    },
                    "externalRefs": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["referenceCategory", "referenceType", "referenceLocator"],
                            "properties": {
                                "referenceCategory": {
                                    "enum": [
                                        "SECURITY",
                                        "PACKAGE-MANAGER",
                                        "PERSISTENT-ID",
                                        "OTHER",
                                    ]
                                },
                                "referenceLocator": {
                                    "type": "string",
                                    "pattern": r"^pkg:[a-z]+/\S+$",
                                },
                            },
                        },
                    },
                },
            },
        },
        "relationships": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["spdxElementId", "relationshipType", "relatedSpdxElement"],
                "properties": {"relationshipType": {"enum": ["DESCRIBES", "CONTAINS"]}},
            },
        },
    },
}
LICENSE_CHOICE: dict[str, Any] = {
    "oneOf": [
        {
            "type": "object",
            "required": ["license"],
            "additionalProperties": False,
            "properties": {
                "license": {
                    "type": "object",
                    "oneOf": [{"required": ["id"]}, {"required": ["name"]}],
                }
            },
        },
        {
            "type": "object",
            "required": ["expression"],
            "additionalProperties": False,
            "properties": {"expression": {"type": "string"}},
        },
    ]
}
COMPONENT: dict[str, Any] = {
    "type": "object",
    "required": ["type", "name"],
    "properties": {
        "type": {
            "enum": [
                "application",
                "framework",
                "library",
                "container",
                "platform",
                "operating-system",
                "device",
                "device-driver",
                "firmware",
                "file",
                "machine-learning-model",
                "data",
            ]
        },
        "name": {"type": "string"},
        "bom-ref": {"type": "string", "minLength": 1},
        "purl": {"type": "string", "pattern": r"^pkg:[a-z]+/\S+$"},
        "licenses": {"type": "array", "items": LICENSE_CHOICE},
        "hashes": {"type": "array", "items": {"type": "object", "required": ["alg", "content"]}},
        "properties": {
            "type": "array",
            "items": {"type": "object", "required": ["name", "value"]},
        },
    },
}
CYCLONEDX_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["bomFormat", "specVersion"],
    "properties": {
        "bomFormat": {"const": "CycloneDX"},
        "specVersion": {"const": "1.5"},
        "serialNumber": {
            "type": "string",
            "pattern": r"^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}"
            r"-[0-9a-f]{12}$",
        },
        "version": {"type": "integer", "minimum": 1},
        "metadata": {
            "type": "object",
            "properties": {
                "timestamp": {"type": "string", "pattern": TIME},
                "component": COMPONENT,
                "tools": {
                    "type": "object",
                    "properties": {"components": {"type": "array", "items": COMPONENT}},
                },
            },
        },
        "components": {"type": "array", "items": COMPONENT},
        "dependencies": {
            "type": "array",
            "items": {"type": "object", "required": ["ref"]},
        },
    },
}

SUBJECT = Subject("acme/app", "sha256:" + "12" * 32, registry="registry.example:5000")
WHEN = datetime(2026, 12, 7, 12, 0, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def found() -> Inventory:
    status = (
        "Package: libssl3\nStatus: install ok installed\nVersion: 3.0.11-1~deb12u2\n"
        "Architecture: amd64\nSource: openssl\n"
    )
    metadata = "Name: requests\nVersion: 2.31.0\nLicense: Apache-2.0\n"
    return inventory(
        image(
            [
                file(
                    "etc/os-release",
                    'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n',
                ),
                file("var/lib/dpkg/status", status),
                file("usr/lib/python3/dist-packages/requests-2.31.0.dist-info/METADATA", metadata),
                file("opt/a/x.dist-info/METADATA", "Name: x\nVersion: 1\nLicense: BSD License\n"),
                file(
                    "opt/b/x.dist-info/METADATA",
                    "Name: x\nVersion: 1\nLicense: MIT OR Apache-2.0\n",
                ),
            ]
        )
    )


def test_spdx_document(found: Inventory) -> None:
    document = json.loads(render(spdx(found, SUBJECT, WHEN, "0.1.0")))
    jsonschema.validate(document, SPDX_SCHEMA)
    ids = [p["SPDXID"] for p in document["packages"]]
    assert len(ids) == len(set(ids)) == len(found.packages) + 2  # + the image and the OS
    for relationship in document["relationships"]:
        assert relationship["spdxElementId"] in [*ids, "SPDXRef-DOCUMENT"]
        assert relationship["relatedSpdxElement"] in ids
    image_package = document["packages"][0]
    assert image_package["primaryPackagePurpose"] == "CONTAINER"
    assert image_package["checksums"] == [{"algorithm": "SHA256", "checksumValue": "12" * 32}]
    assert image_package["externalRefs"][0]["referenceLocator"] == (
        "pkg:oci/app@sha256:" + "12" * 32 + "?repository_url=registry.example:5000/acme/app"
    )
    assert document["documentNamespace"].startswith(
        "https://registry.example:5000/spdx/acme/app@sha256:"
    )
    assert document["creationInfo"]["created"] == "2026-12-07T12:00:00Z"
    by_name = {p["name"]: p for p in document["packages"]}
    assert by_name["requests"]["licenseDeclared"] == "Apache-2.0"
    assert by_name["libssl3"]["licenseDeclared"] == "NOASSERTION"
    declared = sorted(p.get("licenseDeclared") for p in document["packages"] if p["name"] == "x")
    assert declared == ["MIT OR Apache-2.0", "NOASSERTION"]
    assert any(p.get("licenseComments") == "as recorded: BSD License" for p in document["packages"])


def test_cyclonedx_document(found: Inventory) -> None:
    document = json.loads(render(cyclonedx(found, SUBJECT, WHEN, "0.1.0")))
    jsonschema.validate(document, CYCLONEDX_SCHEMA)
    refs = [c["bom-ref"] for c in document["components"]]
    assert len(refs) == len(set(refs)) == len(found.packages) + 1
    (dependency,) = document["dependencies"]
    assert dependency["ref"] == document["metadata"]["component"]["bom-ref"]
    assert sorted(dependency["dependsOn"]) == sorted(refs)
    by_name = {c["name"]: c for c in document["components"]}
    assert by_name["requests"]["licenses"] == [{"license": {"id": "Apache-2.0"}}]
    assert by_name["requests"]["purl"] == "pkg:pypi/requests@2.31.0"
    assert by_name["debian"]["type"] == "operating-system"
    assert document["metadata"]["component"]["type"] == "container"
    licenses = sorted(
        json.dumps(c.get("licenses")) for c in document["components"] if c["name"] == "x"
    )
    assert licenses == [
        '[{"expression": "MIT OR Apache-2.0"}]',
        '[{"license": {"name": "BSD License"}}]',
    ]


def test_documents_are_deterministic(found: Inventory) -> None:
    for build in (spdx, cyclonedx):
        first = render(build(found, SUBJECT, WHEN, "0.1.0"))
        reordered = Inventory(
            packages=tuple(reversed(found.packages)),
            os_id=found.os_id,
            os_version=found.os_version,
            os_pretty_name=found.os_pretty_name,
        )
        same_time_elsewhere = WHEN.astimezone(timezone(timedelta(hours=5)))
        assert render(build(reordered, SUBJECT, same_time_elsewhere, "0.1.0")) == first
        later = render(build(found, SUBJECT, WHEN + timedelta(seconds=1), "0.1.0"))
        assert later != first
    one = cyclonedx(found, SUBJECT, WHEN, "0.1.0")["serialNumber"]
    other = Subject("acme/app", "sha256:" + "34" * 32)
    assert cyclonedx(found, other, WHEN, "0.1.0")["serialNumber"] != one


def test_an_empty_inventory_is_a_valid_document() -> None:
    empty = Inventory(packages=())
    subject = Subject("library/scratch", "sha256:" + "00" * 32)
    document = spdx(empty, subject, WHEN, "0.1.0")
    jsonschema.validate(document, SPDX_SCHEMA)
    assert document["documentNamespace"].startswith("urn:uuid:")
    jsonschema.validate(cyclonedx(empty, subject, WHEN, "0.1.0"), CYCLONEDX_SCHEMA)


def test_a_package_found_twice_gets_distinct_ids() -> None:
    package = Package("PyPI", "x", "1", "a/METADATA", "pkg:pypi/x@1")
    twice = Inventory(packages=(package, Package("PyPI", "x", "1", "b/METADATA", "pkg:pypi/x@1")))
    refs = [c["bom-ref"] for c in cyclonedx(twice, SUBJECT, WHEN, "0")["components"]]
    assert len(set(refs)) == 2


def test_media_types() -> None:
    assert SPDX_MEDIA_TYPE == "application/spdx+json"
    assert CYCLONEDX_MEDIA_TYPE == "application/vnd.cyclonedx+json"
    assert ARTIFACT_TYPES == {"spdx": SPDX_MEDIA_TYPE, "cyclonedx": CYCLONEDX_MEDIA_TYPE}


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("MIT", True),
        ("GPL-2.0-or-later WITH Classpath-exception-2.0", True),
        ("(MIT OR Apache-2.0) AND BSD-3-Clause", True),
        ("GPL-2.0+", True),
        ("BSD License", False),
        ("MIT and BSD", False),
        ("Custom-1.0", False),
        ("MIT WITH MIT", False),
        ("", False),
    ],
)
def test_spdx_expressions(text: str, valid: bool) -> None:
    assert (spdx_expression(text) is not None) is valid
