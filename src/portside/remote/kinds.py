"""Kinds of peer registry and what each implies: the URL to use when none is given, and
how a repository name is spelled there (Docker Hub keeps official images under
`library/`, so `nginx` is `library/nginx`). Everything else is learned from the peer
itself (its auth challenge names the token server)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

EndpointKind = Literal["portside", "distribution", "docker-hub", "harbor", "ghcr", "ecr"]


@dataclass(frozen=True, slots=True)
class KindInfo:
    label: str
    default_url: str | None
    library_prefix: bool = False  # single-component names live under library/


KINDS: dict[str, KindInfo] = {
    "portside": KindInfo("Portside", None),
    "distribution": KindInfo("Distribution / any OCI registry", None),
    "docker-hub": KindInfo("Docker Hub", "https://registry-1.docker.io", library_prefix=True),
    "harbor": KindInfo("Harbor", None),
    "ghcr": KindInfo("GitHub Container Registry (token auth)", "https://ghcr.io"),
    "ecr": KindInfo("Amazon ECR (password: an ECR login token)", None),
}


def remote_repository(kind: str, name: str) -> str:
    """How repository `name` is spelled on a peer of this kind."""
    info = KINDS.get(kind)
    if info is not None and info.library_prefix and "/" not in name:
        return f"library/{name}"
    return name
