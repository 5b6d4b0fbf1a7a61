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

RAISE, LOWER, NEUTRAL = "#b3261e", "#1b6ca8", "#595959"
# Sizes for a narrow EHR side panel: a chart is drawn about as wide as a 400 px panel's content (4 in =
# 288 pt = 384 px), and no text is smaller than 10 pt (13 px), so that scaled to fit it stays ≥ 11 px.
WIDTH_IN, FONT_PT, SMALL_PT = 4.0, 10.5, 10.0
WRAP = 40  # characters of a bar's label per line at that width


@functools.cache
def _figure_class():
    """matplotlib, configured once per process: Agg (no display), text kept as SVG text, fixed ids."""
    import matplotlib  # lazy: heavy, and only the explanation page draws charts

    matplotlib.use("Agg")
    matplotlib.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "cds-explain", "font.size": FONT_PT,
                                "xtick.labelsize": SMALL_PT, "ytick.labelsize": SMALL_PT, "legend.fontsize": SMALL_PT,
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


def contributions_chart(items: Sequence[tuple[str, float, str, bool | None]], title: str, axis: str) -> Markup:
    """One bar per input, largest effect at the top, each under its label: `(label, value, value as text,
    worse)`. `worse` True draws the bar red (towards a worse result), False blue (towards a better one),
    None grey: the page says which is which, so colour never carries the meaning alone. `title` is the
    SVG's accessible name (the page shows it as a heading); `axis` names the unit of the values."""
    import textwrap

    rows = [(textwrap.wrap(label, WRAP) or [""], value, text, worse) for label, value, text, worse in items]
    heights = [0.42 * len(lines) + 0.55 for lines, *_ in rows]
    fig = _figure(WIDTH_IN, sum(heights) * 0.5 + 0.9)
    ax = fig.subplots()
    span = max([abs(v) for _, v, _, _ in rows] + [1e-9])
    left, right = (-span * 1.45, span * 1.45) if any(v < 0 for _, v, _, _ in rows) else (-span * 0.05, span * 1.45)
    y = sum(heights)
    for (lines, value, text, worse), height in zip(rows, heights):
        y -= height
        bar_y = y + 0.3
        colour = NEUTRAL if worse is None else RAISE if worse else LOWER
        ax.barh(bar_y, value, height=0.4, color=colour)
        ax.plot([0, 0], [bar_y - 0.3, bar_y + 0.3], color="#333333", linewidth=0.8)  # the zero line, under bars only
        ax.text(left, bar_y + 0.32, "\n".join(lines), va="bottom", ha="left", fontsize=FONT_PT, linespacing=1.15)
        ax.text(value + (span * 0.03 if value >= 0 else -span * 0.03), bar_y, text, va="center",
                ha="left" if value >= 0 else "right", fontsize=SMALL_PT, fontweight="bold")
    ax.set_xlim(left, right)
    ax.set_ylim(0, sum(heights))
    ax.set_yticks([])
    if all(float(v).is_integer() for _, v, _, _ in rows):  # points: whole-number ticks
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(axis, fontsize=SMALL_PT)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    return _svg(fig, title)


def calibration_chart(bins: Sequence[Sequence[float | int | None]] = (), slope: float | None = None,
                      intercept: float | None = None, title: str = "Calibration") -> Markup:
    """Observed against predicted risk: binned points, with their 95% interval when a bin is given as
    (predicted, observed, n, low, high), and the logistic calibration curve
    logit(observed) = intercept + slope * logit(predicted) when the slope and intercept are given."""
    fig, ax = _unit_square("ideal")
    if slope is not None and intercept is not None:
        xs = [i / 200 for i in range(1, 200)]
        ys = [1 / (1 + math.exp(-(intercept + slope * math.log(x / (1 - x))))) for x in xs]
        ax.plot(xs, ys, color=LOWER, linewidth=1.8, label=f"logistic fit (slope {slope:.2f})")
    if bins:
        points = [(_risk(b[0]), _risk(b[1])) for b in bins]
        with_ci = [(_risk(b[0]), _risk(b[1]), _risk(b[3]), _risk(b[4]))
                   for b in bins if len(b) >= 5 and b[3] is not None and b[4] is not None]
        if with_ci:
            ax.errorbar([p for p, _, _, _ in with_ci], [o for _, o, _, _ in with_ci],
                        yerr=[[o - low for _, o, low, _ in with_ci], [high - o for _, o, _, high in with_ci]],
                        fmt="none", ecolor=RAISE, elinewidth=1.2, capsize=3, zorder=2)
        ax.scatter([p for p, _ in points], [o for _, o in points], s=28, color=RAISE, zorder=3, label="observed, by bin" + (" (95% CI)" if with_ci else ""))
    return _finish(fig, ax, title, "predicted risk", "observed frequency", "lower right")  # bins sit near the diagonal


def _risk(value: float | int | None) -> float:
    """A bin's predicted or observed risk, or an interval end already checked to be present."""
    if value is None:
        raise ValueError("a calibration bin needs its predicted and observed risk")
    return float(value)


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
    fig = _figure(3.7, 3.6)
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], linestyle="--", color=NEUTRAL, linewidth=1, label=diagonal)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    return fig, ax


def _finish(fig, ax, title: str, xlabel: str, ylabel: str, legend: str) -> Markup:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=FONT_PT, loc="left")
    ax.legend(loc=legend, frameon=False)
    fig.tight_layout()
    return _svg(fig, title)
