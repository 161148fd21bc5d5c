"""The side-by-side table (Lightbox / Orthanc ratio, and which direction is better) and its JSON copy."""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class Figure:
    key: str
    label: str
    unit: str  # "/s" (higher is better) or "ms" (lower is better)
    values: dict[str, dict] = field(default_factory=dict)  # target name -> measured dict
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def higher_is_better(self) -> bool:
        return self.unit != "ms"

    def headline(self, target: str) -> float | None:
        v = self.values.get(target)
        if not v:
            return None
        return v["per_second"] if self.higher_is_better else v["median_ms"]

    def cell(self, target: str) -> str:
        if target in self.errors:
            msg = self.errors[target]
            return "n/a" if msg.startswith("n/a") else "error"
        v = self.values.get(target)
        if not v:
            return "-"
        if self.higher_is_better:
            return f"{v['per_second']:.0f}{self.unit}" if v["per_second"] >= 10 else f"{v['per_second']:.1f}{self.unit}"
        return f"{_ms(v['median_ms'])} / {_ms(v['p95_ms'])} ms"

    def ratio(self, target: str, baseline: str) -> str:
        a, b = self.headline(target), self.headline(baseline)
        if a is None or b is None or b == 0 or a == 0:
            return "-"
        r = a / b
        wins = r > 1 if self.higher_is_better else r < 1
        factor = max(r, 1 / r)
        if math.isclose(factor, 1, rel_tol=0.05):
            return f"{r:.2f} (even)"
        return f"{r:.2f} ({'Lightbox' if wins else 'Orthanc'} {factor:.1f}x better)"


def _ms(value: float) -> str:
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _rows(figures: list[Figure], targets: list[str], pairs: list[tuple[str, str]], sep: str) -> list[list[str]]:
    """The header, then one row per figure: each target's cell, the ratio of each (target, baseline) pair."""
    rows = [["figure", *targets, *[f"{t}{sep}{b}" for t, b in pairs], "better"]]
    for f in figures:
        rows.append([f.label, *[f.cell(t) for t in targets], *[f.ratio(t, b) for t, b in pairs],
                     "higher" if f.higher_is_better else "lower"])
    return rows


def table(figures: list[Figure], targets: list[str], pairs: list[tuple[str, str]]) -> str:
    """Plain text, columns aligned."""
    rows = _rows(figures, targets, pairs, "/")
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, r in enumerate(rows):
        lines.append(" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
        if n == 0:
            lines.append("-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown(figures: list[Figure], targets: list[str], pairs: list[tuple[str, str]]) -> str:
    head, *rows = _rows(figures, targets, pairs, " / ")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def errors(figures: list[Figure]) -> str:
    lines = [f"  {f.label} [{t}]: {msg}" for f in figures for t, msg in f.errors.items() if not msg.startswith("n/a")]
    return ("errors:\n" + "\n".join(lines)) if lines else ""


def write_json(path: Path, meta: dict, figures: list[Figure]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"meta": meta, "figures": [asdict(f) for f in figures]}, indent=2, default=lambda o: sorted(o) if isinstance(o, set) else str(o)))
