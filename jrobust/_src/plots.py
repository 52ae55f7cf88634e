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

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from jrobust._src.atomic import write_atomic
from jrobust._src.result import id_list, instance_rows, transformed_rows
from jrobust._src.space.fields import get_field

__all__ = [
    "plot_distributions",
    "plot_iterations",
    "plot_path",
    "plot_sample_size",
    "plot_transforms",
    "save_figure",
]

WINNER_COLOR = "#d62728"
SURVIVOR_COLOR = "#1f77b4"
OTHER_COLOR = "#9a9a9a"


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 110) -> str:
    """Save ``fig`` as PNG through the atomic writer (``jrobust._src.atomic``: a partly written file
    never replaces a good one, a planted link is never followed, a killed writer's temporary
    file is removed by the next write)."""
    write_atomic(path, lambda fh: fig.savefig(fh, dpi=dpi, format="png"))
    return os.fspath(path)


def _horizontal() -> dict[str, Any]:
    """Horizontal box/violin plots: ``orientation`` since Matplotlib 3.10, ``vert`` before."""
    import matplotlib

    major, minor = (int(v) for v in matplotlib.__version__.split(".")[:2])
    return {"orientation": "horizontal"} if (major, minor) >= (3, 10) else {"vert": False}


def _short(name: str, width: int = 38) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def _wants_log(values: np.ndarray) -> bool:
    v = values[np.isfinite(values) & (values > 0)]
    return v.size > 1 and v.max() / v.min() > 10


def _log(ax, axis: str = "y") -> None:
    """A log-scaled axis with plain tick labels (0.04, 0.1, 0.6) instead of powers of ten."""
    from matplotlib.ticker import FuncFormatter

    def minor(v: float, _) -> str:  # label 2, 3 and 5 between the decades, not every tick
        lead = round(v / 10 ** np.floor(np.log10(v))) if v > 0 else 0
        return f"{v:g}" if lead in (2, 3, 5) else ""

    getattr(ax, f"set_{axis}scale")("log")
    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    target.set_minor_formatter(FuncFormatter(minor))


def _names(result: Any) -> dict[int, str]:
    return dict(zip(result.models.model_id, result.models.name, strict=True))


def plot_distributions(
    result: Any,
    models: Sequence[int] | None = None,
    *,
    kind: str = "box",
    top: int = 12,
    path: str | os.PathLike | None = None,
    title: str | None = None,
) -> Figure:
    """Instance-loss distributions of the last survivors (box or violin plot, instances as dots).

    Args:
      result: a ``SelectionResult`` (or one loaded with ``jrobust.load_run``).
      models: model ids to show (default: the winners, the survivors, then the models that lasted
        longest, ``top`` in all, best first).
      kind: ``"box"`` or ``"violin"``.
      top: how many models by default.
      path: save the figure here as PNG.
      title: the figure title.

    Returns:
      The figure; the winner's box is red, other survivors blue, eliminated models grey;
      failed instances (non-finite losses) are counted in the labels, not drawn.
    """
    if kind not in ("box", "violin"):
        raise ValueError(f"kind must be 'box' or 'violin', got {kind!r}")
    if models is None:
        models = result.summary(top=top).model_id.tolist()
    models = [int(m) for m in models]
    if not models:
        raise ValueError("no models to plot")
    samples, labels, colors = _distribution_samples(result, models)
    fig = _figure(9.0, 1.0 + 0.42 * len(models))
    ax = fig.add_subplot()
    positions = np.arange(len(models))[::-1]  # best on top
    _draw_distributions(ax, samples, colors, positions, kind)
    ax.set_yticks(positions, labels, fontsize=8)
    allv = np.concatenate([s[np.isfinite(s)] for s in samples]) if samples else np.array([])
    if _wants_log(allv):
        _log(ax, "x")
    ax.set_xlabel(f"instance test loss ({_metric(result)})")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(
        title
        or f"Instance-loss distributions{_subset(len(models), result)} (red: winner, blue: "
        "survivors, grey: eliminated)",
        fontsize=10,
    )
    if path is not None:
        save_figure(fig, path)
    return fig


def _distribution_samples(
    result: Any, models: list[int]
) -> tuple[list[np.ndarray], list[str], list[str]]:
    """Each model's finite instance losses, its tick label (failures counted) and its colour."""
    names = _names(result)
    winners = set(int(w) for w in result.winners)
    final_round = result.path["round"].max() if len(result.path) else 0
    alive = (
        set(result.path[(result.path["round"] == final_round) & result.path["alive"]].model_id)
        if len(result.path)
        else set()
    )
    samples, labels, colors = [], [], []
    # with fidelity stages or a final race: each model's instances of the last stage it raced in
    ledger = result.decisive_ledger() if hasattr(result, "decisive_ledger") else result.ledger
    ledger = instance_rows(ledger)
    for m in models:
        losses = ledger.loc[ledger.model_id == m, "loss"].to_numpy(dtype=float)
        finite = losses[np.isfinite(losses)]
        failed = losses.size - finite.size
        samples.append(finite if finite.size else np.array([np.nan]))
        label = (
            f"{_short(names.get(m, str(m)))}  (#{m}, n={losses.size}"
            + (f", {failed} failed" if failed else "")
            + ")"
        )
        labels.append(label)
        colors.append(
            WINNER_COLOR if m in winners else SURVIVOR_COLOR if m in alive else OTHER_COLOR
        )
    return samples, labels, colors


def _draw_distributions(ax, samples, colors, positions: np.ndarray, kind: str) -> None:
    """The boxes or violins, coloured, and every instance as a jittered dot over them."""
    drawable = [s if np.isfinite(s).any() else np.array([0.0]) for s in samples]
    if kind == "box":
        parts = ax.boxplot(
            drawable,
            positions=positions,
            **_horizontal(),
            widths=0.6,
            patch_artist=True,
            showfliers=False,
            medianprops={"color": "black"},
        )
        for patch, color in zip(parts["boxes"], colors, strict=True):
            patch.set_facecolor(color)
            patch.set_alpha(0.35)
            patch.set_edgecolor(color)
    else:
        parts = ax.violinplot(
            drawable, positions=positions, **_horizontal(), widths=0.8, showmedians=True
        )
        for body, color in zip(parts["bodies"], colors, strict=True):
            body.set_facecolor(color)
            body.set_edgecolor(color)
            body.set_alpha(0.35)
    rng = np.random.default_rng(0)
    for pos, sample, color in zip(positions, samples, colors, strict=True):
        s = sample[np.isfinite(sample)]
        ax.scatter(
            s,
            pos + rng.uniform(-0.18, 0.18, s.size),
            s=10,
            color=color,
            alpha=0.8,
            zorder=3,
            edgecolors="none",
        )


def _subset(shown: int, result: Any) -> str:
    """``", 12 of 16 models"`` when a figure draws some of the models only."""
    total = len(result.models)
    return f", {shown} of {total} models" if shown < total else ""


def _metric(result: Any) -> str:
    configs = getattr(result, "configs", None)
    if configs:
        metric = configs[result.winner_id].metric
        return f"{metric if metric != 'accuracy' else 'error = 1 - accuracy'}, lower is better"
    return "lower is better"


def plot_path(
    result: Any,
    *,
    log: bool | None = None,
    label_top: int = 5,
    path: str | os.PathLike | None = None,
    title: str | None = None,
) -> Figure:
    """The elimination path: each model's statistic after every round (the paper's model paths).

    Lines end at the round a model was eliminated (marked ×); the winners are drawn thick and red,
    the last survivors blue, everything else thin and grey. The top axis counts the survivors.
    Dashed lines mark where a fidelity stage (its training size ``n=``) or the final race begins;
    a stage's statistics use its own instances only.

    Args:
      result: a ``SelectionResult``.
      log: log-scaled statistic axis (default: when the values span more than a factor 10).
      label_top: name the best this many models of the last round next to their line ends.
      path: save the figure here as PNG.
      title: the figure title.

    Returns:
      The figure.
    """
    frame = result.path
    fig = _figure(9.0, 5.0)
    ax = fig.add_subplot()
    if frame is None or len(frame) == 0:
        ax.text(0.5, 0.5, "no rounds", ha="center", va="center", transform=ax.transAxes)
        if path is not None:
            save_figure(fig, path)
        return fig
    names = _names(result)
    winners = [int(w) for w in result.winners]
    last = frame["round"].max()
    final_alive = set(frame[(frame["round"] == last) & frame["alive"]].model_id)
    values = frame["statistic"].to_numpy(dtype=float)
    finite = values[np.isfinite(values)]
    ceiling = finite.max() * 1.05 if finite.size else 1.0
    _draw_paths(ax, frame, winners, final_alive, ceiling)
    stat = _path_axes(ax, result, frame, log if log is not None else _wants_log(finite))
    ending = frame[frame["round"] == last].sort_values("rank").head(label_top)
    _label_ends(ax, ending, names, ceiling, winners, final_alive)
    ax.grid(alpha=0.3)
    ax.set_title(
        title or f"Elimination path ({result.settings.get('rule', '')} on {stat}; winner in red)",
        fontsize=10,
    )
    if path is not None:
        save_figure(fig, path)
    return fig


def _draw_paths(ax, frame: pd.DataFrame, winners, final_alive, ceiling: float) -> None:
    """Every model's line (winners on top, thick and red), its elimination marked ×."""
    order = sorted(
        frame.model_id.unique(), key=lambda m: (m in winners, m in final_alive)
    )  # winners on top
    for m in order:
        rows = frame[frame.model_id == m].sort_values("round")
        x = rows["round"].to_numpy()
        y = np.minimum(rows["statistic"].to_numpy(dtype=float), ceiling)
        if m in winners:
            style = dict(color=WINNER_COLOR, lw=2.6, alpha=1.0, zorder=5)
        elif m in final_alive:
            style = dict(color=SURVIVOR_COLOR, lw=1.6, alpha=0.9, zorder=4)
        else:
            style = dict(color=OTHER_COLOR, lw=0.9, alpha=0.6, zorder=2)
        ax.plot(x, y, marker="o", ms=2.5, **style)
        out = rows[~rows["alive"]]
        if len(out):
            ax.scatter(
                out["round"],
                np.minimum(out["statistic"].to_numpy(dtype=float), ceiling),
                marker="x",
                s=22,
                color=style["color"],
                zorder=style["zorder"],
            )


def _path_axes(ax, result: Any, frame: pd.DataFrame, log: bool) -> str:
    """The axes' labels and scale, the survivors counted on top, the stages' dashed lines;
    returns the statistic's name."""
    stat = result.settings.get("statistic", "statistic")
    ax.set_xlabel("round")
    over = result.settings.get("over", "instances")
    ax.set_ylabel(
        {
            "transforms": f"{stat} over the transformed test sets",
            "both": f"{stat} over instances x test sets",
        }.get(over, f"{stat} of the instance losses")
        + f" ({_metric(result)})"
    )
    if log:
        _log(ax, "y")
    rounds = np.sort(frame["round"].unique())
    ax.set_xticks(rounds)
    survivors = frame.groupby("round").size().reindex(rounds).to_numpy()
    top_ax = ax.secondary_xaxis("top")
    top_ax.set_xticks(rounds, [str(s) for s in survivors], fontsize=8)
    top_ax.set_xlabel("models racing in the round", fontsize=8)
    ax.set_xlim(rounds[0] - 0.3, rounds[-1] + 0.3 + 0.25 * max(1, len(rounds)))
    for stage in list(getattr(result, "stages", None) or [])[1:]:  # fidelity stages, final race
        start = int(stage["first_round"]) - 0.5
        ax.axvline(start, color="#888888", lw=0.8, ls="--", zorder=1)
        label = "final" if stage.get("kind") == "final" else f"n={stage.get('train_size')}"
        ax.text(start, 1.0, f" {label}", transform=ax.get_xaxis_transform(), fontsize=7,
                va="top", ha="left", color="#555555")  # fmt: skip
    return stat


def _label_ends(ax, rows: pd.DataFrame, names, ceiling, winners, alive, gap: float = 0.055) -> None:
    """Name the line ends of the last round, spread vertically so labels never overlap."""
    if not len(rows):
        return
    ax.figure.canvas.draw()  # settle the limits and scales before converting coordinates
    to_axes = ax.transAxes.inverted()
    points = []
    for _, row in rows.iterrows():
        y = min(float(row["statistic"]), ceiling)
        if not np.isfinite(y):
            continue
        fx, fy = to_axes.transform(ax.transData.transform((row["round"], y)))
        points.append([fy, fx, y, int(row.model_id)])
    points.sort()
    spread = [p[0] for p in points]
    for j in range(1, len(spread)):
        spread[j] = max(spread[j], spread[j - 1] + gap)
    overflow = spread[-1] - 0.97 if spread else 0
    if overflow > 0:
        spread = [v - overflow for v in spread]
    for (fy, fx, _y, m), ty in zip(points, spread, strict=True):
        color = WINNER_COLOR if m in winners else SURVIVOR_COLOR if m in alive else OTHER_COLOR
        ax.annotate(
            _short(names.get(m, str(m)), 30),
            xy=(fx, fy),
            xycoords="axes fraction",
            xytext=(fx + 0.04, ty),
            textcoords="axes fraction",
            fontsize=7,
            va="center",
            color=color,
            arrowprops={"arrowstyle": "-", "color": color, "lw": 0.6, "alpha": 0.7},
        )


def plot_sample_size(
    frame: pd.DataFrame,
    *,
    size: str = "train_size",
    loss: str = "loss",
    model: str | None = "model",
    path: str | os.PathLike | None = None,
    title: str | None = None,
) -> Figure:
    """Robustness against training-sample size: median and Q10-Q90 / Q25-Q75 bands per model.

    Args:
      frame: one row per instance: the sample size (``size``), its test loss (``loss``) and
        optionally a model label (``model``; absent: one model).
      size, loss, model: column names.
      path: save the figure here as PNG.
      title: the figure title.

    Returns:
      The figure, the sample size on a log axis.

    Example:
      >>> import pandas as pd
      >>> f = pd.DataFrame({"train_size": [100, 100, 1000, 1000], "loss": [0.3, 0.5, 0.2, 0.22]})
      >>> len(plot_sample_size(f).axes)
      1
    """
    missing = [c for c in (size, loss) if c not in frame.columns]
    if missing:
        raise ValueError(
            f"the sample-size frame needs columns {missing}; it has {list(frame.columns)}"
        )
    fig = _figure(8.0, 4.8)
    ax = fig.add_subplot()
    groups = frame.groupby(model, sort=False) if model and model in frame.columns else [("", frame)]
    palette = [SURVIVOR_COLOR, WINNER_COLOR, "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2"]
    allv = []
    for j, (label, rows) in enumerate(groups):
        color = palette[j % len(palette)]
        rows = rows[np.isfinite(rows[loss].to_numpy(dtype=float))]
        q = rows.groupby(size)[loss].quantile([0.1, 0.25, 0.5, 0.75, 0.9]).unstack().sort_index()
        x = q.index.to_numpy(dtype=float)
        ax.fill_between(x, q[0.1], q[0.9], color=color, alpha=0.15, lw=0)
        ax.fill_between(x, q[0.25], q[0.75], color=color, alpha=0.3, lw=0)
        ax.plot(x, q[0.5], color=color, lw=2, marker="o", ms=3, label=str(label) or "median")
        ax.scatter(rows[size], rows[loss], s=4, color=color, alpha=0.35, edgecolors="none")
        allv.append(rows[loss].to_numpy(dtype=float))
    ax.set_xscale("log")
    if allv and _wants_log(np.concatenate(allv)):
        _log(ax, "y")
    ax.set_xlabel("training-sample size")
    ax.set_ylabel("instance test loss")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    ax.set_title(
        title or "Robustness vs training-sample size (median, Q25-Q75, Q10-Q90)", fontsize=10
    )
    if path is not None:
        save_figure(fig, path)
    return fig


def plot_transforms(
    result: Any,
    models: Sequence[int] | None = None,
    *,
    top: int = 6,
    band: tuple[float, float] = (0.1, 0.9),
    path: str | os.PathLike | None = None,
    title: str | None = None,
) -> Figure:
    """The loss against each transformation's parameter (rotation angle, scale factor, shift):
    one panel per transform, one line per model (the median over its instances, with the
    ``band`` quantiles shaded), on the instances each model was judged on.

    Args:
      result: a ``SelectionResult`` of a race on ``jrobust.data.with_transforms`` data.
      models: the model ids to draw (default: the ``top`` first of ``result.summary()``).
      band: the quantiles of the shaded band (default: 10 % and 90 %).
      path: also save the figure as PNG there.

    Returns:
      The figure; the winner's line is red and thicker.
    """
    led = transformed_rows(result.decisive_ledger())
    if models is None:
        models = result.summary(top=top).model_id.tolist()
    models = [int(m) for m in models]
    names, winner = _names(result), int(result.winner_id)
    transforms = list(dict.fromkeys(led["transform"]))
    fig = _figure(4.2 * len(transforms) + 0.6, 3.6)
    axes = fig.subplots(1, len(transforms), squeeze=False)[0]
    colors = ("#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")
    units = {"rotation": "angle (degrees)", "scale": "scale factor", "shift": "shift (pixels)"}
    for ax, name in zip(axes, transforms, strict=True):
        rows = led[led["transform"] == name]
        drawn = []
        for k, m in enumerate(models):
            mine = rows[rows.model_id == m]
            if not len(mine):
                continue
            g = mine.assign(loss=np.where(np.isfinite(mine.loss), mine.loss, np.nan))
            g = g.groupby("param")["loss"]
            x = np.asarray(g.median().index, float)
            color = WINNER_COLOR if m == winner else colors[k % len(colors)]
            ax.fill_between(
                x, g.quantile(band[0]).to_numpy(), g.quantile(band[1]).to_numpy(),
                color=color, alpha=0.15, linewidth=0,
            )  # fmt: skip
            ax.plot(
                x, g.median().to_numpy(), marker="o", markersize=3.5, color=color,
                linewidth=2.4 if m == winner else 1.4,
                label=f"{_short(names.get(m, str(m)), 30)} (#{m})",
            )  # fmt: skip
            drawn.append(g.median().to_numpy())
        ax.set_xlabel(units.get(name, f"{name} parameter"))
        ax.set_title(name, fontsize=10)
        ax.grid(alpha=0.3)
        if drawn and _wants_log(np.concatenate(drawn)):
            _log(ax)
    axes[0].set_ylabel(f"test {_metric(result)} (median, {band[0]:.0%}-{band[1]:.0%} band)")
    axes[-1].legend(fontsize=7, loc="best")
    fig.suptitle(
        title or f"Loss on the transformed test sets{_subset(len(models), result)}", fontsize=11
    )
    if path is not None:
        save_figure(fig, path)
    return fig


def _sampled(result: Any, parameter: str) -> dict[int, Any]:
    """Each sampled model's value of ``parameter``: from ``result.configs`` (the field of its
    ``ModelConfig``), else from the models table's column of that name."""
    configs = getattr(result, "configs", None)
    if configs:
        return {m: _field(c, parameter) for m, c in enumerate(configs)}
    if parameter in result.models:
        return dict(zip(result.models.model_id.astype(int), result.models[parameter], strict=True))
    return {}


def _field(config: Any, parameter: str) -> Any:
    """A ``ModelConfig`` field, or a field of its architecture (``hidden``, ``conv``)."""
    try:
        return get_field(config, parameter)
    except AttributeError:
        return None


def _number(value: Any) -> float:
    """A numeric parameter's value as a float: a width range sets every layer to the drawn
    width, so a tuple of widths is drawn as its first."""
    if isinstance(value, list | tuple | np.ndarray):
        value = value[0] if len(value) else np.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def plot_iterations(
    result: Any,
    ax: Any = None,
    *,
    path: str | os.PathLike | None = None,
    title: str | None = None,
) -> Figure:
    """A search's iterations: one panel per parameter, the values sampled in every iteration
    against the iteration (a log axis for a log range; a categorical's choices as the tick
    labels of their index), the elites kept after each iteration circled, the sampling model's
    centre as a line, and the winner in red.

    Args:
      result: a ``SelectionResult`` of ``jrobust.search`` (its ``iterations`` table, and the
        sampled values from ``configs`` or the models table).
      ax: draw into these axes (one per parameter, in the order of the table; a single axes
        for a one-parameter search) instead of a new figure.
      path: also save the figure as PNG there.
      title: the figure title.

    Returns:
      The figure.

    Raises:
      ValueError: for a race (``result.iterations`` is ``None``).
    """
    table = getattr(result, "iterations", None)
    if table is None:
        raise ValueError(
            "this result has no iterations: it is a race over a fixed list of models; "
            "jrobust.search(space, population, budget=...) samples and iterates"
        )
    parameters = list(dict.fromkeys(table["parameter"]))
    if ax is None:
        cols = min(3, max(1, len(parameters)))
        rows = -(-max(1, len(parameters)) // cols)
        fig = _figure(4.0 * cols + 0.6, 3.3 * rows + 0.6)
        grid = list(fig.subplots(rows, cols, squeeze=False).ravel())
        for extra in grid[len(parameters) :]:
            fig.delaxes(extra)
        axes = grid[: len(parameters)]
    else:
        axes = list(np.atleast_1d(ax))
        if len(axes) != len(parameters):
            raise ValueError(
                f"ax: {len(axes)} axes for {len(parameters)} parameters {parameters}; give one "
                "axes per parameter, or none"
            )
        fig = axes[0].figure
    winner = int(result.winner_id)
    for axis, name in zip(axes, parameters, strict=True):
        _iteration_panel(axis, table[table["parameter"] == name], _sampled(result, name), winner)
        axis.set_title(name, fontsize=10)
    if axes:
        axes[0].legend(fontsize=7, loc="best")
    fig.suptitle(
        title or "Search iterations: the sampled values (elites circled, the winner in red)",
        fontsize=11,
    )
    if path is not None:
        save_figure(fig, path)
    return fig


def _iteration_panel(ax: Any, rows: pd.DataFrame, values: dict[int, Any], winner: int) -> None:
    """One parameter's panel of ``plot_iterations``."""
    rows = rows.sort_values("iteration")
    kind = str(rows["kind"].iloc[0])
    categorical = kind == "categorical"
    labels: list[str] = []
    if categorical:  # the choices in the order they were first sampled
        for cell in rows["candidates"]:
            for m in id_list(cell):
                if m in values and repr(values[m]) not in labels:
                    labels.append(repr(values[m]))

    def position(value: Any) -> float:
        if categorical:
            text = value if isinstance(value, str) and value in labels else repr(value)
            return float(labels.index(text)) if text in labels else float("nan")
        return _number(value)

    iterations = rows["iteration"].to_numpy(dtype=int)
    sampled = [
        (it, m)
        for it, cell in zip(iterations, rows["candidates"], strict=True)
        for m in id_list(cell)
    ]
    kept = [
        (it, m) for it, cell in zip(iterations, rows["elites"], strict=True) for m in id_list(cell)
    ]

    def points(pairs):
        xs = np.array([it for it, _ in pairs], float)
        ys = np.array([position(values.get(m)) for _, m in pairs], float)
        return xs, ys

    x, y = points(sampled)
    ax.scatter(x, y, s=14, color=OTHER_COLOR, alpha=0.8, edgecolors="none", label="sampled")
    x, y = points(kept)
    ax.scatter(x, y, s=46, facecolors="none", edgecolors=SURVIVOR_COLOR, lw=1.2, label="elites")
    centre = np.array(
        [position(v if not categorical else str(v)) for v in rows["centre"]], dtype=float
    )
    ax.plot(iterations, centre, color=SURVIVOR_COLOR, lw=1.0, alpha=0.6, label="centre")
    mine = [(it, m) for it, m in sampled + kept if m == winner]
    if mine:
        x, y = points(mine)
        ax.scatter(x, y, s=40, color=WINNER_COLOR, zorder=5, label=f"winner (#{winner})")
    ax.set_xticks(iterations)
    ax.set_xlabel("iteration")
    if categorical:
        ax.set_yticks(range(len(labels)), [_short(t, 16) for t in labels], fontsize=8)
        ax.set_ylim(-0.5, max(len(labels), 1) - 0.5)
    elif bool(rows["log"].iloc[0]):
        _log(ax, "y")
    ax.grid(alpha=0.3)
