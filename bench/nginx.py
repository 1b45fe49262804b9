"""nginx in front of Portside replicas, from the documented sample docs/deploy/nginx.conf.

Shared by the scale benchmark and tests/cluster, so both run the configuration the
deployment docs show: only the upstream `server` lines and `listen 80;` are replaced, and
the file is wrapped in a foreground `http {}` with every path under a private directory.
"""

from __future__ import annotations

import shutil
from pathlib import Path

SAMPLE = Path(__file__).resolve().parent.parent / "docs" / "deploy" / "nginx.conf"


def binary() -> str | None:
    """Debian's nginx (in /usr/sbin, often not on a user's PATH), or None."""
    found = shutil.which("nginx")
    if found:
        return found
    return "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None


def render(root: Path, port: int, upstreams: list[str]) -> str:
    """A complete nginx.conf: the sample with these upstreams, listening on
    127.0.0.1:`port`, running in the foreground with its files under `root`."""
    servers = "".join(f"    server {u} max_fails=0;\n" for u in upstreams)
    kept: list[str] = []
    for line in SAMPLE.read_text().splitlines(keepends=True):
        stripped = line.strip()
        if stripped.startswith("server 10.0.0."):
            if servers:
                kept.append(servers)
                servers = ""
            continue
        if stripped == "listen 80;":
            kept.append(line.replace("listen 80;", f"listen 127.0.0.1:{port};"))
            continue
        kept.append(line)
    return (
        "daemon off;\nworker_processes 1;\n"
        f"pid {root}/nginx.pid;\nerror_log {root}/error.log warn;\n"
        "events { worker_connections 1024; }\n"
        "http {\n"
        "access_log off;\n"
        f"client_body_temp_path {root}/body;\nproxy_temp_path {root}/proxy;\n"
        f"fastcgi_temp_path {root}/fastcgi;\nuwsgi_temp_path {root}/uwsgi;\n"
        f"scgi_temp_path {root}/scgi;\n" + "".join(kept) + "}\n"
    )


def command(root: Path, port: int, upstreams: list[str]) -> list[str]:
    """Write the config under `root` and return the argv running nginx on it."""
    found = binary()
    if found is None:
        raise RuntimeError("nginx is not installed (Debian package `nginx`)")
    root.mkdir(parents=True, exist_ok=True)
    conf = root / "nginx.conf"
    conf.write_text(render(root, port, upstreams))
    return [found, "-c", str(conf), "-p", str(root), "-e", str(root / "error.log")]
