"""The figures: each one is sampled against every server, same sequence, same data."""

from __future__ import annotations

import itertools
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

from bench import client, loadgen, policy, skopeobench
from bench.client import MANIFEST_ACCEPT, OCI_MANIFEST
from bench.payload import Payload, small_blob
from bench.procmon import RssSampler
from bench.servers import Server
from bench.settings import Settings, human_size

PULL_REPO = "bench/pull"
PUSH_REPO = "bench/push"
SMALL_REPO = "bench/small"
SMALL_TAG = "latest"
# The same small image in a project with the "only signed images" pull policy (Portside:
# signed with a trusted cosign key; Distribution has no policies and serves it plainly).
SIGNED_PROJECT = "signed"
SIGNED_REPO = f"{SIGNED_PROJECT}/small"
# ... and in a project that prevents vulnerable images (Portside: prevent_vulnerable, a
# finished scan with no findings; Distribution serves it plainly).
SCANNED_PROJECT = "scanned"
SCANNED_REPO = f"{SCANNED_PROJECT}/small"


@dataclass
class Sample:
    value: float
    extra: dict[str, object] = field(default_factory=dict)


@dataclass
class SmallImage:
    config: bytes
    config_digest: str
    layer: bytes
    layer_digest: str
    manifest: dict[str, object]


@dataclass
class Context:
    settings: Settings
    workdir: Path
    nonces: itertools.count[int] = field(default_factory=lambda: itertools.count(1000))
    pull_small: Payload | None = None
    pull_large: Payload | None = None
    image: SmallImage | None = None
    skopeo_layouts: dict[int, Path] = field(default_factory=dict)
    skopeo_pushed: set[tuple[str, int]] = field(default_factory=set)
    signed: bool = False  # seed SIGNED_REPO (policy.seed_signed)
    scanned: bool = False  # seed SCANNED_REPO (policy.seed_scanned)

    def payload(self, size: int) -> Payload:
        return Payload(size, next(self.nonces))


class Figure(ABC):
    key: str
    unit: str
    higher_is_better = True
    goal_ratio: float | None = None  # Portside advantage wanted (see README)
    goal_max: float | None = None  # absolute ceiling for Portside's value
    seeds: frozenset[str] = frozenset()
    # Runs against the token-auth pair (bench.tokenauth) instead of the open servers.
    token_auth = False

    @abstractmethod
    def label(self, s: Settings) -> str: ...

    def reps(self, s: Settings) -> int:
        return 1

    def prepare(self, ctx: Context, rep: int) -> None:  # noqa: B027 - optional hook
        """Work shared by all servers for one repetition (not timed)."""

    @abstractmethod
    def sample(self, ctx: Context, server: Server, rep: int) -> Sample: ...

    def note(self, name: str, extra: dict[str, object]) -> str | None:
        """An extra line under the table for one server's last sample, if useful."""
        return None

    def aggregate(self, values: list[float]) -> float:
        ordered = sorted(values)
        mid = len(ordered) // 2
        if len(ordered) % 2:
            return ordered[mid]
        return (ordered[mid - 1] + ordered[mid]) / 2


class Pull(Figure):
    unit = "MB/s"
    goal_ratio = 1.0
    seeds = frozenset({"pull"})

    def __init__(self, key: str, large: bool, clients: int) -> None:
        self.key = key
        self.large = large
        self.clients = clients

    def label(self, s: Settings) -> str:
        size = human_size(s.large_blob if self.large else s.small_blob)
        who = "1 client" if self.clients == 1 else f"{self.clients} concurrent clients"
        return f"blob pull {size}, {who}"

    def reps(self, s: Settings) -> int:
        return s.pull_reps

    def sample(self, ctx: Context, server: Server, rep: int) -> Sample:
        blob = ctx.pull_large if self.large else ctx.pull_small
        assert blob is not None
        nbytes, secs = client.pull_concurrent(server.endpoint, PULL_REPO, blob.digest, self.clients)
        if nbytes != blob.size * self.clients:
            raise client.RegistryError(f"pulled {nbytes} bytes, wanted {blob.size}")
        return Sample(nbytes / secs / 1e6, {"seconds": round(secs, 3)})


class RangeRead(Figure):
    key = "range-1m"
    unit = "req/s"
    goal_ratio = 1.0
    seeds = frozenset({"pull"})

    def label(self, s: Settings) -> str:
        return (
            f"Range GET {human_size(s.range_length)} at random offsets of a "
            f"{human_size(s.large_blob)} blob, {s.range_clients} keep-alive connections"
        )

    def sample(self, ctx: Context, server: Server, rep: int) -> Sample:
        blob = ctx.pull_large
        assert blob is not None
        s = ctx.settings
        reqs, nbytes, secs = client.range_reads(
            server.endpoint,
            PULL_REPO,
            blob.digest,
            blob_size=blob.size,
            length=s.range_length,
            clients=s.range_clients,
            duration=s.range_seconds,
            seed=rep,
        )
        return Sample(reqs / secs, {"MB/s": round(nbytes / secs / 1e6, 1), "requests": reqs})


class Push(Figure):
    unit = "MB/s"
    goal_ratio = 1.8
    modes: ClassVar[dict[str, tuple[str, Callable[[client.Endpoint, str, Payload], None]]]] = {
        "mono": ("monolithic POST + PUT", client.push_monolithic),
        "chunked": ("chunked, 8 MiB PATCHes", client.push_chunked),
        "stream": ("one streamed PATCH, Transfer-Encoding: chunked", client.push_streamed),
    }

    def __init__(self, mode: str) -> None:
        self.key = f"push-{mode}"
        self.mode = mode
        self.blob: Payload | None = None

    def label(self, s: Settings) -> str:
        return f"blob push {human_size(s.push_size)}, {self.modes[self.mode][0]}"

    def reps(self, s: Settings) -> int:
        return s.push_reps

    def prepare(self, ctx: Context, rep: int) -> None:
        # Fresh content every repetition; the same content for every server.
        self.blob = ctx.payload(ctx.settings.push_size)
        _ = self.blob.digest

    def sample(self, ctx: Context, server: Server, rep: int) -> Sample:
        assert self.blob is not None
        fn = self.modes[self.mode][1]
        with RssSampler(server.pid) as rss:
            t0 = time.perf_counter()
            fn(server.endpoint, PUSH_REPO, self.blob)
            secs = time.perf_counter() - t0
        return Sample(
            self.blob.size / secs / 1e6,
            {"seconds": round(secs, 3), "peak_rss_mb": round(rss.peak_kib / 1024, 1)},
        )


class PushRss(Figure):
    key = "push-rss"
    unit = "MB"
    higher_is_better = False
    goal_max = 200.0

    def label(self, s: Settings) -> str:
        return (
            f"peak RSS (server process tree) during {human_size(s.rss_push_size)} "
            "monolithic + streamed pushes"
        )

    def prepare(self, ctx: Context, rep: int) -> None:
        self.blobs = [ctx.payload(ctx.settings.rss_push_size) for _ in range(2)]
        for b in self.blobs:
            _ = b.digest

    def sample(self, ctx: Context, server: Server, rep: int) -> Sample:
        with RssSampler(server.pid, interval=0.02, pss=True) as rss:
            client.push_monolithic(server.endpoint, PUSH_REPO, self.blobs[0])
            client.push_streamed(server.endpoint, PUSH_REPO, self.blobs[1])
        return Sample(
            rss.peak_kib / 1024,
            {
                "processes": rss.processes,
                "rss_at_start_mb": round(rss.first_kib / 1024, 1),
                "rss_growth_mb": round((rss.peak_kib - rss.first_kib) / 1024, 1),
                "pss_at_start_mb": round(rss.first_pss_kib / 1024, 1),
                "peak_pss_mb": round(rss.peak_pss_kib / 1024, 1),
                "lifetime_sum_vmhwm_mb": round(rss.hwm_kib / 1024, 1),
                "samples": rss.samples,
            },
        )

    def note(self, name: str, extra: dict[str, object]) -> str:
        return (
            f"{name}: {extra['processes']} process(es), summed RSS {extra['rss_at_start_mb']}"
            f" MB at start, +{extra['rss_growth_mb']} MB at peak; summed PSS (shared pages"
            f" counted once) {extra['pss_at_start_mb']} -> {extra['peak_pss_mb']} MB"
        )

    def aggregate(self, values: list[float]) -> float:
        return max(values)


class Wrk(Figure):
    unit = "req/s"
    seeds = frozenset({"image"})

    def __init__(
        self,
        key: str,
        what: str,
        *,
        token_auth: bool = False,
        policy: Literal["signed", "scanned"] | None = None,
    ) -> None:
        self.key = key
        self.what = what
        self.token_auth = token_auth
        self.policy = policy
        self.goal_ratio = 15.0 if what == "manifest" else 10.0
        if policy:
            self.seeds = frozenset({"image", policy})

    def label(self, s: Settings) -> str:
        auth = ", bearer token (private repository)" if self.token_auth else ""
        if self.policy == "signed":
            return (
                "manifest GET by tag with a pull policy (Portside: require_signed, a "
                "verified cosign signature), wrk -t2 -c64"
            )
        if self.policy == "scanned":
            return (
                "manifest GET by tag with a pull policy (Portside: prevent_vulnerable, a "
                "finished scan without findings), wrk -t2 -c64"
            )
        if self.what == "manifest":
            return f"manifest GET by tag{auth}, wrk -t2 -c64"
        return f"blob HEAD{auth}, ab -i -k, 2 processes x 32 connections"

    def reps(self, s: Settings) -> int:
        return s.wrk_reps

    def sample(self, ctx: Context, server: Server, rep: int) -> Sample:
        assert ctx.image is not None
        s = ctx.settings
        base = server.endpoint.base_url
        auth = server.endpoint.auth()
        if self.what == "manifest":
            repo = {"signed": SIGNED_REPO, "scanned": SCANNED_REPO}.get(
                self.policy or "", SMALL_REPO
            )
            url = f"{base}/v2/{repo}/manifests/{SMALL_TAG}"
            headers = {"Accept": MANIFEST_ACCEPT, **auth}
            if rep == 0 and s.wrk_warmup_seconds > 0:
                loadgen.run_wrk(url, s.wrk_warmup_seconds, headers)
            r = loadgen.run_wrk(url, s.wrk_seconds, headers)
        else:
            url = f"{base}/v2/{SMALL_REPO}/blobs/{ctx.image.layer_digest}"
            if rep == 0 and s.wrk_warmup_seconds > 0:
                loadgen.run_ab_head(url, s.wrk_warmup_seconds, headers=auth)
            r = loadgen.run_ab_head(url, s.wrk_seconds, headers=auth)
        return Sample(r.requests_per_s, {"requests": r.requests, "latency": r.latency})


def _layout(ctx: Context, rep: int) -> Path:
    if rep not in ctx.skopeo_layouts:
        s = ctx.settings
        path = ctx.workdir / f"image-{rep}"
        skopeobench.make_layout(path, s.skopeo_layers, s.skopeo_bytes)
        ctx.skopeo_layouts[rep] = path
    return ctx.skopeo_layouts[rep]


def _hostport(server: Server) -> str:
    return f"{server.endpoint.host}:{server.endpoint.port}"


class SkopeoPush(Figure):
    key = "skopeo-push"
    unit = "s"
    higher_is_better = False
    goal_ratio = 1.8

    def label(self, s: Settings) -> str:
        return (
            f"skopeo copy oci: -> docker:// ({s.skopeo_layers} layers, "
            f"{s.skopeo_bytes / 1e6:.0f} MB)"
        )

    def reps(self, s: Settings) -> int:
        return s.skopeo_reps

    def prepare(self, ctx: Context, rep: int) -> None:
        # New random layers every repetition, so skopeo's blob-info cache can never
        # offer a cross-repository mount instead of an upload.
        _layout(ctx, rep)

    def sample(self, ctx: Context, server: Server, rep: int) -> Sample:
        secs = skopeobench.push(_layout(ctx, rep), _hostport(server), f"bench/skopeo-{rep}")
        ctx.skopeo_pushed.add((server.name, rep))
        return Sample(secs, {"MB/s": round(ctx.settings.skopeo_bytes / secs / 1e6, 1)})


class SkopeoPull(Figure):
    key = "skopeo-pull"
    unit = "s"
    higher_is_better = False
    goal_ratio = 1.0

    def label(self, s: Settings) -> str:
        return (
            f"skopeo copy docker:// -> oci: ({s.skopeo_layers} layers, "
            f"{s.skopeo_bytes / 1e6:.0f} MB)"
        )

    def reps(self, s: Settings) -> int:
        return s.skopeo_reps

    def prepare(self, ctx: Context, rep: int) -> None:
        _layout(ctx, rep)

    def sample(self, ctx: Context, server: Server, rep: int) -> Sample:
        repo = f"bench/skopeo-{rep}"
        if (server.name, rep) not in ctx.skopeo_pushed:
            skopeobench.push(_layout(ctx, rep), _hostport(server), repo)
            ctx.skopeo_pushed.add((server.name, rep))
        secs = skopeobench.pull(_hostport(server), repo, ctx.workdir / "pulled")
        return Sample(secs, {"MB/s": round(ctx.settings.skopeo_bytes / secs / 1e6, 1)})


FIGURES: list[Figure] = [
    Wrk("manifest-get", "manifest"),
    Wrk("manifest-policy", "manifest", policy="signed"),
    Wrk("manifest-vuln-policy", "manifest", policy="scanned"),
    Wrk("blob-head", "head"),
    Wrk("manifest-token", "manifest", token_auth=True),
    Wrk("head-token", "head", token_auth=True),
    Pull("pull-256m-c1", large=False, clients=1),
    Pull("pull-256m-c8", large=False, clients=8),
    Pull("pull-1g-c1", large=True, clients=1),
    Pull("pull-1g-c8", large=True, clients=8),
    RangeRead(),
    Push("mono"),
    Push("chunked"),
    Push("stream"),
    PushRss(),
    SkopeoPush(),
    SkopeoPull(),
]


def make_seeds(ctx: Context, needed: set[str]) -> None:
    s = ctx.settings
    if "pull" in needed:
        ctx.pull_small = Payload(s.small_blob, 1)
        ctx.pull_large = Payload(s.large_blob, 2)
        _ = ctx.pull_small.digest, ctx.pull_large.digest
    if "image" in needed:
        config, config_digest = small_blob(
            b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
        )
        layer, layer_digest = small_blob(os.urandom(4096))
        manifest: dict[str, object] = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer_digest,
                    "size": len(layer),
                }
            ],
        }
        ctx.image = SmallImage(config, config_digest, layer, layer_digest, manifest)
    ctx.signed = "signed" in needed
    ctx.scanned = "scanned" in needed


def seed_server(ctx: Context, server: Server) -> None:
    """Push the shared fixtures into one registry through the HTTP API (not timed)."""
    ep = server.endpoint
    for blob in (ctx.pull_small, ctx.pull_large):
        if blob is not None:
            client.push_monolithic(ep, PULL_REPO, blob)
    if ctx.image is not None:
        img = ctx.image
        client.push_small(ep, SMALL_REPO, img.config, img.config_digest)
        client.push_small(ep, SMALL_REPO, img.layer, img.layer_digest)
        client.put_manifest(ep, SMALL_REPO, SMALL_TAG, img.manifest)
        status = client.get_ok(ep, f"/v2/{SMALL_REPO}/manifests/{SMALL_TAG}", MANIFEST_ACCEPT)
        if status != 200:
            raise client.RegistryError(f"{server.name}: seeded manifest GET gave {status}")
        if ctx.signed:
            policy.seed_signed(server, SIGNED_REPO, SMALL_TAG, img)
        if ctx.scanned:
            policy.seed_scanned(server, SCANNED_REPO, SMALL_TAG, img)


def sync() -> None:
    """Flush dirty pages so one server's writeback does not land in the next sample."""
    os.sync()


__all__ = ["FIGURES", "Context", "Figure", "Sample", "make_seeds", "seed_server", "sync"]
