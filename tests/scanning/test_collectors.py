"""Each package collector on real or format-exact package records, through the whole
path a scan takes (layer bytes -> inventory)."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from portside.scanning.collectors.golang import MAGIC
from portside.scanning.inventory import inventory
from portside.scanning.limits import Limits
from portside.scanning.model import Package
from tests.missing import missing_tool
from tests.scanning.build import file, image, symlink

DEBIAN = "ID=debian\nVERSION_ID=12\n"


def by_name(packages: tuple[Package, ...]) -> dict[str, Package]:
    return {p.name: p for p in packages}


def test_the_hosts_real_dpkg_database() -> None:
    status, release = Path("/var/lib/dpkg/status"), Path("/usr/lib/os-release")
    if not status.exists() or shutil.which("dpkg-query") is None or not release.exists():
        missing_tool("this test reads the host's real dpkg database (a Debian machine)")
    fields = (
        "${db:Status-Status}\\t${Package}\\t${Version}\\t${Architecture}\\t${source:Package}\\n"
    )
    listing = subprocess.run(
        ["dpkg-query", "-W", "-f", fields], check=True, capture_output=True, text=True
    ).stdout
    installed = [
        line.split("\t") for line in listing.splitlines() if line.startswith("installed\t")
    ]
    layer = [
        file("usr/lib/os-release", release.read_bytes()),
        symlink("etc/os-release", "../usr/lib/os-release"),
        file("var/lib/dpkg/status", status.read_bytes()),
    ]
    found = inventory(image(layer, how="zstd"))
    os_fields = dict(line.split("=", 1) for line in release.read_text().splitlines() if "=" in line)
    version_id = os_fields["VERSION_ID"].strip('"')
    assert found.os_id == os_fields["ID"].strip('"')
    assert found.os_version == version_id
    assert len(found.packages) == len(installed) > 100
    got = {(p.name, p.version, p.purl.split("arch=")[1].split("&")[0]) for p in found.packages}
    assert got == {(name, version, arch) for _, name, version, arch, _ in installed}
    for _, name, _version, _arch, source in installed:
        if name in ("dpkg", "libc6", "bash"):
            package = next(p for p in found.packages if p.name == name)
            assert package.ecosystem == f"Debian:{version_id.split('.')[0]}"
            assert package.purl.startswith(f"pkg:deb/debian/{name}@")
            assert package.source_name in (source if source != name else None, source)
            assert package.path == "var/lib/dpkg/status"
    libc = by_name(found.packages).get("libc6")
    assert libc is not None
    assert libc.source_name == "glibc"


def test_dpkg_keeps_only_installed_packages_and_reads_source_versions() -> None:
    text = """Package: libssl3
Status: install ok installed
Architecture: amd64
Source: openssl (3.0.11-1~deb12u2)
Version: 3.0.11-1~deb12u2+b1
Description: multi
 line

Package: removed
Status: deinstall ok config-files
Version: 1.0

Package: half
Status: install reinstreq half-installed
Version: 2.0

Package: tzdata
Status: install ok installed
Version: 2024a-0+deb12u1
Architecture: all
"""
    found = inventory(image([file("etc/os-release", DEBIAN), file("var/lib/dpkg/status", text)]))
    packages = by_name(found.packages)
    assert sorted(packages) == ["libssl3", "tzdata"]
    ssl = packages["libssl3"]
    assert (ssl.source_name, ssl.source_version) == ("openssl", "3.0.11-1~deb12u2")
    assert ssl.purl == (
        "pkg:deb/debian/libssl3@3.0.11-1~deb12u2%2Bb1?arch=amd64&distro=debian-12&upstream=openssl"
    )
    assert packages["tzdata"].source_name is None


def test_distroless_status_d_files() -> None:
    base = "Package: base-files\nVersion: 12.4+deb12u5\nArchitecture: amd64\n"
    found = inventory(
        image(
            [
                file("etc/os-release", DEBIAN),
                file("var/lib/dpkg/status.d/base-files", base),
                file(
                    "var/lib/dpkg/status.d/base-files.md5sums",
                    "d41d8cd98f00b204e9800998ecf8427e  x\n",
                ),
                file(
                    "var/lib/dpkg/status.d/libc6",
                    "Package: libc6\nVersion: 2.36-9+deb12u4\nSource: glibc\n",
                ),
            ]
        )
    )
    assert sorted((p.name, p.path) for p in found.packages) == [
        ("base-files", "var/lib/dpkg/status.d/base-files"),
        ("libc6", "var/lib/dpkg/status.d/libc6"),
    ]
    assert {p.ecosystem for p in found.packages} == {"Debian:12"}


def test_ubuntu_lts_ecosystem() -> None:
    release = 'ID=ubuntu\nVERSION_ID="22.04"\nVERSION="22.04.3 LTS (Jammy Jellyfish)"\n'
    status = "Package: bash\nStatus: install ok installed\nVersion: 5.1-6ubuntu1\n"
    found = inventory(image([file("etc/os-release", release), file("var/lib/dpkg/status", status)]))
    (bash,) = found.packages
    assert bash.ecosystem == "Ubuntu:22.04:LTS"
    assert bash.purl == "pkg:deb/ubuntu/bash@5.1-6ubuntu1?distro=ubuntu-22.04"


def test_alpine_installed_database() -> None:
    db = """C:Q1abc=
P:musl
V:1.2.4_git20230717-r4
A:x86_64
L:MIT
o:musl

C:Q1def=
P:libcrypto3
V:3.1.4-r5
A:x86_64
L:Apache-2.0
o:openssl
"""
    release = (
        'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.19.1\nPRETTY_NAME="Alpine Linux v3.19"\n'
    )
    found = inventory(image([file("etc/os-release", release), file("lib/apk/db/installed", db)]))
    packages = by_name(found.packages)
    assert found.os_pretty_name == "Alpine Linux v3.19"
    crypto = packages["libcrypto3"]
    assert crypto.ecosystem == "Alpine:v3.19"
    assert crypto.source_name == "openssl"
    assert crypto.licenses == ("Apache-2.0",)
    assert crypto.purl == (
        "pkg:apk/alpine/libcrypto3@3.1.4-r5?arch=x86_64&distro=alpine-3.19.1&upstream=openssl"
    )
    assert (
        packages["musl"].purl
        == "pkg:apk/alpine/musl@1.2.4_git20230717-r4?arch=x86_64&distro=alpine-3.19.1"
    )


def test_python_distributions() -> None:
    metadata = (
        "Metadata-Version: 2.1\nName: Requests_OAuthlib\nVersion: 1.3.1\n"
        "Classifier: License :: OSI Approved :: BSD License\n\nlong description\n"
    )
    found = inventory(
        image(
            [
                file(
                    "usr/lib/python3/site-packages/requests_oauthlib-1.3.1.dist-info/METADATA",
                    metadata,
                ),
                file("opt/venv/lib/x.egg-info/PKG-INFO", "Name: x\nVersion: 0.1\nLicense: MIT\n"),
                file(
                    "usr/lib/python3/dist-packages/six-1.16.0.egg-info",
                    "Name: six\nVersion: 1.16.0\n",
                ),
                file("usr/lib/python3/dist-packages/broken.dist-info/METADATA", "Version: 1\n"),
            ]
        )
    )
    packages = by_name(found.packages)
    assert sorted(packages) == ["Requests_OAuthlib", "six", "x"]
    oauth = packages["Requests_OAuthlib"]
    assert (oauth.ecosystem, oauth.version, oauth.licenses) == ("PyPI", "1.3.1", ("BSD License",))
    assert oauth.purl == "pkg:pypi/requests-oauthlib@1.3.1"
    assert packages["x"].licenses == ("MIT",)
    assert any("broken.dist-info/METADATA: no Name" in w for w in found.warnings)


def test_npm_packages() -> None:
    found = inventory(
        image(
            [
                file(
                    "app/node_modules/@babel/core/package.json",
                    '{"name":"@babel/core","version":"7.23.0","license":"MIT"}',
                ),
                file(
                    "app/node_modules/a/package.json",
                    '{"name":"a","version":"1.0.0","licenses":[{"type":"ISC"}]}',
                ),
                file(
                    "app/node_modules/a/node_modules/b/package.json",
                    '{"name":"b","version":"2.0.0"}',
                ),
                file("app/node_modules/a/lib/package.json", '{"name":"inner","version":"9"}'),
                file("app/package.json", '{"name":"my-app","version":"1.0.0"}'),
                file("app/node_modules/c/package.json", '["not an object"]'),
            ]
        )
    )
    packages = by_name(found.packages)
    assert sorted(packages) == ["@babel/core", "a", "b"]
    assert packages["@babel/core"].purl == "pkg:npm/%40babel/core@7.23.0"
    assert packages["@babel/core"].licenses == ("MIT",)
    assert packages["a"].licenses == ("ISC",)
    assert {p.ecosystem for p in found.packages} == {"npm"}


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes(out + bytes([value]))


def go_binary(at: int, version: str = "go1.21.5") -> bytes:
    """An ELF-headed file with Go 1.18+ build info at offset `at` (16-aligned), after a
    decoy copy of the magic (as debug/buildinfo's own string literal appears in rodata)."""
    info = (
        "path\texample.com/cmd/tool\n"
        "mod\texample.com/tool\t(devel)\t\n"
        "dep\tgithub.com/pkg/errors\tv0.9.1\th1:abc=\n"
        "dep\tgolang.org/x/net\tv0.17.0\th1:def=\n"
        "=>\tgolang.org/x/net\tv0.19.0\th1:ghi=\n"
        "dep\texample.com/local\tv1.0.0\n"
        "=>\t../local\t\t\n"
        "build\t-compiler=gc\n"
    )
    sentinel = bytes(range(16))
    module = sentinel + info.encode() + sentinel
    blob = MAGIC + bytes([8, 2]) + bytes(16)
    blob += _uvarint(len(version)) + version.encode() + _uvarint(len(module)) + module
    head = b"\x7fELF" + bytes(60) + b"xx" + MAGIC + b"not build info"
    return head + bytes(at - len(head)) + blob + bytes(4096)


def test_go_build_info() -> None:
    # 262128 puts the build info across the reader's 256 KiB chunk boundary
    found = inventory(
        image(
            [
                file("usr/local/bin/tool", go_binary(262128), mode=0o755),
                file("usr/local/share/not-executable", go_binary(4096), mode=0o644),
            ]
        )
    )
    packages = {(p.name, p.version) for p in found.packages}
    assert packages == {
        ("stdlib", "1.21.5"),
        ("github.com/pkg/errors", "v0.9.1"),
        ("golang.org/x/net", "v0.19.0"),
    }
    errors = by_name(found.packages)["github.com/pkg/errors"]
    assert (errors.ecosystem, errors.path) == ("Go", "usr/local/bin/tool")
    assert errors.purl == "pkg:golang/github.com/pkg/errors@v0.9.1"
    assert by_name(found.packages)["stdlib"].purl == "pkg:golang/stdlib@1.21.5"


def test_go_binaries_over_the_size_limit_are_not_scanned() -> None:
    layer = [file("bin/tool", go_binary(4096), mode=0o755)]
    assert inventory(image(layer), Limits(max_binary_bytes=1000)).packages == ()
    assert inventory(image(layer)).packages != ()


def test_a_real_go_binary() -> None:
    binary = Path("/usr/bin/skopeo")
    if not binary.exists():
        missing_tool("skopeo (a real Go binary) is not installed")
    found = inventory(image([file("usr/bin/skopeo", binary.read_bytes(), mode=0o755)]))
    stdlib = by_name(found.packages)["stdlib"]
    assert stdlib.ecosystem == "Go"
    assert stdlib.version.startswith("1.")


def jar(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def pom(group: str, artifact: str, version: str) -> bytes:
    return f"#Generated\ngroupId={group}\nartifactId={artifact}\nversion={version}\n".encode()


def test_java_archives_and_nested_jars() -> None:
    deepest = jar({"META-INF/maven/x/deep/pom.properties": pom("x", "deep", "1")})
    nested = jar(
        {
            "META-INF/maven/com.fasterxml.jackson.core/jackson-core/pom.properties": pom(
                "com.fasterxml.jackson.core", "jackson-core", "2.15.2"
            ),
            "lib/deep.jar": deepest,
        }
    )
    app = jar(
        {
            "META-INF/MANIFEST.MF": b"Manifest-Version: 1.0\n",
            "META-INF/maven/org.apache.commons/commons-lang3/pom.properties": pom(
                "org.apache.commons", "commons-lang3", "3.12.0"
            ),
            "BOOT-INF/lib/jackson-core-2.15.2.jar": nested,
        }
    )
    found = inventory(
        image([file("app/app.jar", app), file("app/broken.jar", b"PK\x03\x04 no zip")])
    )
    packages = by_name(found.packages)
    assert sorted(packages) == [
        "com.fasterxml.jackson.core:jackson-core",
        "org.apache.commons:commons-lang3",
    ]
    assert packages["org.apache.commons:commons-lang3"].purl == (
        "pkg:maven/org.apache.commons/commons-lang3@3.12.0"
    )
    assert packages["org.apache.commons:commons-lang3"].ecosystem == "Maven"
    assert any("app/broken.jar: not a readable jar" in w for w in found.warnings)
    deeper = inventory(image([file("app/app.jar", app)]), Limits(max_archive_depth=3))
    assert "x:deep" in by_name(deeper.packages)


def test_a_zip_bomb_in_a_jar_is_bounded() -> None:
    bomb = jar({"META-INF/maven/g/a/pom.properties": b"x" * (50 * 1024 * 1024)})
    assert len(bomb) < 1024 * 1024
    found = inventory(image([file("app/bomb.jar", bomb)]))
    assert found.packages == ()
    inner = jar({f"lib/{n}.jar": os.urandom(64) for n in range(50)})
    found = inventory(image([file("app/many.jar", inner)]), Limits(max_archive_members=10))
    assert found.packages == ()


def test_no_os_release_leaves_the_family_and_a_warning() -> None:
    found = inventory(image([file("var/lib/dpkg/status", "Package: a\nVersion: 1\n")]))
    (package,) = found.packages
    assert package.ecosystem == "Debian"
    assert any("no etc/os-release" in w for w in found.warnings)


@pytest.mark.parametrize(
    ("release", "ecosystem"),
    [
        ('ID="rocky"\nVERSION_ID="9.3"\n', "Rocky Linux:9"),
        ('ID="almalinux"\nVERSION_ID="8.9"\n', "AlmaLinux:8"),
        ('ID="rhel"\nVERSION_ID="9.2"\n', "Red Hat:enterprise_linux:9"),
        ('NAME="Fedora Linux"\nID=fedora\nVERSION_ID=39\n', "Fedora Linux:39"),
        ("ID=wolfi\nVERSION_ID=20230201\n", "Wolfi"),
        ('ID="opensuse-leap"\nVERSION_ID="15.5"\n', "openSUSE:Leap 15.5"),
        ('ID="opensuse-tumbleweed"\nVERSION_ID="20240101"\n', "openSUSE:Tumbleweed"),
        ('ID="sles"\nVERSION_ID="15.5"\n', "SUSE:Linux Enterprise Server 15 SP5"),
        ('ID="sles"\nVERSION_ID="15"\n', "SUSE:Linux Enterprise Server 15"),
        ('ID=ubuntu\nVERSION_ID="23.10"\nVERSION="23.10 (Mantic Minotaur)"\n', "Ubuntu:23.10"),
    ],
)
def test_os_ecosystems(release: str, ecosystem: str) -> None:
    from portside.scanning.collectors.osrelease import parse
    from portside.scanning.purl import os_ecosystem

    assert os_ecosystem(parse(release)) == ecosystem


def test_layers_read_through_the_storage_drivers_reader(tmp_path: Path) -> None:
    """The scan service opens blobs with the storage driver's `reader`: the scanner
    takes those streams as they are (here the real filesystem driver)."""
    import hashlib

    from portside.digest import Digest
    from portside.storage.filesystem import FilesystemDriver
    from portside.storage.paths import blob_path

    driver = FilesystemDriver(tmp_path)
    layers = image(
        [file("etc/os-release", DEBIAN), file("var/lib/dpkg/status", "Package: a\nVersion: 1\n")],
        [file("usr/lib/python3/x.dist-info/METADATA", "Name: x\nVersion: 2\n")],
        how="zstd",
    )
    digests = []
    for _, stream in layers:
        data = stream.getvalue()
        digest = Digest.parse("sha256:" + hashlib.sha256(data).hexdigest())
        driver.put(blob_path(digest), data)
        digests.append(digest)
    readers = [(str(d), driver.reader(blob_path(d))) for d in digests]
    try:
        found = inventory(readers)
    finally:
        for _, reader in readers:
            reader.close()
    assert sorted((p.name, p.layer) for p in found.packages) == [
        ("a", str(digests[0])),
        ("x", str(digests[1])),
    ]


def test_debian_licences_from_the_hosts_copyright_files() -> None:
    docs = {name: Path(f"/usr/share/doc/{name}/copyright") for name in ("bash", "zlib1g", "libc6")}
    status = Path("/var/lib/dpkg/status")
    if not status.exists() or not all(p.exists() for p in docs.values()):
        missing_tool("this test reads the host's real dpkg database and copyright files")
    layer = [file("var/lib/dpkg/status", status.read_bytes())]
    layer += [file(str(path).lstrip("/"), path.read_bytes()) for path in docs.values()]
    layer += [symlink("usr/share/doc/libc-bin", "libc6")]
    packages = by_name(inventory(image(layer)).packages)
    assert "GPL-3.0-or-later" in packages["bash"].licenses  # "GPL-3+" in DEP-5
    assert packages["zlib1g"].licenses == ("Zlib",)
    assert packages["libc6"].licenses == ()  # a free-text copyright file
    assert packages["dpkg"].licenses == ()  # its copyright file is not in the layer


def test_debian_licences_follow_linked_doc_directories() -> None:
    copyright_ = (
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
        "Files: *\nLicense: GPL-2+ or Expat, (BSD-3-clause)\n full text\n\n"
        "Files: x\nLicense: custom-thing\n"
    )
    status = "".join(
        f"Package: {n}\nStatus: install ok installed\nVersion: 1\n\n" for n in ("libx1", "libx-dev")
    )
    layer = [
        file("etc/os-release", DEBIAN),
        file("var/lib/dpkg/status", status),
        file("usr/share/doc/libx1/copyright", copyright_),
        symlink("usr/share/doc/libx-dev", "libx1"),
    ]
    packages = by_name(inventory(image(layer)).packages)
    expected = ("GPL-2.0-or-later", "MIT", "BSD-3-Clause", "custom-thing")
    assert packages["libx1"].licenses == packages["libx-dev"].licenses == expected
