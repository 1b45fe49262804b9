"""A Harbor scanner adapter (Pluggable Scanner API v1.1) written for the tests: it stands
in for Trivy's adapter (harbor-scanner-trivy), which cannot run here (no Trivy binary,
no vulnerability database download). It is a real HTTP server on a loopback port that
does what an adapter does with a scan request: it pulls the artifact's manifest and
config from the registry URL it was given, with the Authorization it was given (so a
scan succeeds only if the token Portside minted works), and checks that the same token
cannot push. Its report lists the findings the test configured; the first report
request answers 302 with Refresh-After, as an adapter does while it scans."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

REPORT = "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.1"


@dataclass
class Adapter:
    port: int = 0
    api_key: str = "adapter-key"
    vulnerabilities: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)  # scan requests received
    pulled: list[dict[str, Any]] = field(default_factory=list)  # what each pull found
    polls: dict[str, int] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pull(self, request: dict[str, Any]) -> dict[str, Any]:
        registry = request["registry"]["url"]
        auth = {"Authorization": request["registry"]["authorization"]}
        artifact = request["artifact"]
        repo, digest = artifact["repository"], artifact["digest"]
        with httpx.Client(base_url=registry, headers=auth, timeout=30) as http:
            manifest = http.get(
                f"/v2/{repo}/manifests/{digest}", headers={"Accept": artifact["mime_type"]}
            )
            result: dict[str, Any] = {"manifest_status": manifest.status_code}
            if manifest.status_code == 200:
                config = manifest.json()["config"]["digest"]
                blob = http.get(f"/v2/{repo}/blobs/{config}")
                result["config_status"] = blob.status_code
                result["config"] = blob.content
            else:
                result["body"] = manifest.text
            result["push_status"] = http.post(f"/v2/{repo}/blobs/uploads/").status_code
        return result


def _handler(adapter: Adapter) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(
            self, status: int, body: Any = None, headers: dict[str, str] | None = None
        ) -> None:
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _authorised(self) -> bool:
            if self.headers.get("X-ScannerAdapter-API-Key") != adapter.api_key:
                self._send(401, {"error": {"message": "wrong API key"}})
                return False
            return True

        def do_GET(self) -> None:
            if not self._authorised():
                return
            if self.path == "/api/v1/metadata":
                self._send(
                    200,
                    {
                        "scanner": {
                            "name": "Trivy",
                            "vendor": "Aqua Security",
                            "version": "0.50.1",
                        },
                        "capabilities": [
                            {
                                "consumes_mime_types": [
                                    "application/vnd.oci.image.manifest.v1+json",
                                    "application/vnd.docker.distribution.manifest.v2+json",
                                ],
                                "produces_mime_types": [REPORT],
                            }
                        ],
                    },
                )
                return
            parts = self.path.split("/")  # /api/v1/scan/<id>/report
            if len(parts) == 6 and parts[3] == "scan" and parts[5] == "report":
                scan_id = parts[4]
                if scan_id not in adapter.polls:
                    self._send(404, {"error": {"message": "no such scan"}})
                    return
                adapter.polls[scan_id] += 1
                if adapter.polls[scan_id] == 1:
                    self._send(302, None, {"Refresh-After": "1", "Location": self.path})
                    return
                request = adapter.requests[int(scan_id.split("-")[0])]
                self._send(
                    200,
                    {
                        "generated_at": "2026-12-07T15:00:00Z",
                        "artifact": request["artifact"],
                        "scanner": {
                            "name": "Trivy",
                            "vendor": "Aqua Security",
                            "version": "0.50.1",
                        },
                        "severity": "High",
                        "vulnerabilities": adapter.vulnerabilities,
                    },
                    {"Content-Type": REPORT},
                )
                return
            self._send(404, {"error": {"message": "not found"}})

        def do_POST(self) -> None:
            if not self._authorised():
                return
            length = int(self.headers.get("Content-Length") or 0)
            request = json.loads(self.rfile.read(length))
            if self.path != "/api/v1/scan" or not self.headers.get("Content-Type", "").startswith(
                "application/vnd.scanner.adapter.scan.request+json"
            ):
                self._send(400, {"error": {"message": "not a scan request"}})
                return
            number = len(adapter.requests)
            adapter.requests.append(request)
            adapter.pulled.append(adapter.pull(request))
            scan_id = f"{number}-{uuid.uuid4()}"
            adapter.polls[scan_id] = 0
            self._send(202, {"id": scan_id})

    return Handler


@contextmanager
def running_adapter() -> Iterator[Adapter]:
    adapter = Adapter()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(adapter))
    adapter.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield adapter
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
