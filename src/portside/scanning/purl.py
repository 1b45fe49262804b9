"""Package drafts to `Package`s: the OSV ecosystem and the package URL, in one place.

Package URLs follow purl-spec (pkg:type/namespace/name@version?qualifiers) in its
canonical form: every component percent-encoded except that `:` stays (and `/` in
qualifier values, as in repository_url=docker.io/library/debian), qualifiers sorted. OS packages
carry the distribution as namespace (debian, ubuntu, alpine, rocky...) and the
qualifiers arch, epoch (rpm) and distro (e.g. debian-12). PyPI names are normalised as
the spec says (lower case, `_` to `-`).

OSV ecosystems for OS packages come from os-release: "Debian:12", "Ubuntu:22.04:LTS",
"Alpine:v3.19", "Rocky Linux:9", "AlmaLinux:9", "Red Hat:enterprise_linux:9",
"openSUSE:Leap 15.5", "SUSE:Linux Enterprise Server 15 SP5"; an ID
OSV has no name for keeps os-release's NAME and VERSION_ID ("Fedora Linux:39"), and
an image without os-release gets the bare family ("Debian") and a warning.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from portside.scanning.collectors.base import Draft
from portside.scanning.model import Package

LANGUAGE = {"pypi": "PyPI", "npm": "npm", "golang": "Go", "maven": "Maven"}
FAMILY = {"deb": "Debian", "apk": "Alpine", "rpm": "Red Hat"}  # without os-release


def _q(text: str) -> str:
    return quote(text, safe="").replace("%3A", ":")


def purl(
    kind: str,
    name: str,
    version: str | None = None,
    namespace: str | None = None,
    qualifiers: dict[str, str | None] | None = None,
) -> str:
    out = f"pkg:{kind}/"
    if namespace:
        out += "/".join(_q(part) for part in namespace.split("/") if part) + "/"
    out += _q(name)
    if version:
        out += "@" + _q(version)
    pairs = sorted((k, v) for k, v in (qualifiers or {}).items() if v)
    if pairs:
        out += "?" + "&".join(f"{k}={quote(v, safe='/:')}" for k, v in pairs)
    return out


def os_ecosystem(os_release: dict[str, str]) -> str | None:
    """The OSV ecosystem of an image's OS packages, from its os-release fields."""
    os_id = os_release.get("ID", "").lower()
    version = os_release.get("VERSION_ID", "")
    if not os_id:
        return None
    major = version.split(".")[0]
    if os_id == "debian":
        return f"Debian:{major}" if major else "Debian"
    if os_id == "ubuntu":
        lts = ":LTS" if "LTS" in os_release.get("VERSION", "") else ""
        return f"Ubuntu:{version}{lts}" if version else "Ubuntu"
    if os_id == "alpine":
        minor = ".".join(version.split(".")[:2])
        return f"Alpine:v{minor}" if minor else "Alpine"
    names = {"rocky": "Rocky Linux", "almalinux": "AlmaLinux", "mageia": "Mageia"}
    if os_id in names:
        return f"{names[os_id]}:{major}" if major else names[os_id]
    if os_id == "rhel":
        return f"Red Hat:enterprise_linux:{major}" if major else "Red Hat"
    if os_id in ("wolfi", "chainguard"):
        return os_id.capitalize()
    if os_id == "opensuse-tumbleweed":
        return "openSUSE:Tumbleweed"
    if os_id == "opensuse-leap":
        return f"openSUSE:Leap {version}" if version else "openSUSE"
    if os_id == "sles":
        service_pack = version.split(".")[1] if "." in version else ""
        server = f"SUSE:Linux Enterprise Server {major}"
        return f"{server} SP{service_pack}" if service_pack not in ("", "0") else server
    name = os_release.get("NAME") or os_id
    return f"{name}:{version}" if version else name


def _namespace(os_release: dict[str, str], kind: str) -> str:
    os_id = os_release.get("ID", "").lower()
    if os_id and re.fullmatch(r"[a-z0-9._-]+", os_id):
        return os_id
    return FAMILY[kind].split()[0].lower()


def finish(draft: Draft, path: str, layer: str, os_release: dict[str, str] | None) -> Package:
    """The package `draft` read from `path`, as the rest of scanning sees it."""
    if draft.kind in LANGUAGE:
        name, namespace = draft.name, draft.namespace
        if draft.kind == "pypi":
            name = re.sub(r"[-_.]+", "-", name).lower()
        elif draft.kind == "golang" and not namespace:  # github.com/pkg / errors
            namespace, _, name = name.rpartition("/")
        full_name = f"{draft.namespace}/{draft.name}" if draft.namespace else draft.name
        if draft.kind == "maven":
            full_name = f"{draft.namespace}:{draft.name}"
        return Package(
            ecosystem=LANGUAGE[draft.kind],
            name=full_name,
            version=draft.version,
            path=path,
            purl=purl(draft.kind, name, draft.version, namespace),
            source_name=draft.source_name,
            source_version=draft.source_version,
            licenses=draft.licenses,
            layer=layer,
        )
    fields = os_release or {}
    ecosystem = os_ecosystem(fields) or FAMILY[draft.kind]
    namespace = _namespace(fields, draft.kind)
    distro = fields.get("VERSION_ID")
    qualifiers = {
        "arch": draft.arch,
        "epoch": draft.epoch,
        "distro": f"{namespace}-{distro}" if distro else None,
        "upstream": draft.source_name if draft.source_name != draft.name else None,
    }
    return Package(
        ecosystem=ecosystem,
        name=draft.name,
        version=f"{draft.epoch}:{draft.version}" if draft.epoch else draft.version,
        path=path,
        purl=purl(draft.kind, draft.name, draft.version, namespace, qualifiers),
        source_name=draft.source_name,
        source_version=draft.source_version,
        licenses=draft.licenses,
        layer=layer,
    )
