"""Figures of a race: instance-loss distributions, the elimination path, robustness vs sample size.

The figures of Boldyrev, Ratnikov, Shevelev (IEEE Access 2025): box plots of the test losses of
each model's instances, the "model path" (the robustness statistic of every model after every
round, eliminated models dropping out, the winner highlighted), and the spread of instance losses
against the training-sample size.

Every function returns a ``matplotlib.figure.Figure`` built without ``pyplot`` (so nothing here
changes the user's backend or global state; files are rendered with Agg) and saves it as PNG
when given ``path``.

Example:
  >>> import numpy as np, jrobust
  >>> ev = lambda m, i: 1.0 + 0.1 * (m + 1) * np.sin(13.0 * i + m)
  >>> result = jrobust.race(6, evaluator=ev, statistic="std", warmup=3)
  >>> fig = plot_path(result)
  >>> len(fig.axes)
  1
"""

from jrobust._src.plots import (
    plot_distributions,
    plot_path,
    plot_sample_size,
    plot_transforms,
    save_figure,
)

__all__ = [
    "plot_distributions",
    "plot_path",
    "plot_sample_size",
    "plot_transforms",
    "save_figure",
]
