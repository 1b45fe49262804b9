"""Online garbage collection racing real pushes: skopeo pushes images (sharing base
layers, overwriting tags, some deleted right after) while `portside gc --grace-period 0
--delete-untagged` sweeps in a loop in its own process. A refused push may only be a
clean MANIFEST_BLOB_UNKNOWN (and succeeds when retried); afterwards `portside fsck` is
clean, every image still tagged pulls back byte for byte, and the garbage is gone.

Meanwhile a third thread pushes tiny manifests over plain HTTP, nearly all of them
untagged at once. Each sweep then has a hundred or more manifests to delete, one
transaction each, which holds its run phase (between the plan and the re-checked link
and blob deletions) open for a second or more, so skopeo's manifest PUTs land inside it.
Without it a sweep plans and deletes within milliseconds: with the re-check in
`GarbageCollector._delete_links` removed, the test passed; with the noise, fsck caught
it in every run tried.

The test starts its own `portside serve` on a private data directory: with a zero grace
period GC would delete other tests' content from the session registry, and fsck needs a
store whose every push is known.
"""

from __future__ import annotations

import random
import re
import secrets
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from portside.digest import Digest
from portside.storage import paths
from tests.durability.server import (
    PORTSIDE,
    ServerProcess,
    error_codes,
    image_manifest,
    portside_env,
    push_monolithic,
    put_manifest,
    run_fsck,
)

from .conftest import attach_log_on_failure, containers_config
from .images import (
    Entry,
    Image,
    Layer,
    Layout,
    assert_layout_has_image,
    dumps,
    make_layer,
    sha256,
    write_layout,
)
from .tooling import (
    MANIFEST_ACCEPT,
    OCI_CONFIG,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    Skopeo,
    require_binary,
)

pytestmark = pytest.mark.clients

IMAGES = 24
REPOS = 4  # image n goes to gc/r{n % REPOS}
SHARED_BASES = 3  # even-numbered images use one of these base layers; odd ones their own
# A later image takes an earlier image's tag (same repository), leaving it untagged.
OVERWRITES = {4: 0, 9: 5, 14: 10, 19: 15, 22: 18}
DELETED = frozenset({3, 11, 17})  # deleted by digest through the API right after the push
MIN_SWEEPS = 5  # complete GC runs that must fall inside the push phase
PUSH_PHASE_LIMIT = 60.0  # seconds: churn pushes stop here even if sweeps are too slow
MAX_ATTEMPTS = 10  # skopeo runs per image before a refused push fails the test
NOISE_REPO = "gc/noise"
NOISE_PAUSE = 0.02  # seconds between the noise thread's rounds
NOISE_BATCH = 4  # untagged manifests per round, each deleted by GC in a transaction of its own
RACE_REFUSAL = re.compile(r"MANIFEST_BLOB_UNKNOWN|blob unknown", re.IGNORECASE)


# -- images ------------------------------------------------------------------------------


def random_layer(seed: str, name: str, kib: int) -> Layer:
    rng = random.Random(f"{seed}/{name}")
    return make_layer(
        [
            Entry(f"{name}/seed", f"{seed}\n".encode()),
            Entry(f"{name}/random.bin", rng.randbytes(kib * 1024)),
        ]
    )


def compose_image(seed: str, layers: tuple[Layer, ...]) -> Image:
    """An OCI image of the given layers, with a config and manifest unique to `seed`."""
    config = dumps(
        {
            "created": "2024-01-01T00:00:00Z",
            "architecture": "amd64",
            "os": "linux",
            "config": {"Labels": {"org.example.portside.seed": seed}},
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        }
    )
    manifest = dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
            "layers": [
                {"mediaType": OCI_LAYER_GZIP, "digest": layer.digest, "size": len(layer.gz)}
                for layer in layers
            ],
            "annotations": {"org.example.portside.seed": seed},
        }
    )
    return Image(config=config, layers=layers, manifest=manifest, architecture="amd64", seed=seed)


@dataclass(frozen=True)
class Push:
    """One image pushed to `repo:tag`, deleted by digest afterwards when `delete`."""

    name: str
    repo: str
    tag: str
    image: Image
    delete: bool = False


class Images:
    """The images of one run: content unique to the run (containers/image caches layers
    host-wide), three-layer images whose base layer is shared by several images."""

    def __init__(self, nonce: str) -> None:
        self.nonce = nonce
        self.bases = [random_layer(nonce, f"base{n}", 24) for n in range(SHARED_BASES)]

    def image(self, name: str, number: int) -> Image:
        seed = f"gc-race/{name}#{self.nonce}"
        shared = number % 2 == 0
        base = self.bases[number % SHARED_BASES] if shared else random_layer(seed, "base", 24)
        return compose_image(
            seed, (base, random_layer(seed, "app", 40), random_layer(seed, "top", 1))
        )

    def planned(self) -> list[Push]:
        pushes: list[Push] = []
        for number in range(IMAGES):
            repo = f"gc/r{number % REPOS}"
            tag = f"v{OVERWRITES.get(number, number)}"
            name = f"img{number}"
            pushes.append(Push(name, repo, tag, self.image(name, number), number in DELETED))
        for new, old in OVERWRITES.items():  # the plan itself must make sense
            assert pushes[new].repo == pushes[old].repo
            assert not {new, old} & DELETED
        return pushes

    def churn(self, number: int) -> Push:
        """Extra pushes while fewer than MIN_SWEEPS sweeps have run: each takes the `churn`
        tag of its repository from the previous one, and some are deleted."""
        name = f"churn{number}"
        repo = f"gc/r{number % REPOS}"
        return Push(name, repo, "churn", self.image(name, number), number % 5 == 2)


# -- the race ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Sweep:
    started: float
    ended: float
    returncode: int
    output: str


def run_gc(server: ServerProcess) -> Sweep:
    started = time.monotonic()
    data_dir = str(server.data_dir)
    process = subprocess.run(
        [PORTSIDE, "gc", "--grace-period", "0", "--delete-untagged", "--data-dir", data_dir],
        env=portside_env(server.database_url),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return Sweep(started, time.monotonic(), process.returncode, process.stdout + process.stderr)


@dataclass
class Sweeper:
    """`portside gc` again and again in a thread until stopped (or a run fails)."""

    server: ServerProcess
    sweeps: list[Sweep] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    errors: list[BaseException] = field(default_factory=list)
    thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._loop, name="gc-sweeper", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        try:
            while not self.stop.is_set():
                sweep = run_gc(self.server)
                self.sweeps.append(sweep)
                if sweep.returncode != 0:
                    return
        except BaseException as error:  # reported by the test thread
            self.errors.append(error)

    def finish(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=180)
            assert not self.thread.is_alive(), "portside gc did not finish"

    def completed_since(self, moment: float) -> list[Sweep]:
        return [s for s in list(self.sweeps) if s.started >= moment]


@dataclass
class GarbageMaker:
    """Over HTTP in a thread until stopped: upload a tiny config blob, push NOISE_BATCH
    untagged manifests using it, then one to NOISE_REPO:latest (untagging the one
    before). A refused PUT must be MANIFEST_BLOB_UNKNOWN."""

    url: str
    nonce: str
    acknowledged: list[bytes] = field(default_factory=list)
    tagged: bytes | None = None  # the last manifest pushed to `latest`
    refused: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    errors: list[BaseException] = field(default_factory=list)
    thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._loop, name="gc-noise", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        try:
            with httpx.Client(base_url=self.url, timeout=30) as client:
                number = 0
                while not self.stop.wait(NOISE_PAUSE):
                    number += 1
                    config = f'{{"noise": {number}, "run": "{self.nonce}"}}'.encode()
                    response = push_monolithic(client, NOISE_REPO, config)
                    assert response.status_code == 201, (response.status_code, response.text)
                    for copy in range(NOISE_BATCH + 1):
                        manifest = image_manifest(config, [], annotation=f"{number}.{copy}")
                        tag = "latest" if copy == NOISE_BATCH else None
                        if not self._put(client, manifest, tag):
                            break
        except BaseException as error:  # reported by the test thread
            self.errors.append(error)

    def _put(self, client: httpx.Client, manifest: bytes, tag: str | None) -> bool:
        response = put_manifest(client, NOISE_REPO, tag or sha256(manifest), manifest)
        if response.status_code == 201:
            self.acknowledged.append(manifest)
            if tag is not None:
                self.tagged = manifest
            return True
        assert response.status_code == 400, (response.status_code, response.text)
        assert error_codes(response) == ["MANIFEST_BLOB_UNKNOWN"], response.text
        self.refused += 1
        return False

    def finish(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=60)
            assert not self.thread.is_alive(), "the noise pushes did not stop"


@dataclass
class Pusher:
    """Pushes with skopeo, retrying pushes refused because a sweep took their blobs."""

    skopeo: Skopeo
    host: str
    http: httpx.Client
    tmp: Path
    acknowledged: list[Push] = field(default_factory=list)
    refusals: list[tuple[str, str]] = field(default_factory=list)  # (push, skopeo stderr)

    def push(self, push: Push) -> None:
        layout = write_layout(self.tmp / "push" / push.name, {push.name: push.image})
        digest_file = self.tmp / "push" / f"{push.name}.digest"
        for _attempt in range(MAX_ATTEMPTS):
            result = self.skopeo(
                "copy", "--quiet", "--dest-tls-verify=false", Skopeo.EXACT,
                "--digestfile", digest_file,
                f"oci:{layout}:{push.name}", f"docker://{self.host}/{push.repo}:{push.tag}",
                check=False, timeout=120,
            )  # fmt: skip
            if result.returncode == 0:
                assert digest_file.read_text().strip() == push.image.digest
                self.acknowledged.append(push)
                break
            assert RACE_REFUSAL.search(result.stderr), (
                f"push of {push.name} failed for a reason other than a GC race:\n"
                f"{result.describe()}"
            )
            self.refusals.append((push.name, result.stderr))
        else:
            raise AssertionError(f"{push.name} refused {MAX_ATTEMPTS} times:\n{result.describe()}")
        if push.delete:
            response = self.http.delete(f"/v2/{push.repo}/manifests/{push.image.digest}")
            assert response.status_code == 202, (response.status_code, response.text)


def expected_tags(pushes: list[Push]) -> dict[tuple[str, str], Push]:
    """(repo, tag) -> the push it points to after all pushes and deletions."""
    tags: dict[tuple[str, str], Push] = {}
    for push in pushes:
        tags[(push.repo, push.tag)] = push
        if push.delete:
            del tags[(push.repo, push.tag)]
    return tags


def image_blobs(image: Image) -> set[str]:
    return set(image.blobs())


# -- fixtures ----------------------------------------------------------------------------


@pytest.fixture
def skopeo(tmp_path: Path) -> Skopeo:
    """skopeo with private configuration; every command passes --*-tls-verify=false."""
    conf = tmp_path / "containers-conf"
    conf.mkdir()
    return Skopeo(require_binary("skopeo"), containers_config(conf, insecure=None))


@pytest.fixture
def gc_server(
    request: pytest.FixtureRequest, tmp_path: Path, database_url: str
) -> Iterator[ServerProcess]:
    """A Portside of the test's own, with no job worker (so `portside gc` runs every GC
    job itself)."""
    (tmp_path / "data").mkdir()
    (tmp_path / "logs").mkdir()
    server = ServerProcess(
        data_dir=tmp_path / "data",
        database_url=database_url,
        log_dir=tmp_path / "logs",
        env={"PORTSIDE_JOBS__WORKERS": "0"},
    )
    attach_log_on_failure(
        request.config, "gc_server", "portside (gc race) log (tail)", server.log_tail
    )
    try:
        yield server.start()
    finally:
        server.stop()


# -- the test ----------------------------------------------------------------------------


def test_pushes_racing_gc_sweeps_stay_complete_and_garbage_goes(
    skopeo: Skopeo, gc_server: ServerProcess, tmp_path: Path
) -> None:
    images = Images(secrets.token_hex(4))
    host = f"127.0.0.1:{gc_server.port}"
    with gc_server.client(timeout=30) as http:
        pusher = Pusher(skopeo, host, http, tmp_path)
        sweeper = Sweeper(gc_server)
        noise = GarbageMaker(gc_server.url, images.nonce)
        pushes = images.planned()
        try:
            push_start = time.monotonic()
            noise.start()
            sweeper.start()
            for push in pushes:
                pusher.push(push)
            # Sweeps take seconds (each is a new process); keep pushing until enough ran.
            while len(sweeper.completed_since(push_start)) < MIN_SWEEPS:
                if sweeper.errors or (sweeper.sweeps and sweeper.sweeps[-1].returncode != 0):
                    break
                if time.monotonic() - push_start > PUSH_PHASE_LIMIT:
                    break
                pushes.append(images.churn(len(pushes) - IMAGES))
                pusher.push(pushes[-1])
            push_end = time.monotonic()
        finally:
            noise.stop.set()
            sweeper.stop.set()
            noise.finish()
            sweeper.finish()
        assert not noise.errors, noise.errors
        assert not sweeper.errors, sweeper.errors
        for sweep in sweeper.sweeps:
            assert sweep.returncode == 0, sweep.output
        during = [s for s in sweeper.sweeps if s.started >= push_start and s.ended <= push_end]
        assert len(during) >= MIN_SWEEPS, f"only {len(during)} GC runs overlapped the pushes"
        assert [p.name for p in pusher.acknowledged] == [p.name for p in pushes]
        swept = "".join(s.output for s in during)
        collected = [p.name for p in pushes if f"manifest {p.repo}@{p.image.digest}:" in swept]
        assert collected, "no sweep during the pushes collected an image skopeo pushed"

        final = run_gc(gc_server)
        assert final.returncode == 0, final.output
        fsck = run_fsck(gc_server.data_dir, gc_server.database_url)
        assert fsck.returncode == 0, fsck.stdout + fsck.stderr
        assert "fsck: clean" in fsck.stdout, fsck.stdout
        assert gc_server.internal_errors() == []

        tags = expected_tags(pushes)
        survivors = {push.name: push for push in tags.values()}
        garbage = [push for push in pushes if push.name not in survivors]
        assert len(garbage) >= len(OVERWRITES) + len(DELETED)
        check_survivors_pull_back(skopeo, host, http, tags, tmp_path)
        check_garbage_is_gone(http, gc_server, garbage, list(survivors.values()))
        check_noise(http, noise)


def check_survivors_pull_back(
    skopeo: Skopeo,
    host: str,
    http: httpx.Client,
    tags: dict[tuple[str, str], Push],
    tmp_path: Path,
) -> None:
    listed: dict[str, set[str]] = {}
    for repo, tag in tags:
        listed.setdefault(repo, set()).add(tag)
    for repo, names in listed.items():
        response = http.get(f"/v2/{repo}/tags/list")
        assert response.status_code == 200, (repo, response.text)
        assert set(response.json()["tags"]) == names, repo
    layout = tmp_path / "pulled"
    for (repo, tag), push in tags.items():
        ref = f"{repo.replace('/', '-')}-{tag}"
        skopeo.pull_layout(f"{host}/{repo}:{tag}", layout, ref)
        assert_layout_has_image(Layout(layout), push.image, ref)


def check_garbage_is_gone(
    http: httpx.Client, server: ServerProcess, garbage: list[Push], survivors: list[Push]
) -> None:
    kept_anywhere = set().union(*(image_blobs(p.image) for p in survivors))
    storage = server.data_dir / "storage"

    def stored(digest: str) -> bool:
        return (storage / paths.blob_path(Digest.parse(digest))).is_file()

    assert all(stored(digest) for digest in kept_anywhere)
    for push in garbage:
        response = http.head(
            f"/v2/{push.repo}/manifests/{push.image.digest}", headers={"Accept": MANIFEST_ACCEPT}
        )
        assert response.status_code == 404, f"{push.name} ({push.repo}) survived GC"
        kept_here = set().union(*(image_blobs(p.image) for p in survivors if p.repo == push.repo))
        for digest in image_blobs(push.image) - kept_here:
            response = http.head(f"/v2/{push.repo}/blobs/{digest}")
            assert response.status_code == 404, f"{push.repo} still links {digest}"
        for digest in image_blobs(push.image) - kept_anywhere:
            assert not stored(digest), f"blob {digest} of {push.name} still stored"


def check_noise(http: httpx.Client, noise: GarbageMaker) -> None:
    """The tag holds the last manifest pushed to it; every other one was collected."""
    assert noise.tagged is not None, "no noise manifest was tagged"
    response = http.get(f"/v2/{NOISE_REPO}/manifests/latest", headers={"Accept": MANIFEST_ACCEPT})
    assert response.status_code == 200, response.text
    assert response.content == noise.tagged
    for manifest in noise.acknowledged:
        if manifest == noise.tagged:
            continue
        digest = sha256(manifest)
        response = http.head(
            f"/v2/{NOISE_REPO}/manifests/{digest}", headers={"Accept": MANIFEST_ACCEPT}
        )
        assert response.status_code == 404, f"untagged {digest} survived GC"
