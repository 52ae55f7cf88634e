"""Helpers shared by the examples."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

import jrobust


def describe(losses: np.ndarray) -> dict[str, float]:
    v = np.asarray(losses, float)
    f = v[np.isfinite(v)]
    return dict(
        instances=int(v.size),
        failed=int(v.size - f.size),
        mean=float(f.mean()),
        median=float(np.median(f)),
        std=float(f.std(ddof=1)) if f.size > 1 else 0.0,
        pd=float(np.quantile(f, 0.9) - np.quantile(f, 0.1)),
        min=float(f.min()),
        max=float(f.max()),
    )


def best_of_family(result: jrobust.SelectionResult, with_side: bool) -> int:
    """The family's best model: the one that lasted longest in the race, then by its statistic."""
    order = result.summary(top=None).model_id.tolist()  # winners, survivors, then longest-lived
    for m in order:
        if bool(result.configs[m].side_features) == with_side:
            return int(m)
    raise ValueError(f"the space has no model {'with' if with_side else 'without'} side features")


def more_instances(config, pop, have: np.ndarray, n: int, seed: int, bucket: int = 8) -> np.ndarray:
    """Losses of instances 0..n-1: the race's ones plus new ones (stacks of ``bucket``, the
    race's smallest stack, so the compiled program is usually reused)."""
    todo = np.arange(len(have), n)
    out = [np.asarray(have, float)]
    for start in range(0, len(todo), bucket):
        chunk = todo[start : start + bucket]
        res = jrobust.train_stack([config] * len(chunk), chunk, pop, seed=seed, bucket=bucket)
        out.append(np.where(res["ok"], res["loss"], np.inf))
    return np.concatenate(out)[:n]


def plot_comparison(
    samples: dict[str, np.ndarray], lines: dict[str, float], xlabel: str, title: str, path: Path
) -> None:
    """Instance-loss distributions (box + dots) of a few models, baselines as vertical lines."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from jrobust.plots import save_figure

    fig = Figure(figsize=(8.0, 1.5 + 0.8 * len(samples)), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    names = list(samples)
    pos = np.arange(len(names))[::-1]
    data = [np.asarray(samples[k])[np.isfinite(samples[k])] for k in names]
    new = tuple(int(v) for v in matplotlib.__version__.split(".")[:2]) >= (3, 10)
    horizontal = {"orientation": "horizontal"} if new else {"vert": False}
    colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]
    box = ax.boxplot(
        data,
        positions=pos,
        widths=0.55,
        patch_artist=True,
        showfliers=False,
        medianprops={"color": "black"},
        **horizontal,
    )
    rng = np.random.default_rng(0)
    for j, (patch, d) in enumerate(zip(box["boxes"], data, strict=True)):
        c = colors[j % len(colors)]
        patch.set_facecolor(c)
        patch.set_alpha(0.3)
        ax.scatter(
            d,
            pos[j] + rng.uniform(-0.2, 0.2, d.size),
            s=12,
            color=c,
            alpha=0.8,
            zorder=3,
            edgecolors="none",
        )
    styles = ["--", ":", "-."]
    for j, (label, value) in enumerate(lines.items()):
        ax.axvline(value, color="black", ls=styles[j % 3], lw=1.2, label=f"{label}: {value:.4g}")
    labels = [
        f"{k}\nmedian {np.median(d):.4g}, std {np.std(d, ddof=1) if d.size > 1 else 0:.2g}"
        for k, d in zip(names, data, strict=True)
    ]
    ax.set_yticks(pos, labels, fontsize=8)
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", alpha=0.3)
    if lines:
        fig.legend(fontsize=8, loc="outside lower center", ncols=len(lines))
    ax.set_title(title, fontsize=10)
    save_figure(fig, path)


def plain(v: Any) -> Any:
    if isinstance(v, np.integer | np.floating):
        return v.item()
    if dataclasses.is_dataclass(v):
        return repr(v)
    return str(v)


def write_example_md(out: Path, lines: list[str], figure: str, alt: str) -> None:
    """``out/example.md``: the example's lines, its figure and links to the race's own pages."""
    footer = [
        "",
        f"![{alt}]({figure})",
        "",
        "The race itself: [summary.md](summary.md), [report.html](report.html).",
        "",
    ]
    (out / "example.md").write_text("\n".join([*lines, *footer]))
