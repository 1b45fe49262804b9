"""Sizes, durations and repetitions for a full or a quick run."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from bench.payload import GiB, MiB


@dataclass(frozen=True)
class Settings:
    quick: bool
    small_blob: int  # pulled blob, "256 MiB"
    large_blob: int  # pulled blob, "1 GiB"
    pull_reps: int
    range_length: int
    range_clients: int
    range_seconds: float
    push_size: int
    push_reps: int
    rss_push_size: int
    wrk_seconds: float
    wrk_warmup_seconds: float
    wrk_reps: int
    skopeo_layers: int
    skopeo_bytes: int
    skopeo_reps: int

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


FULL = Settings(
    quick=False,
    small_blob=256 * MiB,
    large_blob=1 * GiB,
    pull_reps=3,
    range_length=1 * MiB,
    range_clients=4,
    range_seconds=8.0,
    push_size=1 * GiB,
    push_reps=2,
    rss_push_size=1 * GiB,
    wrk_seconds=10.0,
    wrk_warmup_seconds=2.0,
    wrk_reps=1,
    skopeo_layers=5,
    skopeo_bytes=200 * 1000 * 1000,
    skopeo_reps=2,
)

QUICK = Settings(
    quick=True,
    small_blob=32 * MiB,
    large_blob=128 * MiB,
    pull_reps=1,
    range_length=1 * MiB,
    range_clients=4,
    range_seconds=2.0,
    push_size=128 * MiB,
    push_reps=1,
    rss_push_size=256 * MiB,
    wrk_seconds=3.0,
    wrk_warmup_seconds=1.0,
    wrk_reps=1,
    skopeo_layers=5,
    skopeo_bytes=20 * 1000 * 1000,
    skopeo_reps=1,
)


def human_size(n: int) -> str:
    if n >= GiB and n % GiB == 0:
        return f"{n // GiB} GiB"
    if n >= MiB and n % MiB == 0:
        return f"{n // MiB} MiB"
    return f"{n / 1e6:.0f} MB"
