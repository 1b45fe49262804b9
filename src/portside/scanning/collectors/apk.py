"""Alpine (and Wolfi/Chainguard) packages: lib/apk/db/installed (or usr/lib/apk/db/...
where /lib is merged into /usr), records of "X:value" lines separated by blank lines
(P name, V version, A arch, o origin, L license)."""

from __future__ import annotations

from portside.scanning.collectors.base import Draft, Found
from portside.scanning.limits import Limits


class Apk:
    pattern = r"(?:usr/)?lib/apk/db/installed"  # usr/lib: merged-usr Alpine

    def collect(self, path: str, data: bytes, limits: Limits) -> Found:
        drafts: list[Draft] = []
        record: dict[str, str] = {}
        for line in [*data.decode("utf-8", "replace").splitlines(), ""]:
            if not line.strip():
                if record.get("P") and record.get("V"):
                    origin = record.get("o")
                    drafts.append(
                        Draft(
                            kind="apk",
                            name=record["P"],
                            version=record["V"],
                            arch=record.get("A"),
                            source_name=origin,
                            licenses=(record["L"],) if record.get("L") else (),
                        )
                    )
                record = {}
            elif len(line) > 2 and line[1] == ":" and line[0] in "PVAoL":
                record[line[0]] = line[2:].strip()
        return Found(drafts=tuple(drafts))
