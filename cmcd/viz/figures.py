"""Benchmark figures: one small description, drawn twice, as a PNG (matplotlib) for the README
and as interactive plotly (HTML files, and the app's plots)."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from pathlib import Path

from cmcd.data.cache import atomic_write_bytes

# matplotlib's ten, then four more: the paper benchmark draws eleven methods in one legend
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf", "#000000", "#393b79", "#e7969c", "#637939")


@dataclass
class Series:
    name: str
    x: list[float]
    y: list[float]
    error: list[float] | None = None  # +- around y (a standard deviation)
    mode: str = "lines"  # lines (with markers) | markers | fit (a thin dashed line)
    hover: list[str] | None = None


@dataclass
class Panel:
    title: str
    x_title: str
    y_title: str
    series: list[Series] = field(default_factory=list)
    x_log: bool = False


def _colours(panels: list[Panel]) -> dict[str, str]:
    names = dict.fromkeys(s.name for panel in panels for s in panel.series)
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}


def _grid(count: int, columns: int) -> tuple[int, int]:
    columns = min(columns, count)
    return math.ceil(count / columns), columns


def _log_ticks(panel: Panel) -> tuple[list[float], list[str]]:
    """A log axis is labelled at the values measured (0.25, 0.5, 1, ...), not at powers of ten:
    (tick values, their labels)."""
    values = sorted({x for s in panel.series for x in s.x})
    return values, [f"{x:g}" for x in values]


def plotly_figure(panels: list[Panel], title: str, columns: int = 2):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    rows, columns = _grid(len(panels), columns)
    figure = make_subplots(rows=rows, cols=columns, subplot_titles=[p.title for p in panels],
                           horizontal_spacing=0.08, vertical_spacing=0.12)
    colours, shown = _colours(panels), set()
    for i, panel in enumerate(panels):
        row, col = divmod(i, columns)
        for s in panel.series:
            style = {"color": colours[s.name]}
            figure.add_trace(go.Scatter(
                x=s.x, y=s.y, name=s.name, legendgroup=s.name, showlegend=s.name not in shown,
                mode={"lines": "lines+markers", "markers": "markers", "fit": "lines"}[s.mode],
                line={**style, "dash": "dash", "width": 1} if s.mode == "fit" else style,
                marker=style, text=s.hover, hoverinfo="text+x+y" if s.hover else "name+x+y",
                error_y={"type": "data", "array": s.error, "visible": True} if s.error else None,
            ), row=row + 1, col=col + 1)
            shown.add(s.name)
        ticks = dict(zip(("tickvals", "ticktext"), _log_ticks(panel), strict=True)) if panel.x_log else {}
        figure.update_xaxes(title_text=panel.x_title, type="log" if panel.x_log else "linear",
                            **ticks, row=row + 1, col=col + 1)
        figure.update_yaxes(title_text=panel.y_title, row=row + 1, col=col + 1)
    figure.update_layout(title=title, height=max(360, 320 * rows), template="plotly_white",
                         margin={"l": 50, "r": 20, "t": 80, "b": 40})
    return figure


def png_bytes(panels: list[Panel], title: str, columns: int = 2) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, columns = _grid(len(panels), columns)
    figure, axes = plt.subplots(rows, columns, figsize=(max(5 * columns, 9), 3.6 * rows + 0.6), squeeze=False)
    colours = _colours(panels)
    for axis in axes.flat[len(panels):]:
        axis.set_visible(False)
    for axis, panel in zip(axes.flat, panels, strict=False):  # spare axes are hidden above
        for s in panel.series:
            if s.mode == "fit":
                axis.plot(s.x, s.y, "--", color=colours[s.name], linewidth=1, label=s.name)
            else:
                axis.errorbar(s.x, s.y, yerr=s.error, color=colours[s.name], label=s.name,
                              marker="o", markersize=3, capsize=2, linewidth=1.2,
                              linestyle="-" if s.mode == "lines" else "none")
        axis.set_title(panel.title, fontsize=10)
        axis.set_xlabel(panel.x_title)
        axis.set_ylabel(panel.y_title)
        if panel.x_log:
            axis.set_xscale("log")
            axis.set_xticks(*_log_ticks(panel))
            axis.minorticks_off()
        axis.grid(alpha=0.3)
    handles, labels = {}, []
    for axis in axes.flat:
        for handle, label in zip(*axis.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    labels = list(handles)
    figure.legend([handles[k] for k in labels], labels, loc="lower center", ncol=min(len(labels), 5),
                  fontsize=8, frameon=False)
    figure.suptitle(title)
    figure.tight_layout(rect=(0, 0.05 * math.ceil(len(labels) / 5) / rows, 1, 1))
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return buffer.getvalue()


def save(panels: list[Panel], title: str, stem: Path, columns: int = 2) -> list[Path]:
    """stem.png and stem.html; the HTML reads plotly.min.js from its folder, so it works offline."""
    stem = Path(stem)
    png, html = stem.with_suffix(".png"), stem.with_suffix(".html")
    atomic_write_bytes(png, png_bytes(panels, title, columns))
    page = plotly_figure(panels, title, columns).to_html(include_plotlyjs="directory", full_html=True)
    atomic_write_bytes(html, page.encode())
    _write_plotly_js(stem.parent)
    return [png, html]


def _write_plotly_js(folder: Path) -> None:
    from plotly.offline import get_plotlyjs

    target = Path(folder) / "plotly.min.js"
    script = get_plotlyjs().encode()
    if not target.exists() or target.read_bytes() != script:
        atomic_write_bytes(target, script)
