"""Charts drawn by the service as inline SVG (matplotlib, Agg backend): nothing is fetched from outside.

Used by the pages (the explanation page) and by the population validation report, which is written
by a command, so they live outside `cds_service.ui`.

matplotlib is imported on first use only, so the CDS endpoints never pay for it.
"""
from __future__ import annotations

import functools
import io
import math
import re
from typing import Sequence

from markupsafe import Markup

RAISE, LOWER, NEUTRAL = "#b3261e", "#1b6ca8", "#666666"


@functools.cache
def _figure_class():
    """matplotlib, configured once per process: Agg (no display), text kept as SVG text, fixed ids."""
    import matplotlib  # lazy: heavy, and only the explanation page draws charts

    matplotlib.use("Agg")
    matplotlib.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "cds-explain", "font.size": 10,
                                "font.family": "DejaVu Sans"})
    from matplotlib.figure import Figure

    return Figure


def _figure(width: float, height: float):
    """A Figure not registered with pyplot: no global figure manager, so threads of a worker can draw at once."""
    return _figure_class()(figsize=(width, height))


def _svg(fig, title: str) -> Markup:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]  # drop the XML prolog and DOCTYPE: the SVG is inlined in HTML
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.S)
    svg = svg.replace("<svg ", f'<svg role="img" aria-label="{_attr(title)}" ', 1)
    return Markup(svg)


def _attr(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def contributions_chart(items: Sequence[tuple[str, float]], title: str) -> Markup:
    """Horizontal bars: each input's contribution to the linear predictor (log-odds / log-hazard)."""
    items = sorted(items, key=lambda kv: abs(kv[1]))
    labels = [k for k, _ in items]
    values = [v for _, v in items]
    fig = _figure(7.2, 0.42 * len(items) + 1.2)
    ax = fig.subplots()
    colours = [RAISE if v > 0 else LOWER if v < 0 else NEUTRAL for v in values]
    ax.barh(range(len(values)), values, color=colours, height=0.6)
    ax.set_yticks(range(len(values)), labels)
    ax.axvline(0, color="#333333", linewidth=0.8)
    span = max([abs(v) for v in values] + [0.1])
    ax.set_xlim(-span * 1.35, span * 1.35)
    for i, v in enumerate(values):
        ax.text(v + (span * 0.03 if v >= 0 else -span * 0.03), i, f"{v:+.2f}", va="center",
                ha="left" if v >= 0 else "right", fontsize=9)
    ax.set_xlabel("contribution to the linear predictor (red raises the risk, blue lowers it)")
    ax.set_title(title, fontsize=11, loc="left")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    return _svg(fig, title)


def calibration_chart(bins: Sequence[tuple[float, float, int | None]] = (), slope: float | None = None,
                      intercept: float | None = None, title: str = "Calibration on the held-out test split") -> Markup:
    """Observed against predicted risk: binned points when given, and the logistic calibration curve
    logit(observed) = intercept + slope * logit(predicted) when the slope and intercept are given."""
    fig, ax = _unit_square("ideal")
    if slope is not None and intercept is not None:
        xs = [i / 200 for i in range(1, 200)]
        ys = [1 / (1 + math.exp(-(intercept + slope * math.log(x / (1 - x))))) for x in xs]
        ax.plot(xs, ys, color=LOWER, linewidth=1.8, label=f"logistic fit (slope {slope:.2f}, intercept {intercept:.2f})")
    if bins:
        sizes = [max(20, min(200, (n or 20) * 2)) for _, _, n in bins]
        ax.scatter([b[0] for b in bins], [b[1] for b in bins], s=sizes, color=RAISE, zorder=3, label="observed, by bin")
    return _finish(fig, ax, title, "predicted risk", "observed frequency", "upper left")


def roc_chart(points: Sequence[Sequence[float]], auroc: float | None, title: str = "ROC curve") -> Markup:
    """True against false positive rate, with the chance diagonal; `points` from the highest threshold down."""
    fig, ax = _unit_square("chance")
    if points:
        label = f"model (AUROC {auroc:.3f})" if auroc is not None else "model"
        ax.plot([x for x, _ in points], [y for _, y in points], color=LOWER, linewidth=1.8, label=label)
    return _finish(fig, ax, title, "false positive rate (1 - specificity)", "true positive rate (sensitivity)", "lower right")


def decision_curve_chart(rows: Sequence[dict], title: str = "Decision curve") -> Markup:
    """Net benefit of acting on the model at each risk threshold, against acting for all and for none."""
    fig = _figure(6.0, 4.2)
    ax = fig.subplots()
    ts = [r["threshold"] for r in rows]
    model = [r["model"] for r in rows]
    ax.plot(ts, model, color=LOWER, linewidth=1.8, label="act when the model's risk ≥ threshold")
    ax.plot(ts, [r["treat_all"] for r in rows], color=RAISE, linewidth=1.2, label="act for everyone")
    ax.axhline(0, color=NEUTRAL, linewidth=1, linestyle="--", label="act for no one")
    top = max([m for m in model if m is not None] + [0.01])
    ax.set_ylim(-top * 0.25, top * 1.15)
    ax.set_xlim(0, max(ts) if ts else 1)
    return _finish(fig, ax, title, "risk threshold", "net benefit", "upper right")


def _unit_square(diagonal: str):
    """A square plot of [0, 1] × [0, 1] with the dashed diagonal (ideal calibration, chance ROC)."""
    fig = _figure(4.6, 4.4)
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], linestyle="--", color=NEUTRAL, linewidth=1, label=diagonal)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    return fig, ax


def _finish(fig, ax, title: str, xlabel: str, ylabel: str, legend: str) -> Markup:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10, loc="left")
    ax.legend(loc=legend, fontsize=8, frameon=False)
    fig.tight_layout()
    return _svg(fig, title)
