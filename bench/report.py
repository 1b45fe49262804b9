"""Markdown table and JSON results."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from bench.figures import Figure
from bench.settings import Settings


@dataclass
class SideResult:
    samples: list[float] = field(default_factory=list)
    extras: list[dict[str, object]] = field(default_factory=list)
    value: float | None = None
    error: str | None = None


@dataclass
class FigureResult:
    figure: Figure
    label: str
    sides: dict[str, SideResult]

    def ratio(self, ours: str, theirs: str) -> float | None:
        """Portside's advantage: > 1 means Portside did better, whichever way is better."""
        a, b = self.sides[ours].value, self.sides[theirs].value
        if a is None or b is None or a <= 0 or b <= 0:
            return None
        return a / b if self.figure.higher_is_better else b / a

    def goal(self) -> str:
        f = self.figure
        if f.goal_max is not None:
            return f"< {f.goal_max:g} {f.unit}"
        if f.goal_ratio is not None:
            return f"≥ {f.goal_ratio:g}×"  # noqa: RUF001
        return ""

    def goal_met(self, ours: str, theirs: str) -> bool | None:
        f = self.figure
        if f.goal_max is not None:
            v = self.sides[ours].value
            return None if v is None else v < f.goal_max
        r = self.ratio(ours, theirs)
        if f.goal_ratio is None or r is None:
            return None
        return r >= f.goal_ratio


def _fmt(v: float | None, err: str | None) -> str:
    if err is not None:
        return "error"
    if v is None:
        return "—"
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def markdown(results: list[FigureResult], names: tuple[str, str]) -> str:
    ours, theirs = names
    lines = [
        f"| figure | {ours} | {theirs} | ratio | goal |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for r in results:
        f = r.figure
        ratio = r.ratio(ours, theirs)
        ratio_s = "—" if ratio is None else f"{ratio:.2f}×"  # noqa: RUF001
        met = r.goal_met(ours, theirs)
        goal = r.goal()
        if goal and met is not None:
            goal += " ✅" if met else " ❌"
        better = "higher" if f.higher_is_better else "lower"
        lines.append(
            f"| {r.label} ({f.unit}, {better} is better) "
            f"| {_fmt(r.sides[ours].value, r.sides[ours].error)} "
            f"| {_fmt(r.sides[theirs].value, r.sides[theirs].error)} "
            f"| {ratio_s} | {goal} |"
        )
    notes = [
        f"- {r.figure.key}: {note}"
        for r in results
        for name, side in r.sides.items()
        if side.extras and (note := r.figure.note(name, side.extras[-1]))
    ]
    if notes:
        lines += ["", "Notes:", *notes]
    errors = [
        f"- {r.figure.key} on {name}: {side.error}"
        for r in results
        for name, side in r.sides.items()
        if side.error
    ]
    if errors:
        lines += ["", "Errors:", *errors]
    return "\n".join(lines)


def to_json(
    path: Path,
    *,
    started: str,
    machine: dict[str, str],
    settings: Settings,
    commands: dict[str, list[str]],
    ceiling: dict[str, float],
    results: list[FigureResult],
    names: tuple[str, str],
) -> None:
    ours, theirs = names
    doc = {
        "started": started,
        "machine": machine,
        "settings": settings.as_dict(),
        "servers": commands,
        "client_ceiling_mb_s": ceiling,
        "figures": [
            {
                "key": r.figure.key,
                "label": r.label,
                "unit": r.figure.unit,
                "higher_is_better": r.figure.higher_is_better,
                "ratio": r.ratio(ours, theirs),
                "goal": r.goal(),
                "goal_met": r.goal_met(ours, theirs),
                "results": {
                    name: {
                        "value": side.value,
                        "samples": side.samples,
                        "extra": side.extras,
                        "error": side.error,
                    }
                    for name, side in r.sides.items()
                },
            }
            for r in results
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")
