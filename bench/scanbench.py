"""Scanner figures: how long the built-in scanner takes to inventory an image, and
its peak resident memory, from layer blobs on disk (as the storage driver serves them).

    bench/scan [--base-mb 300] [--image-mb 1024] [--layers 4] [--quick]

Two images are generated in a temporary directory first (not timed):
- "debian-base": one gzip layer like a Debian base image: this machine's real
  /var/lib/dpkg/status and os-release, plus `--base-mb` of filler files (half random,
  half text, 4 KiB to 4 MiB) under usr/;
- "image-<N>m": `--layers` layers adding up to `--image-mb` (gzip and zstd alternating):
  the base layer's package database, Python dist-infos, npm package.json files, jars
  and executables, and filler.
Each scan runs in a fresh child process (`--child`), so its peak RSS (VmHWM) is the
scan's alone; the first line gives a child's that only imports the scanner.
Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import json
import os
import random
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

import zstandard

from bench.machine import cpu_busy, describe, loadavg

MiB = 1024 * 1024
WORDS = b"alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron ".split()


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _filler(rng: random.Random, size: int) -> bytes:
    if rng.random() < 0.5:
        return os.urandom(size)
    words = [rng.choice(WORDS) for _ in range(size // 6 + 1)]
    return b" ".join(words)[:size]


class _Layer:
    def __init__(self, path: Path, compression: str) -> None:
        self.path = path
        self._file = path.open("wb")
        self._raw: io.RawIOBase | gzip.GzipFile | zstandard.ZstdCompressionWriter
        if compression == "gzip":
            self._raw = gzip.GzipFile(fileobj=self._file, mode="wb", compresslevel=1, mtime=0)
        else:
            self._raw = zstandard.ZstdCompressor(level=1).stream_writer(self._file)
        self.tar = tarfile.open(  # noqa: SIM115  # closed by close()
            fileobj=self._raw, mode="w|", format=tarfile.PAX_FORMAT
        )
        self.size = 0

    def add(self, name: str, data: bytes, mode: int = 0o644) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(data), mode
        self.tar.addfile(info, io.BytesIO(data))
        self.size += len(data) + 512

    def close(self) -> None:
        self.tar.close()
        self._raw.close()
        if not self._file.closed:
            self._file.close()


def _base_files(layer: _Layer) -> None:
    layer.add("var/lib/dpkg/status", Path("/var/lib/dpkg/status").read_bytes())
    for name in ("usr/lib/os-release", "etc/os-release"):
        layer.add(name, Path("/usr/lib/os-release").read_bytes())


def _fill(layer: _Layer, rng: random.Random, target: int, prefix: str) -> None:
    number = 0
    while layer.size < target:
        size = min(int(rng.choice((4, 16, 64, 256, 1024, 4096)) * 1024), target - layer.size)
        layer.add(f"{prefix}/f{number}.bin", _filler(rng, max(size, 1)))
        number += 1


def _jar(rng: random.Random, n: int) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(
            f"META-INF/maven/org.bench/lib{n}/pom.properties",
            f"groupId=org.bench\nartifactId=lib{n}\nversion=1.{n}.0\n",
        )
        archive.writestr("payload.bin", os.urandom(rng.randint(10_000, 500_000)))
    return out.getvalue()


def build(directory: Path, base_mb: int, image_mb: int, layers: int) -> dict[str, list[Path]]:
    rng = random.Random(12)
    base = _Layer(directory / "base.tar.gz", "gzip")
    _base_files(base)
    _fill(base, rng, base_mb * MiB, "usr/share/filler")
    base.close()
    image: list[Path] = []
    per_layer = image_mb * MiB // layers
    for number in range(layers):
        layer = _Layer(directory / f"layer{number}", "gzip" if number % 2 == 0 else "zstd")
        if number == 0:
            _base_files(layer)
        for n in range(200):
            layer.add(
                f"usr/lib/python3/site-packages/p{number}_{n}-1.0.dist-info/METADATA",
                f"Name: p{number}-{n}\nVersion: 1.{n}\nLicense: MIT\n\n".encode() + b"x" * 2000,
            )
            layer.add(
                f"app/node_modules/m{number}-{n}/package.json",
                json.dumps({"name": f"m{number}-{n}", "version": f"1.0.{n}"}).encode(),
            )
        for n in range(20):
            layer.add(f"app/lib/lib{number}-{n}.jar", _jar(rng, number * 100 + n))
            layer.add(f"usr/bin/tool{number}-{n}", b"\x7fELF" + os.urandom(2 * MiB), 0o755)
        _fill(layer, rng, per_layer, f"data/layer{number}")
        layer.close()
        image.append(layer.path)
    return {"debian-base": [base.path], f"image-{image_mb}m": image}


def child(paths: list[str]) -> None:
    from portside.scanning.inventory import inventory

    start, cpu = time.perf_counter(), time.process_time()
    with contextlib.ExitStack() as stack:
        handles = [stack.enter_context(Path(p).open("rb")) for p in paths]
        found = inventory((f"sha256:{n:064x}", h) for n, h in enumerate(handles))
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    peak_kib = peak_rss_kib()
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu": cpu,
                "peak_kib": peak_kib,
                "packages": len(found.packages),
                "warnings": len(found.warnings),
            }
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/scan", description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-mb", type=int, default=300)
    parser.add_argument("--image-mb", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="--base-mb 50 --image-mb 128")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child)
        return 0
    if args.quick:
        args.base_mb, args.image_mb = 50, 128
    rows: list[dict[str, float | str]] = []
    busy = cpu_busy()
    with tempfile.TemporaryDirectory(prefix="portside-scanbench-") as tmp:
        log(f"generating layers in {tmp} ...")
        images = build(Path(tmp), args.base_mb, args.image_mb, args.layers)
        baseline = _run(["-c", "import portside.scanning.inventory"])
        for name, paths in images.items():
            compressed = sum(p.stat().st_size for p in paths)
            log(f"scanning {name} ({len(paths)} layers, {compressed / MiB:.0f} MiB compressed) ...")
            result: dict[str, float | str] = {"name": name, "layers": len(paths)}
            result.update(_run(["-m", "bench.scanbench", "--child", *map(str, paths)]))
            result["compressed"] = compressed
            rows.append(result)
    machine = describe("true")
    print(
        f"machine: {machine['cpu']}, {machine['usable_cores']} cores, {machine['memory']}, "
        f"Python {machine['python']}; CPUs {busy:.0%} busy before, load {loadavg()}"
    )
    print(f"python + scanner imported, idle: {baseline['peak_kib'] / 1024:.0f} MB peak RSS\n")
    print(
        "| image | layers | compressed MB | seconds | CPU s | MB/s (compressed) "
        "| peak RSS MB | packages |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        mb, seconds = float(r["compressed"]) / 1e6, float(r["seconds"])
        print(
            f"| {r['name']} | {r['layers']} | {mb:.0f} | {seconds:.2f} | {float(r['cpu']):.2f} "
            f"| {mb / seconds:.0f} | {float(r['peak_kib']) / 1024:.0f} | {r['packages']} |"
        )
    return 0


PEAK = "import json, bench.scanbench as b; print(json.dumps({'peak_kib': b.peak_rss_kib()}))"


def peak_rss_kib() -> int:
    """This process's peak RSS since its exec (VmHWM; ru_maxrss would include the RSS
    the parent had when it forked)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _run(arguments: list[str]) -> dict[str, float]:
    """A child Python's last line of JSON output (its figures)."""
    if arguments[0] == "-c":
        arguments = ["-c", f"{arguments[1]}; {PEAK}"]
    out = subprocess.run([sys.executable, *arguments], check=True, capture_output=True, text=True)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


if __name__ == "__main__":
    sys.exit(main())
