"""A scanner reached through Harbor's Pluggable Scanner API (v1.0/v1.1): the API Trivy's,
Clair's and other vendors' "harbor-scanner-*" adapters implement.

    GET  {url}/api/v1/metadata                  who the scanner is, what it consumes
    POST {url}/api/v1/scan                      registry URL + Authorization, artifact
         -> 202 {"id": ...}
    GET  {url}/api/v1/scan/{id}/report          Accept: the Harbor vulnerability report
         -> 302 (not ready; Refresh-After / Retry-After seconds), 200 report, 404/500

The adapter pulls the artifact from this registry itself, with the `Authorization` value
we give it: a bearer token minted for this scan only (pull on the one repository,
short-lived, subject `scanner:<scan id>`, which the vulnerability pull policy exempts as
Harbor exempts its scanners). Every request goes through portside.egress (the adapter's
address is checked against `scanning.allow_private_scanners`/`allowed_networks`, redirects
are checked hop by hop).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from portside.egress import EgressPolicy, Refused, Sent, send
from portside.scanning.model import Finding, Package, Severity
from portside.scans.scanner import ScanFailed, ScannerInfo, ScanReport, ScanTarget

SCAN_REQUEST = "application/vnd.scanner.adapter.scan.request+json; version=1.0"
REPORT_V11 = "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.1"
REPORT_V10 = "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0"
METADATA = "application/vnd.scanner.adapter.metadata+json; version=1.0"
AUTH_SCHEMES = ("", "Basic", "Bearer", "X-ScannerAdapter-API-Key")
_DEFAULT_WAIT = 5.0
_LONGEST_WAIT = 60.0


@dataclass(frozen=True, slots=True)
class Registration:
    """A registered adapter (portside.scans.registry)."""

    name: str
    url: str
    auth: str = ""
    access_credential: str | None = None


def _auth_headers(registration: Registration) -> dict[str, str]:
    credential = registration.access_credential or ""
    if registration.auth == "Basic":
        encoded = credential
        if ":" in credential:  # given as user:password
            encoded = base64.b64encode(credential.encode()).decode()
        return {"Authorization": f"Basic {encoded}"}
    if registration.auth == "Bearer":
        return {"Authorization": f"Bearer {credential}"}
    if registration.auth == "X-ScannerAdapter-API-Key":
        return {"X-ScannerAdapter-API-Key": credential}
    return {}


def _error_text(sent: Sent) -> str:
    """The adapter's error message (its ErrorResponse), else the start of its body."""
    try:
        message = json.loads(sent.body)["error"]["message"]
        if isinstance(message, str) and message:
            return message[:500]
    except (ValueError, KeyError, TypeError):
        pass
    return sent.body[:200].decode("utf-8", "replace") or "(no body)"


def _wait_of(sent: Sent) -> float:
    for name in ("refresh-after", "retry-after"):
        value = sent.headers.get(name)
        if value is not None:
            try:
                return min(max(float(value), 0.5), _LONGEST_WAIT)
            except ValueError:
                continue
    return _DEFAULT_WAIT


def _severity(value: Any) -> Severity:
    if not isinstance(value, str):
        return Severity.UNKNOWN
    try:
        return Severity.parse(value)
    except ValueError:
        return Severity.UNKNOWN


def _cvss(item: dict[str, Any]) -> tuple[float | None, str | None]:
    """CVSS v3 score and vector: v1.1's `preferred_cvss`, else Trivy's vendor attributes
    (`CVSS.<source>.V3Score`), else the report's `cve3_score`/`cvss3_vector`."""
    preferred = item.get("preferred_cvss")
    if isinstance(preferred, dict) and preferred.get("score_v3") is not None:
        return _float(preferred.get("score_v3")), _str(preferred.get("vector_v3"))
    vendor = item.get("vendor_attributes")
    if isinstance(vendor, dict) and isinstance(vendor.get("CVSS"), dict):
        for source in vendor["CVSS"].values():
            if isinstance(source, dict) and source.get("V3Score") is not None:
                return _float(source.get("V3Score")), _str(source.get("V3Vector"))
    return _float(item.get("cve3_score")), _str(item.get("cvss3_vector"))


def _float(value: Any) -> float | None:
    try:
        return None if value is None or isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        return None


def _str(value: Any) -> str | None:
    return value[:255] if isinstance(value, str) and value else None


def parse_report(body: bytes, target: ScanTarget) -> tuple[ScannerInfo | None, list[Finding]]:
    """The findings of a Harbor vulnerability report; ScanFailed if it is not one."""
    try:
        report = json.loads(body)
    except ValueError:
        raise ScanFailed("the scanner's report is not JSON") from None
    if not isinstance(report, dict):
        raise ScanFailed("the scanner's report is not a JSON object")
    items = report.get("vulnerabilities") or []
    if not isinstance(items, list):
        raise ScanFailed("the scanner's report has no list of vulnerabilities")
    found = report.get("scanner")
    info = None
    if isinstance(found, dict):
        info = ScannerInfo(
            str(found.get("name") or ""),
            str(found.get("vendor") or ""),
            str(found.get("version") or ""),
        )
    findings = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise ScanFailed("the scanner's report has a vulnerability without an id")
        name = str(item.get("package") or "")
        version = str(item.get("version") or "")
        score, vector = _cvss(item)
        found_links = item.get("links")
        links: list[Any] = found_links if isinstance(found_links, list) else []
        package = Package(
            ecosystem=str(item.get("package_type") or ""),
            name=name,
            version=version,
            path="",
            purl="",
            layer=_layer_digest(item.get("layer")),
        )
        findings.append(
            Finding(
                vulnerability_id=item["id"][:128],
                package=package,
                severity=_severity(item.get("severity")),
                fixed_version=_str(item.get("fix_version")),
                summary=str(item.get("description") or "")[:4000],
                cvss_score=score,
                cvss_vector=vector,
                links=tuple(str(link) for link in links if isinstance(link, str))[:20],
            )
        )
    return info, findings


def _layer_digest(value: Any) -> str | None:
    if isinstance(value, dict) and isinstance(value.get("digest"), str):
        return str(value["digest"])
    return None


class HarborAdapterScanner:
    """Scans by asking a registered adapter (see the module docstring)."""

    def __init__(
        self,
        registration: Registration,
        egress: EgressPolicy,
        *,
        registry_url: str,
        token_for: Callable[[ScanTarget], str],
        max_wait_seconds: float,
        report_max_bytes: int,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.name = registration.name
        self.registration = registration
        self.egress = egress
        self.registry_url = registry_url.rstrip("/")
        self.token_for = token_for
        self.max_wait_seconds = max_wait_seconds
        self.report_max_bytes = report_max_bytes
        self.sleep = sleep

    def _url(self, path: str) -> str:
        return self.registration.url.rstrip("/") + "/api/v1" + path

    def _send(self, method: str, path: str, *, body: bytes = b"", headers: dict[str, str]) -> Sent:
        try:
            return send(
                self.egress,
                method,
                self._url(path),
                content=body,
                headers={**_auth_headers(self.registration), **headers},
                max_body=self.report_max_bytes + 1,
                follow=False,  # a 302 from the report endpoint means "not ready yet"
            )
        except Refused as error:
            raise ScanFailed(f"scanner {self.name!r} may not be contacted: {error}") from None
        except httpx.HTTPError as error:
            raise ScanFailed(
                f"scanner {self.name!r} did not answer: {type(error).__name__}: {error}"
            ) from None

    def info(self) -> ScannerInfo:
        sent = self._send("GET", "/metadata", headers={"Accept": METADATA})
        if sent.status != 200:
            raise ScanFailed(
                f"scanner {self.name!r} metadata: HTTP {sent.status}: {_error_text(sent)}"
            )
        try:
            scanner = json.loads(sent.body)["scanner"]
            return ScannerInfo(
                str(scanner.get("name") or ""),
                str(scanner.get("vendor") or ""),
                str(scanner.get("version") or ""),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ScanFailed(f"scanner {self.name!r} metadata is not Harbor's format") from None

    def scan(self, target: ScanTarget, check: Callable[[], None]) -> ScanReport:
        info = self.info()
        artifact: dict[str, str] = {
            "repository": target.repository,
            "digest": target.digest,
            "mime_type": target.media_type,
        }
        if target.tag:
            artifact["tag"] = target.tag
        request = {
            "registry": {
                "url": self.registry_url,
                "authorization": f"Bearer {self.token_for(target)}",
            },
            "artifact": artifact,
        }
        sent = self._send(
            "POST",
            "/scan",
            body=json.dumps(request).encode(),
            headers={"Content-Type": SCAN_REQUEST, "Accept": "application/json"},
        )
        if sent.status not in (200, 201, 202):
            raise ScanFailed(
                f"scanner {self.name!r} refused the scan: HTTP {sent.status}: {_error_text(sent)}"
            )
        try:
            request_id = json.loads(sent.body)["id"]
        except (ValueError, KeyError, TypeError):
            raise ScanFailed(f"scanner {self.name!r} accepted the scan without an id") from None
        if not isinstance(request_id, str) or not request_id or "/" in request_id:
            raise ScanFailed(f"scanner {self.name!r} returned an unusable scan id")
        deadline = time.monotonic() + self.max_wait_seconds
        path = f"/scan/{quote(request_id, safe='')}/report"
        while True:
            check()
            report = self._send("GET", path, headers={"Accept": f"{REPORT_V11}, {REPORT_V10}"})
            if report.status == 200:
                break
            if report.status != 302:
                raise ScanFailed(
                    f"scanner {self.name!r} report: HTTP {report.status}: {_error_text(report)}"
                )
            wait = _wait_of(report)
            if time.monotonic() + wait > deadline:
                raise ScanFailed(
                    f"scanner {self.name!r} gave no report within "
                    f"{self.max_wait_seconds:g} s (scanning.max_wait_seconds)"
                )
            self.sleep(wait)
        if len(report.body) > self.report_max_bytes:
            raise ScanFailed(
                f"scanner {self.name!r} report is larger than {self.report_max_bytes} bytes "
                "(scanning.report_max_bytes)"
            )
        reported, findings = parse_report(report.body, target)
        return ScanReport(tuple(findings), reported or info)
