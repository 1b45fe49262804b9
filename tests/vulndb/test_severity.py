"""Severity from CVSS vectors, scores and the sources' words."""

from __future__ import annotations

import pytest

from portside.scanning.model import Severity
from portside.vulndb import osv
from portside.vulndb.severity import cvss_base_score, from_score, from_word


@pytest.mark.parametrize(
    ("score", "severity"),
    [
        (0.0, Severity.NONE),
        (0.1, Severity.LOW),
        (3.9, Severity.LOW),
        (4.0, Severity.MEDIUM),
        (6.9, Severity.MEDIUM),
        (7.0, Severity.HIGH),
        (8.9, Severity.HIGH),
        (9.0, Severity.CRITICAL),
        (10.0, Severity.CRITICAL),
    ],
)
def test_bands(score: float, severity: Severity) -> None:
    assert from_score(score) == severity


def test_words() -> None:
    assert from_word("unimportant") == Severity.NEGLIGIBLE
    assert from_word("low**") == Severity.LOW
    assert from_word("MODERATE") == Severity.MEDIUM
    assert from_word("high") == Severity.HIGH
    assert from_word("not yet assigned") is None
    assert from_word(None) is None


def test_cvss_vectors() -> None:
    assert cvss_base_score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H") == 9.8
    assert (
        cvss_base_score("CVSS:3.0/AV:L/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N") == 1.8
    )  # 1.4124 + 0.3330, rounded up
    assert cvss_base_score("AV:N/AC:L/Au:N/C:P/I:P/A:P") == 7.5
    assert cvss_base_score("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N") == 9.3
    assert cvss_base_score("CVSS:3.1/AV:N") is None
    assert cvss_base_score("nonsense") is None


def test_osv_prefers_v3_then_the_word_and_per_package_severity() -> None:
    record = {
        "id": "X-1",
        "severity": [
            {
                "type": "CVSS_V4",
                "score": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
            },
            {"type": "CVSS_V3", "score": "CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N"},
        ],
        "affected": [
            {
                "package": {"ecosystem": "Debian:12", "name": "a"},
                "ecosystem_specific": {"urgency": "unimportant"},
            }
        ],
        "database_specific": {"severity": "CRITICAL"},
    }
    advisory = osv.advisory(record)
    assert advisory is not None
    assert (advisory.severity, advisory.cvss_score) == (Severity.LOW, 1.8)
    assert advisory.affected[0].severity == Severity.NEGLIGIBLE
    unscorable = dict(record, severity=[{"type": "CVSS_V3", "score": "CVSS:3.1/broken"}])
    advisory = osv.advisory(unscorable)
    assert advisory is not None
    assert (advisory.severity, advisory.cvss_score) == (Severity.CRITICAL, None)
