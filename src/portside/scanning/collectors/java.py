"""Java libraries: the Maven coordinates a jar (or war/ear) records in
META-INF/maven/<group>/<artifact>/pom.properties, including jars nested inside it
(Spring Boot's BOOT-INF/lib, WEB-INF/lib) up to `max_archive_depth`.

A jar is a zip read in memory (at most `max_file_bytes`): at most
`max_archive_members` members are looked at, a pom.properties is read up to 64 KiB,
and a nested jar only while the bytes read from nested jars stay under
`max_file_bytes`, so a zip bomb costs bounded memory and time. A broken zip is a
warning, not a failed scan.
"""

from __future__ import annotations

import io
import re
import zipfile

from portside.scanning.collectors.base import Draft, Found
from portside.scanning.limits import Limits

POM = re.compile(r"META-INF/maven/[^/]+/[^/]+/pom\.properties")
NESTED = re.compile(r".+\.(?:jar|war)")
PROPERTIES_BYTES = 64 * 1024


def _properties(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


def _read(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes | None:
    with archive.open(info) as member:
        data = member.read(limit + 1)
    return data if len(data) <= limit else None


class _Budget:
    def __init__(self, limits: Limits) -> None:
        self.members = limits.max_archive_members
        self.nested_bytes = limits.max_file_bytes


def _scan(data: bytes, depth: int, limits: Limits, budget: _Budget, out: list[Draft]) -> None:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            budget.members -= 1
            if budget.members < 0:
                return
            if POM.fullmatch(info.filename) and info.file_size <= PROPERTIES_BYTES:
                raw = _read(archive, info, PROPERTIES_BYTES)
                props = _properties(raw.decode("utf-8", "replace")) if raw else {}
                group, artifact = props.get("groupId"), props.get("artifactId")
                version = props.get("version")
                if group and artifact and version:
                    out.append(Draft(kind="maven", namespace=group, name=artifact, version=version))
            elif (
                depth < limits.max_archive_depth
                and NESTED.fullmatch(info.filename)
                and info.file_size <= budget.nested_bytes
            ):
                nested = _read(archive, info, budget.nested_bytes)
                if nested is not None:
                    budget.nested_bytes -= len(nested)
                    try:
                        _scan(nested, depth + 1, limits, budget, out)
                    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError):
                        continue


class JavaArchive:
    pattern = r"(?:.*/)?[^/]+\.(?:jar|war|ear)"

    def collect(self, path: str, data: bytes, limits: Limits) -> Found:
        drafts: list[Draft] = []
        try:
            _scan(data, 1, limits, _Budget(limits), drafts)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as e:
            return Found(warnings=(f"{path}: not a readable jar ({e})",))
        return Found(drafts=tuple(dict.fromkeys(drafts)))
