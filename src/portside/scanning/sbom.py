"""SBOM documents for one image from its `Inventory`: SPDX 2.3 JSON and CycloneDX 1.5
JSON, and the media types to attach them to the image as OCI referrers.

Both describe the image by its manifest digest and repository (an SPDX package /
CycloneDX metadata component of purpose "container", with a pkg:oci package URL and
the digest as a SHA256 checksum) and list every package with its purl, the file that
recorded it and the layer that wrote that file. Output is deterministic: the same
inventory, subject and timestamp give the same bytes (`render`), including the
document namespace and serial number, which are UUIDv5s of those inputs.

Licences are declared only when every identifier in them is on the SPDX licence list
as known here (LICENSE_IDS, the common ones); anything else ("BSD License", Fedora's
"MIT and BSD") is kept as text (SPDX licenseComments, CycloneDX license name) and the
SPDX declaration says NOASSERTION, so the documents stay valid.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from portside.scanning.model import Inventory, Package
from portside.scanning.purl import purl

SPDX_MEDIA_TYPE = "application/spdx+json"
CYCLONEDX_MEDIA_TYPE = "application/vnd.cyclonedx+json"
# artifactType of the referrer manifest that carries each document (as oras and the
# common SBOM attachers use): the document's own media type.
ARTIFACT_TYPES = {"spdx": SPDX_MEDIA_TYPE, "cyclonedx": CYCLONEDX_MEDIA_TYPE}
TOOL = "portside"

LICENSE_IDS = frozenset(
    [
        "0BSD",
        "AFL-2.1",
        "AGPL-3.0-only",
        "AGPL-3.0-or-later",
        "Apache-1.1",
        "Apache-2.0",
        "Artistic-1.0",
        "Artistic-2.0",
        "BSD-1-Clause",
        "BSD-2-Clause",
        "BSD-3-Clause",
        "BSD-4-Clause",
        "BSL-1.0",
        "CC-BY-3.0",
        "CC-BY-4.0",
        "CC-BY-SA-4.0",
        "CC0-1.0",
        "CDDL-1.0",
        "CDDL-1.1",
        "EPL-1.0",
        "EPL-2.0",
        "EUPL-1.2",
        "FTL",
        "GFDL-1.3-only",
        "GFDL-1.3-or-later",
        "GPL-1.0-only",
        "GPL-1.0-or-later",
        "OLDAP-2.8",
        "BSD-4-Clause-UC",
        "Artistic-1.0-Perl",
        "GPL-2.0",
        "GPL-2.0-only",
        "GPL-2.0-or-later",
        "GPL-3.0",
        "GPL-3.0-only",
        "GPL-3.0-or-later",
        "HPND",
        "ICU",
        "IJG",
        "ISC",
        "LGPL-2.0-only",
        "LGPL-2.0-or-later",
        "LGPL-2.1",
        "LGPL-2.1-only",
        "LGPL-2.1-or-later",
        "LGPL-3.0",
        "LGPL-3.0-only",
        "LGPL-3.0-or-later",
        "Libpng",
        "MIT",
        "MIT-0",
        "MPL-1.1",
        "MPL-2.0",
        "MS-PL",
        "NCSA",
        "OFL-1.1",
        "OpenSSL",
        "PHP-3.01",
        "PSF-2.0",
        "Python-2.0",
        "Ruby",
        "Sleepycat",
        "Unicode-DFS-2016",
        "Unlicense",
        "Vim",
        "W3C",
        "WTFPL",
        "X11",
        "Zlib",
        "ZPL-2.1",
        "bzip2-1.0.6",
        "curl",
    ]
)
EXCEPTION_IDS = frozenset(
    ["Classpath-exception-2.0", "GCC-exception-3.1", "LLVM-exception", "OpenSSL-exception"]
)
_TOKEN = re.compile(r"\(|\)|[^\s()]+")


def spdx_expression(text: str) -> str | None:
    """`text` if it is an SPDX licence expression over known identifiers, else None."""
    words = _TOKEN.findall(text)
    if not words or len(text) > 500:
        return None
    after_with = False
    for word in words:
        if word in ("AND", "OR", "(", ")"):
            continue
        if word == "WITH":
            after_with = True
            continue
        known = EXCEPTION_IDS if after_with else LICENSE_IDS
        if word.removesuffix("+") not in known:
            return None
        after_with = False
    return text


@dataclass(frozen=True, slots=True)
class Subject:
    """The image an SBOM describes."""

    repository: str  # "acme/app"
    digest: str  # the manifest's digest, "sha256:..."
    registry: str | None = None  # "registry.example.com:5000", for the pkg:oci URL

    def purl(self) -> str:
        name = self.repository.rsplit("/", 1)[-1].lower()
        where = f"{self.registry}/{self.repository}" if self.registry else self.repository
        return purl("oci", name, self.digest, qualifiers={"repository_url": where})


def _package_id(package: Package) -> str:
    key = "\0".join((package.purl, package.path, package.layer or ""))
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _uuid(kind: str, inventory: Inventory, subject: Subject, created: datetime) -> uuid.UUID:
    content = hashlib.sha256()
    for package in _sorted(inventory):
        content.update(f"{package.purl}\0{package.path}\0{package.layer}\n".encode())
    name = f"{kind}|{subject.registry}|{subject.repository}|{subject.digest}|{_time(created)}"
    return uuid.uuid5(uuid.NAMESPACE_URL, f"{name}|{content.hexdigest()}")


def _time(created: datetime) -> str:
    return created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sorted(inventory: Inventory) -> list[Package]:
    return sorted(inventory.packages, key=lambda p: (p.ecosystem, p.name, p.version, p.path))


def spdx(
    inventory: Inventory, subject: Subject, created: datetime, tool_version: str
) -> dict[str, Any]:
    """An SPDX 2.3 document (as JSON-ready data) of the image's packages."""
    doc_uuid = _uuid("spdx", inventory, subject, created)
    image_id = "SPDXRef-Image"
    algorithm, _, hex_digest = subject.digest.partition(":")
    image: dict[str, Any] = {
        "SPDXID": image_id,
        "name": subject.repository,
        "versionInfo": subject.digest,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": False,
        "primaryPackagePurpose": "CONTAINER",
        "externalRefs": [_purl_ref(subject.purl())],
    }
    if algorithm.upper() in ("SHA256", "SHA512"):
        image["checksums"] = [{"algorithm": algorithm.upper(), "checksumValue": hex_digest}]
    packages = [image]
    relationships = [
        {
            "spdxElementId": "SPDXRef-DOCUMENT",
            "relationshipType": "DESCRIBES",
            "relatedSpdxElement": image_id,
        },
    ]
    if inventory.os_id:
        packages.append(
            {
                "SPDXID": "SPDXRef-OperatingSystem",
                "name": inventory.os_id,
                "versionInfo": inventory.os_version or "NOASSERTION",
                "downloadLocation": "NOASSERTION",
                "filesAnalyzed": False,
                "primaryPackagePurpose": "OPERATING-SYSTEM",
                "description": inventory.os_pretty_name or inventory.os_id,
            }
        )
        relationships.append(_contains(image_id, "SPDXRef-OperatingSystem"))
    for package in _sorted(inventory):
        spdx_id = f"SPDXRef-Package-{_package_id(package)}"
        entry: dict[str, Any] = {
            "SPDXID": spdx_id,
            "name": package.name,
            "versionInfo": package.version,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": False,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "externalRefs": [_purl_ref(package.purl)],
            "sourceInfo": f"{package.ecosystem} package recorded in /{package.path}"
            + (f" (layer {package.layer})" if package.layer else ""),
        }
        text = " AND ".join(package.licenses)
        if text:
            expression = spdx_expression(text)
            if expression:
                entry["licenseDeclared"] = expression
            else:
                entry["licenseComments"] = f"as recorded: {text}"
        packages.append(entry)
        relationships.append(_contains(image_id, spdx_id))
    location = f"https://{subject.registry}/spdx" if subject.registry else None
    namespace = (
        f"{location}/{subject.repository}@{subject.digest}/{doc_uuid}"
        if location
        else f"urn:uuid:{doc_uuid}"
    )
    return {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"{subject.repository}@{subject.digest}",
        "documentNamespace": namespace,
        "creationInfo": {
            "created": _time(created),
            "creators": [f"Tool: {TOOL}-{tool_version}"],
        },
        "packages": packages,
        "relationships": relationships,
    }


def _purl_ref(locator: str) -> dict[str, str]:
    return {
        "referenceCategory": "PACKAGE-MANAGER",
        "referenceType": "purl",
        "referenceLocator": locator,
    }


def _contains(parent: str, child: str) -> dict[str, str]:
    return {"spdxElementId": parent, "relationshipType": "CONTAINS", "relatedSpdxElement": child}


def _licenses(package: Package) -> list[dict[str, Any]]:
    text = " AND ".join(package.licenses)
    if not text:
        return []
    expression = spdx_expression(text)
    if expression is None:
        return [{"license": {"name": text}}]
    if expression in LICENSE_IDS:
        return [{"license": {"id": expression}}]
    return [{"expression": expression}]


def cyclonedx(
    inventory: Inventory, subject: Subject, created: datetime, tool_version: str
) -> dict[str, Any]:
    """A CycloneDX 1.5 BOM (as JSON-ready data) of the image's packages."""
    image_ref = subject.purl()
    algorithm, _, hex_digest = subject.digest.partition(":")
    image: dict[str, Any] = {
        "type": "container",
        "bom-ref": image_ref,
        "name": subject.repository,
        "version": subject.digest,
        "purl": image_ref,
    }
    if algorithm == "sha256":
        image["hashes"] = [{"alg": "SHA-256", "content": hex_digest}]
    components: list[dict[str, Any]] = []
    if inventory.os_id:
        components.append(
            {
                "type": "operating-system",
                "bom-ref": f"os:{inventory.os_id}@{inventory.os_version or ''}",
                "name": inventory.os_id,
                "version": inventory.os_version or "",
                "description": inventory.os_pretty_name or inventory.os_id,
            }
        )
    purls = [p.purl for p in inventory.packages]
    for package in _sorted(inventory):
        ref = (
            package.purl
            if purls.count(package.purl) == 1
            else (f"{package.purl}#{_package_id(package)}")
        )
        properties = [
            {"name": "portside:package:ecosystem", "value": package.ecosystem},
            {"name": "portside:package:path", "value": f"/{package.path}"},
        ]
        if package.layer:
            properties.append({"name": "portside:package:layer", "value": package.layer})
        if package.source_name:
            properties.append({"name": "portside:package:source", "value": package.source_name})
        if package.source_version:
            properties.append(
                {"name": "portside:package:source-version", "value": package.source_version}
            )
        component: dict[str, Any] = {
            "type": "library",
            "bom-ref": ref,
            "name": package.name,
            "version": package.version,
            "purl": package.purl,
            "properties": properties,
        }
        licenses = _licenses(package)
        if licenses:
            component["licenses"] = licenses
        components.append(component)
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": f"urn:uuid:{_uuid('cyclonedx', inventory, subject, created)}",
        "version": 1,
        "metadata": {
            "timestamp": _time(created),
            "tools": {
                "components": [{"type": "application", "name": TOOL, "version": tool_version}]
            },
            "component": image,
        },
        "components": components,
        "dependencies": [
            {"ref": image_ref, "dependsOn": [c["bom-ref"] for c in components]},
        ],
    }


def render(document: dict[str, Any]) -> bytes:
    """The document's bytes: stable key order, UTF-8, no insignificant whitespace."""
    return json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()
