"""A chart of job_summary(): time against money per configuration (matplotlib, no AWS calls)."""

from __future__ import annotations

import io
from functools import cache
from typing import TYPE_CHECKING

import pandas as pd

from helpers.session import HelperError

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@cache
def _jobs_figure_class() -> type[Figure]:
    """A Figure that Jupyter shows as a PNG even when the notebook never imported pyplot."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    class JobsFigure(Figure):
        def _repr_png_(self) -> bytes:
            buffer = io.BytesIO()
            FigureCanvasAgg(self).print_png(buffer)
            return buffer.getvalue()

    return JobsFigure


def plot_jobs(df: pd.DataFrame) -> Figure:
    """Chart mean wall and training time, and mean cost, per configuration: speed against money.

    Returns a matplotlib Figure (no pyplot state, works headless) that Jupyter shows as a PNG.

    Example:
        >>> fig = plot_jobs(job_summary())
        >>> fig.savefig("jobs.png")
    """
    from matplotlib.ticker import MaxNLocator

    needed = {"config", "wall_seconds", "training_seconds", "cost_usd"}
    if not isinstance(df, pd.DataFrame) or not needed <= set(df.columns):
        raise HelperError("plot_jobs needs the DataFrame returned by job_summary()")
    if df.empty:
        raise HelperError("no jobs to plot: run a training job, or widen job_summary's filter")
    numbers = df.assign(**{c: pd.to_numeric(df[c], errors="coerce") for c in needed - {"config"}})
    by_config = numbers.groupby("config", sort=False).agg(
        wall=("wall_seconds", "mean"),
        training=("training_seconds", "mean"),
        cost=("cost_usd", "mean"),
        jobs=("config", "size"),
    )
    labels = [f"{c} ({n} job{'s' if n != 1 else ''})" for c, n in by_config["jobs"].items()]
    height = 1.6 + 0.55 * len(labels)
    fig = _jobs_figure_class()(figsize=(9.0, height), layout="constrained")
    left, right = fig.subplots(1, 2, sharey=True)
    places = list(range(len(labels)))
    bars = {"wall": ("tab:blue", -0.2), "training": ("lightsteelblue", 0.2)}
    for column, (color, shift) in bars.items():
        values = by_config[column].fillna(0)
        left.barh([y + shift for y in places], values, 0.4, label=column, color=color)
    left.set_yticks(places, labels)
    left.invert_yaxis()
    left.legend(fontsize=8, loc="lower right")
    left.set(title="Time per job (wall includes start-up)", xlabel="seconds, mean")
    right.barh(places, by_config["cost"].fillna(0), 0.6, color="tab:orange")
    right.set(title="Estimated cost per job", xlabel="USD, mean (on-demand list price)")
    for axes in (left, right):
        axes.tick_params(labelsize=8)
        axes.grid(axis="x", alpha=0.3)
        axes.xaxis.set_major_locator(MaxNLocator(nbins=4))
    return fig
