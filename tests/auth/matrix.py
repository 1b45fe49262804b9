"""The world the permission-matrix test runs in: a real `portside serve` on a database seeded
before it starts (the admin with the `portside` CLI, everyone else with the services on the
same database), the subjects who call it, and clients that authenticate the way docker
does (challenge, token, bearer) or with Basic credentials on every request.

Subjects (each a user with that role in private project `acme` unless said otherwise):
anonymous, a system admin, project-admin, maintainer, developer, guest, limited-guest, an
outsider with no role, robot `robot$acme+ci` (pull, push), robot `robot$acme+pull` (pull)
and a disabled user (a developer in `acme`, disabled). `pub` is public; `other` is private
with no members, so only the admin sees it.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from portside.auth.accounts import Accounts
from portside.auth.identity import Identity
from portside.auth.policy import Policy
from portside.auth.projects import Projects
from portside.auth.robots import Robots
from portside.auth.roles import Role
from portside.auth.throttle import LoginThrottle
from portside.endpoints.secrets import new_key
from portside.metadata.db import Database
from portside.metadata.engine import make_engine
from tests.conftest import fresh_database
from tests.durability.server import (
    OCI_MANIFEST,
    PORTSIDE,
    ServerProcess,
    image_manifest,
    portside_env,
    sha256,
)
from tests.webhooks.receiver import Receiver, receiving

PASSWORD = "correct-horse-battery"
MATRIX_ENDPOINT = "matrix-peer"  # a registry endpoint (admins only) naming the server
MATRIX_RULE = "matrix-rule"  # a replication rule pushing nothing/** to that endpoint
WRONG_PASSWORD = "wrong-horse-battery-staple"
NEW_USER_PASSWORD = "brand-new-user-passphrase"

# Everything a docker client asks the token endpoint for, in one token per subject.
SCOPES = (
    "repository:acme/app:pull,push,delete",
    "repository:acme/missing:pull",
    "repository:pub/app:pull,push",
    "registry:catalog:*",
)

MODES = ("token", "basic")


@dataclass(frozen=True, slots=True)
class Subject:
    key: str  # the matrix label
    username: str | None  # None: anonymous
    password: str = ""

    @property
    def actor(self) -> str:
        """The name the audit log records for this subject."""
        return self.username or "anonymous"

    def basic(self, password: str | None = None) -> dict[str, str]:
        if self.username is None:
            return {}
        raw = f"{self.username}:{password or self.password}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


ROLE_MEMBERS = {
    "project-admin": ("projectadmin", Role.PROJECT_ADMIN),
    "maintainer": ("maintainer", Role.MAINTAINER),
    "developer": ("developer", Role.DEVELOPER),
    "guest": ("guest", Role.GUEST),
    "limited-guest": ("limitedguest", Role.LIMITED_GUEST),
}
ROBOTS = {
    "robot-ci": ("ci", frozenset({"pull", "push"})),
    "robot-pull": ("pull", frozenset({"pull"})),
}

SUBJECT_KEYS = (
    "anonymous",
    "admin",
    "project-admin",
    "maintainer",
    "developer",
    "guest",
    "limited-guest",
    "outsider",
    "robot-ci",
    "robot-pull",
    "disabled",
)


def seed(database_url: str, data_dir: Path) -> dict[str, Subject]:
    """Accounts, projects, memberships and robots; returns the subjects by key."""
    created = subprocess.run(
        [PORTSIDE, "admin", "create", "admin", "--password-stdin", "--data-dir", str(data_dir)],
        input=PASSWORD + "\n",
        env=portside_env(database_url),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert created.returncode == 0, created.stderr
    subjects = {
        "anonymous": Subject("anonymous", None),
        "admin": Subject("admin", "admin", PASSWORD),
        "outsider": Subject("outsider", "outsider", PASSWORD),
        "disabled": Subject("disabled", "disabled", PASSWORD),
    }
    db = Database(make_engine(database_url))
    try:
        accounts = Accounts(db, LoginThrottle(db, 5, 300))
        projects = Projects(db)
        projects.create("acme", creator="cli")
        projects.create("pub", public=True, creator="cli")
        projects.create("other", creator="cli")
        for key, (username, role) in ROLE_MEMBERS.items():
            accounts.create_user(username, PASSWORD)
            projects.set_member("acme", username, role)
            subjects[key] = Subject(key, username, PASSWORD)
        for username in ("outsider", "someone", "disabled"):
            accounts.create_user(username, PASSWORD)
        projects.set_member("acme", "disabled", Role.DEVELOPER)
        accounts.update_user("disabled", disabled=True)
        operator = Identity("user", "cli", is_admin=True)
        robots = Robots(db, Policy(db))
        for key, (name, actions) in ROBOTS.items():
            robot, secret = robots.create(operator, name, {"acme": actions}, project="acme")
            subjects[key] = Subject(key, robot.name, secret)
    finally:
        db.engine.dispose()
    assert set(subjects) == set(SUBJECT_KEYS)
    return subjects


# --- images ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Image:
    config: bytes
    layer: bytes
    manifest: bytes

    @property
    def digest(self) -> str:
        return sha256(self.manifest)

    @property
    def config_digest(self) -> str:
        return sha256(self.config)


def make_image(label: str, layer: bytes | None = None, config: bytes | None = None) -> Image:
    """A small image whose manifest digest is unique to `label`."""
    config = config or json.dumps({"architecture": "amd64", "os": "linux"}).encode()
    layer = layer or f"layer of {label}".encode()
    return Image(config, layer, image_manifest(config, [layer], annotation=label))


def put_blob(client: httpx.Client, repo: str, data: bytes, headers: dict[str, str]) -> None:
    response = client.post(
        f"/v2/{repo}/blobs/uploads/",
        params={"digest": sha256(data)},
        content=data,
        headers={**headers, "content-type": "application/octet-stream"},
    )
    assert response.status_code == 201, (response.status_code, response.text)


def put_manifest(
    client: httpx.Client, repo: str, reference: str, body: bytes, headers: dict[str, str]
) -> httpx.Response:
    return client.put(
        f"/v2/{repo}/manifests/{reference}",
        content=body,
        headers={**headers, "content-type": OCI_MANIFEST},
    )


def push_image(
    client: httpx.Client, repo: str, tag: str, image: Image, headers: dict[str, str]
) -> str:
    """Push with these (admin) credentials; the manifest digest."""
    put_blob(client, repo, image.config, headers)
    put_blob(client, repo, image.layer, headers)
    response = put_manifest(client, repo, tag, image.manifest, headers)
    assert response.status_code == 201, (response.status_code, response.text)
    return image.digest


def push_sbom(client: httpx.Client, image: Image, headers: dict[str, str]) -> str:
    """An SPDX document as a referrer of `image` in acme/app (as `oras attach` makes
    one); its manifest digest."""
    document = json.dumps({"spdxVersion": "SPDX-2.3", "name": "matrix"}).encode()
    empty = b"{}"
    put_blob(client, "acme/app", empty, headers)
    put_blob(client, "acme/app", document, headers)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/spdx+json",
            "config": {
                "mediaType": "application/vnd.oci.empty.v1+json",
                "digest": sha256(empty),
                "size": len(empty),
            },
            "layers": [
                {
                    "mediaType": "application/spdx+json",
                    "digest": sha256(document),
                    "size": len(document),
                }
            ],
            "subject": {
                "mediaType": OCI_MANIFEST,
                "digest": image.digest,
                "size": len(image.manifest),
            },
        }
    ).encode()
    response = put_manifest(client, "acme/app", sha256(manifest), manifest, headers)
    assert response.status_code == 201, (response.status_code, response.text)
    return sha256(manifest)


# --- the docker token flow -------------------------------------------------------------

_PARAM = re.compile(r'(\w+)="([^"]*)"')


def parse_challenge(header: str) -> dict[str, str]:
    scheme, _, params = header.partition(" ")
    assert scheme == "Bearer", header
    return dict(_PARAM.findall(params))


def docker_login(http: httpx.Client, subject: Subject) -> str | httpx.Response:
    """What docker does: GET /v2/ -> 401 with a challenge -> GET the realm with Basic
    credentials (none when anonymous), the service and the scopes -> a bearer token. The
    token, or the token endpoint's refusal."""
    ping = http.get("/v2/")
    assert ping.status_code == 401, ping.text
    challenge = parse_challenge(ping.headers["www-authenticate"])
    assert challenge["realm"] == str(http.base_url).rstrip("/") + "/auth/token", challenge
    response = http.get(
        challenge["realm"],
        params={"service": challenge["service"], "scope": list(SCOPES)},
        headers=subject.basic(),
    )
    if response.status_code != 200:
        return response
    token = response.json()["token"]
    assert isinstance(token, str)
    assert response.headers["cache-control"] == "no-store"
    check = http.get("/v2/", headers={"Authorization": f"Bearer {token}"})
    assert check.status_code == 200, check.text
    return token


# --- the world -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuditExpectation:
    actor: str
    action: str
    resource: str
    result: str = "success"
    resource_type: str | None = None
    reference: str | None = None  # detail.reference (pushes by tag)


@dataclass
class World:
    server: ServerProcess
    http: httpx.Client  # no cookies: every subject's credentials go with each request
    admin_api: httpx.Client  # the admin's management-API session (no argon2 per check)
    subjects: dict[str, Subject]
    v1: dict[str, Image] = field(default_factory=dict)  # repo -> the image tagged v1
    tokens: dict[str, str | httpx.Response] = field(default_factory=dict)
    # What the audit log must show at the end, and what it must not.
    audited: list[AuditExpectation] = field(default_factory=list)
    not_audited: list[AuditExpectation] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)
    # Webhooks in acme, made by the admin: `webhook` targets `receiver` (answers 200),
    # `dead_end` targets `refuser` (answers 500: its test deliveries are dead).
    receiver: Receiver | None = None
    webhook: int = 0
    dead_end: int = 0
    sbom: str = ""  # an SPDX referrer of acme/app:v1, pushed by the admin

    @property
    def admin(self) -> dict[str, str]:
        return self.subjects["admin"].basic()

    def registry_headers(self, subject: Subject, mode: str) -> dict[str, str] | httpx.Response:
        """Headers for /v2 as this subject: Basic credentials, or a bearer token got
        once per subject through the docker flow; or the token endpoint's refusal."""
        if mode == "basic":
            return subject.basic()
        if subject.key not in self.tokens:
            self.tokens[subject.key] = docker_login(self.http, subject)
        token = self.tokens[subject.key]
        if isinstance(token, httpx.Response):
            return token
        return {"Authorization": f"Bearer {token}"}

    def push_as_admin(self, repo: str, tag: str, label: str) -> str:
        image = make_image(label, layer=self.v1["acme/app"].layer)
        return push_image(self.http, repo, tag, image, self.admin)

    def manifest_status(self, repo: str, reference: str) -> int:
        response = self.http.get(
            f"/v2/{repo}/manifests/{reference}",
            headers={**self.admin, "accept": OCI_MANIFEST},
        )
        return response.status_code

    def audit_entries(self) -> list[dict[str, Any]]:
        """Every audit entry, through the management API as the admin."""
        entries: list[dict[str, Any]] = []
        page = 1
        while True:
            response = self.admin_api.get(
                "/api/v1/audit-logs", params={"page": page, "page_size": 100}
            )
            assert response.status_code == 200, response.text
            batch = response.json()
            entries += batch
            if len(entries) >= int(response.headers["x-total-count"]) or not batch:
                return entries
            page += 1


def seed_webhook(admin_api: httpx.Client, name: str, target: str) -> int:
    response = admin_api.post(
        "/api/v1/projects/acme/webhooks",
        json={"name": name, "target_url": target, "event_types": ["replication.completed"]},
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


@contextmanager
def running_world(root: Path) -> Iterator[World]:
    """Seed a fresh database, start `portside serve` on it (webhooks may target loopback,
    where two receivers listen), push acme/app:v1, pub/app:v1 and other/app:v1 as the
    admin, and make two webhooks in acme."""
    with (
        fresh_database(root) as url,
        receiving() as receiver,
        receiving(fail_first=10**9) as refuser,
    ):
        data_dir = root / "data"
        data_dir.mkdir()
        subjects = seed(url, data_dir)
        log_dir = root / "logs"
        log_dir.mkdir()
        server = ServerProcess(
            data_dir=data_dir,
            database_url=url,
            log_dir=log_dir,
            # The disabled user fails every login on purpose, far more than 5 times.
            env={
                "PORTSIDE_AUTH__THROTTLE__MAX_FAILURES": "100000",
                "PORTSIDE_WEBHOOKS__ALLOW_PRIVATE_TARGETS": "true",
                "PORTSIDE_ENDPOINTS__ALLOW_PRIVATE_TARGETS": "true",
                "PORTSIDE_SECRETS__ENCRYPTION_KEY": new_key(),
                "PORTSIDE_SCANNING__ALLOW_PRIVATE_SCANNERS": "true",
            },
        )
        server.start()
        try:
            with (
                httpx.Client(base_url=server.url, timeout=30) as http,
                httpx.Client(base_url=server.url, timeout=30) as admin_api,
            ):
                signed_in = admin_api.post(
                    "/api/v1/sessions", json={"username": "admin", "password": PASSWORD}
                )
                assert signed_in.status_code == 201, signed_in.text
                admin_api.headers["x-csrf-token"] = signed_in.json()["csrf_token"]
                world = World(server, http, admin_api, subjects)
                world.secrets = {PASSWORD, WRONG_PASSWORD, NEW_USER_PASSWORD} | {
                    subjects[key].password for key in ROBOTS
                }
                for repo in ("acme/app", "pub/app", "other/app"):
                    image = make_image(f"{repo}:v1", layer=os.urandom(64))
                    push_image(http, repo, "v1", image, world.admin)
                    world.v1[repo] = image
                world.receiver = receiver
                world.webhook = seed_webhook(admin_api, "matrix", receiver.url)
                world.dead_end = seed_webhook(admin_api, "dead-end", refuser.url)
                seeded = admin_api.post(
                    "/api/v1/endpoints",
                    json={"name": MATRIX_ENDPOINT, "type": "portside", "url": server.url},
                )
                assert seeded.status_code == 201, seeded.text
                seeded = admin_api.post(
                    "/api/v1/replication/rules",
                    json={
                        "name": MATRIX_RULE,
                        "direction": "push",
                        "endpoint": MATRIX_ENDPOINT,
                        "repositories": "nothing/**",
                    },
                )
                assert seeded.status_code == 201, seeded.text
                # A default scanner, so scans can start (the receiver is no adapter: the
                # scans fail, which is not what the matrix looks at).
                registered = admin_api.post(
                    "/api/v1/scanners",
                    json={"name": "stub", "url": refuser.url, "is_default": True},
                )
                assert registered.status_code == 201, registered.text
                scan = admin_api.post("/api/v1/repositories/acme/app/-/artifacts/v1/scan")
                assert scan.status_code == 202, scan.text
                world.sbom = push_sbom(http, world.v1["acme/app"], world.admin)
                yield world
        finally:
            server.stop()
