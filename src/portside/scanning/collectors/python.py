"""Python distributions: `*.dist-info/METADATA` (wheels, pip), `*.egg-info/PKG-INFO`
and `*.egg-info` files (setuptools, Debian's python3-* packages). Only the header part
of the core-metadata format is read (Name, Version, License-Expression, License,
license classifiers)."""

from __future__ import annotations

from email.parser import HeaderParser
from email.policy import compat32

from portside.scanning.collectors.base import Draft, Found
from portside.scanning.limits import Limits

HEADER_BYTES = 256 * 1024  # the headers come first; the long description is not needed


def licenses(headers: dict[str, list[str]]) -> tuple[str, ...]:
    expression = headers.get("license-expression")
    if expression:
        return (expression[0].strip(),)
    text = (headers.get("license") or [""])[0].strip()
    if text and text != "UNKNOWN" and "\n" not in text and len(text) <= 100:
        return (text,)
    classifiers = [
        c.split("::")[-1].strip()
        for c in headers.get("classifier", [])
        if c.startswith("License ::") and c.count("::") >= 2
    ]
    return tuple(dict.fromkeys(classifiers))


class PythonMetadata:
    pattern = r"(?:.*/)?[^/]+\.dist-info/METADATA|(?:.*/)?[^/]+\.egg-info(?:/PKG-INFO)?"

    def collect(self, path: str, data: bytes, limits: Limits) -> Found:
        message = HeaderParser(policy=compat32).parsestr(
            data[:HEADER_BYTES].decode("utf-8", "replace"), headersonly=True
        )
        headers: dict[str, list[str]] = {}
        for key, value in message.items():
            headers.setdefault(key.lower(), []).append(str(value))
        name = (headers.get("name") or [""])[0].strip()
        version = (headers.get("version") or [""])[0].strip()
        if not name or not version:
            return Found(warnings=(f"{path}: no Name or Version",))
        return Found(
            drafts=(Draft(kind="pypi", name=name, version=version, licenses=licenses(headers)),)
        )
