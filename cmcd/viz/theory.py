"""The theory benchmark's figure: target error against estimated TV distance, one point per
student, a panel per TV estimate (drawn by `cmcd bench theory` and shown in the app)."""

from __future__ import annotations

from cmcd.eval.results import group
from cmcd.viz import figures

TITLE = "Target error against estimated TV distance"
TV_KINDS = {"tv_distance_head": "TV as the teacher's head sees it",
            "tv_distance": "TV of the embeddings"}


def panels(report: dict) -> list[figures.Panel]:
    """A panel per TV kind: each method's points, and the fitted line, from a theory report."""
    rows = report["points"]
    result = []
    for kind, title in TV_KINDS.items():
        stats = report["summary"][kind]
        panel = figures.Panel(f"{title} (Spearman ρ {stats['spearman_all']})", "estimated TV",
                              "target error (1 - zero-label accuracy)")
        for (method,), chosen in group(rows, "method").items():
            panel.series.append(figures.Series(
                method, [r[kind] for r in chosen], [r["error"] for r in chosen], mode="markers",
                hover=[f"{r['pair']}, gap {r['gap']}, seed {r['seed']}" for r in chosen]))
        if stats["fit"]:
            x = [min(r[kind] for r in rows), max(r[kind] for r in rows)]
            panel.series.append(figures.Series(
                "fitted line", x, [stats["fit"]["slope"] * v + stats["fit"]["intercept"] for v in x],
                mode="fit"))
        result.append(panel)
    return result


def plotly_figure(report: dict):
    return figures.plotly_figure(panels(report), TITLE)
