"""The Debian security tracker's JSON (https://security-tracker.debian.org/tracker/data/json)
read into Advisories, streaming: the file is one object of about 70 MB,
`{source_package: {CVE-or-TEMP-id: {description, scope, releases: {codename: {status,
fixed_version, urgency, repositories}}}}}`, read one source package at a time.

Per release with a known number (bookworm -> "Debian:12"; `sid` and unknown codenames
are skipped, since no installed system reports them as a number):
* `resolved` with `fixed_version` "0": never affected, skipped;
* `resolved` with a version: affected below it (introduced 0, fixed that version);
* `open`: affected, no fix yet (introduced 0);
* `undetermined`: skipped (the team has not decided whether it is affected).
The package name is the SOURCE package: matching uses Package.source_name. The urgency
(see portside.vulndb.severity) becomes that package's severity.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

from portside.vulndb import severity as sev
from portside.vulndb.model import Advisory, Affected, Range

# Debian's release codenames and their numbers (https://www.debian.org/releases/).
RELEASES = {
    "buzz": "1.1",
    "rex": "1.2",
    "bo": "1.3",
    "hamm": "2.0",
    "slink": "2.1",
    "potato": "2.2",
    "woody": "3.0",
    "sarge": "3.1",
    "etch": "4",
    "lenny": "5",
    "squeeze": "6",
    "wheezy": "7",
    "jessie": "8",
    "stretch": "9",
    "buster": "10",
    "bullseye": "11",
    "bookworm": "12",
    "trixie": "13",
    "forky": "14",
    "duke": "15",
}
TRACKER_URL = "https://security-tracker.debian.org/tracker/"


class TrackerError(ValueError):
    """Input that is not the tracker's format; the message names the entry."""


def _releases(package: str, vuln_id: str, releases: Any) -> Iterator[Affected]:
    if not isinstance(releases, dict):
        raise TrackerError(f"{package}/{vuln_id}: releases must be an object")
    for codename, entry in releases.items():
        number = RELEASES.get(codename)
        if number is None:
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("status"), str):
            raise TrackerError(f"{package}/{vuln_id}/{codename}: needs a status")
        status, fixed = entry["status"], entry.get("fixed_version")
        if status == "resolved":
            if not isinstance(fixed, str) or not fixed:
                raise TrackerError(
                    f"{package}/{vuln_id}/{codename}: resolved without fixed_version"
                )
            if fixed == "0":
                continue
            events: tuple[tuple[str, str], ...] = (("introduced", "0"), ("fixed", fixed))
        elif status == "open":
            events = (("introduced", "0"),)
        else:
            continue
        yield Affected(
            ecosystem=f"Debian:{number}",
            name=package,
            ranges=(Range("ECOSYSTEM", events),),
            severity=sev.from_word(entry.get("urgency")),
        )


def advisories(stream: IO[bytes]) -> Iterator[Advisory]:
    """Every advisory with at least one affected release, one source package at a time."""
    import ijson

    try:
        for package, vulns in ijson.kvitems(stream, "", use_float=True):
            if not isinstance(vulns, dict):
                raise TrackerError(f"{package}: expected an object of vulnerabilities")
            for vuln_id, info in vulns.items():
                if not isinstance(info, dict):
                    raise TrackerError(f"{package}/{vuln_id}: expected an object")
                affected = tuple(_releases(package, vuln_id, info.get("releases")))
                if not affected:
                    continue
                description = info.get("description")
                yield Advisory(
                    id=vuln_id,
                    affected=affected,
                    summary=description[:1000] if isinstance(description, str) else "",
                    links=(TRACKER_URL + vuln_id,),
                )
    except ijson.JSONError as error:
        problem = str(error).strip().split("\n", 1)[0]
        raise TrackerError(f"not valid JSON: {problem}") from None
