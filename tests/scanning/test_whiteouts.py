"""Layers applied in order with OCI whiteouts: what a later layer removes or replaces
is not reported; what it adds is, with the layer that wrote it."""

from __future__ import annotations

from portside.scanning.inventory import inventory
from tests.scanning.build import E, directory, file, hardlink, image, symlink

DEBIAN = "ID=debian\nVERSION_ID=12\n"


def status(*names: str) -> str:
    return "\n".join(
        f"Package: {n}\nStatus: install ok installed\nVersion: 1.0\nArchitecture: amd64\n"
        for n in names
    )


def names(*layers: list[E]) -> list[str]:
    return sorted(p.name for p in inventory(image(*layers)).packages)


BASE = [file("etc/os-release", DEBIAN), file("var/lib/dpkg/status", status("bash", "curl"))]


def test_a_whiteout_removes_the_lower_file() -> None:
    assert names(BASE) == ["bash", "curl"]
    assert names(BASE, [file("var/lib/dpkg/.wh.status", b"")]) == []


def test_a_whiteout_of_a_directory_removes_everything_under_it() -> None:
    lower = [
        *BASE,
        file("usr/lib/python3/site-packages/a-1.dist-info/METADATA", "Name: a\nVersion: 1\n"),
    ]
    assert names(lower) == ["a", "bash", "curl"]
    assert names(lower, [file("usr/lib/.wh.python3", b"")]) == ["bash", "curl"]
    assert names(lower, [file("usr/.wh.lib", b"")]) == ["bash", "curl"]


def test_an_opaque_directory_hides_lower_children_but_not_its_own_layer() -> None:
    upper = [
        file("var/lib/dpkg/status", status("zsh")),  # before the marker in tar order
        file("var/lib/dpkg/.wh..wh..opq", b""),
    ]
    assert names(BASE, upper) == ["zsh"]
    upper = [directory("var/lib/dpkg"), file("var/lib/dpkg/.wh..wh..opq", b"")]
    assert names(BASE, upper) == []
    assert names(BASE, [file("var/lib/.wh..wh..opq", b"")]) == []
    assert names(BASE, [file("var/.wh..wh..opq", b""), file("var/lib/dpkg/other", b"")]) == []


def test_a_whiteout_does_not_hide_its_own_layers_entries() -> None:
    upper = [file("var/lib/dpkg/status", status("zsh")), file("var/lib/dpkg/.wh.status", b"")]
    assert names(BASE, upper) == ["zsh"]


def test_a_replaced_database_reports_the_new_packages_and_layer() -> None:
    layers = image(BASE, [file("var/lib/dpkg/status", status("bash", "git"))])
    found = inventory(layers)
    assert [p.name for p in found.packages] == ["bash", "git"]
    assert {p.layer for p in found.packages} == {layers[1][0]}


def test_a_file_replacing_a_directory_removes_what_was_under_it() -> None:
    lower = [
        *BASE,
        file("app/node_modules/left-pad/package.json", '{"name":"left-pad","version":"1.3.0"}'),
    ]
    assert names(lower) == ["bash", "curl", "left-pad"]
    assert names(lower, [file("app/node_modules", b"not a directory any more")]) == ["bash", "curl"]
    assert names(lower, [symlink("app", "/elsewhere")]) == ["bash", "curl"]


def test_aufs_metadata_whiteouts_are_ignored() -> None:
    assert names(BASE, [file(".wh..wh.plnk/123.456", b"")]) == ["bash", "curl"]


def test_a_whiteout_removes_a_link_and_a_later_layer_restores_it() -> None:
    lower = [
        file("usr/lib/os-release", "ID=alpine\nVERSION_ID=3.19.1\n"),
        symlink("etc/os-release", "../usr/lib/os-release"),
    ]
    assert inventory(image(lower)).os_id == "alpine"
    # etc/os-release gone: the fallback usr/lib/os-release still names the OS
    assert inventory(image(lower, [file("etc/.wh.os-release", b"")])).os_id == "alpine"
    upper = [file("etc/os-release", DEBIAN)]
    assert inventory(image(lower, upper)).os_id == "debian"
    gone = [file("usr/lib/.wh.os-release", b""), file("etc/.wh.os-release", b"")]
    assert inventory(image(lower, gone)).os_id is None


def test_hard_links_to_lower_and_same_layer_files_are_read() -> None:
    lower = [file("usr/lib/os-release", DEBIAN)]
    upper = [hardlink("etc/os-release", "usr/lib/os-release"), file("usr/lib/.wh.os-release", b"")]
    assert inventory(image(lower, upper)).os_id == "debian"
    same = [
        file("opt/status", b""),
        file("var/lib/dpkg/status", status("a")),
        hardlink("var/lib/dpkg/status.d/b", "var/lib/dpkg/status"),
    ]
    found = inventory(image(same))
    assert sorted((p.name, p.path) for p in found.packages) == [
        ("a", "var/lib/dpkg/status"),
        ("a", "var/lib/dpkg/status.d/b"),
    ]
