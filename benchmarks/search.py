"""Search beyond a grid at equal trainings: winners judged on instances no search trained.

    nice -n 10 python benchmarks/search.py --json benchmarks/results/search.json \\
        --markdown benchmarks/results/search.md             # both spaces, 5 seeds, every column
    python benchmarks/search.py --quick --methods grid tpe bridge random   # < 2 minutes, a check

**Spaces** (``--spaces``): ``digits``: MLPs on scikit-learn's digits (one hidden layer of 16, 32
or 64 units, cross-entropy); ``calo``: small CNNs regressing the energy of the synthetic
calorimeter's dataset B (4,000 events, 500 test events; one convolution of 4, 8 or 16 channels,
pooling 2, a dense layer of 16). Both: AdamW with a continuous learning rate
``loguniform(1e-4, 1e-1)`` and weight decay ``loguniform(1e-6, 1e-2)``, ``--train-size``
(1,000) samples per instance, batch 50, ``--epochs`` (digits 5, calo 3). Every column draws the
same parameters from the same ranges (Optuna's ``suggest_float(..., log=True)`` and
``suggest_categorical``; jrobust's ``SearchSpace`` with ``loguniform`` and the widths as a list).

**Columns** (``--methods``), each with ``--budget`` trainings (one training is one instance of
one model) on every seed ``s``, which is the seed of the instances (``jrobust``'s root seed:
training subsets, shuffling, initialisations) and of the sampler:

* ``search``: ``jrobust.search(space, population, budget=N, seed=s)`` (iterated racing, the
  race's default settings inside).
* ``grid``: ``jrobust.race`` on a grid with (at most) as many models as ``random`` samples
  (``N // k``): the widths x learning rates x weight decays, the numbers at the centres of equal
  cells of the log ranges, ``budget=N``.
* ``tpe``: Optuna's ``TPESampler(seed=s)``, one instance per trial (instance 0: the same
  training subset for every trial, as an objective with a fixed seed has), ``N`` trials one at
  a time through ``jrobust.integrations.optuna.optimize`` (``batch=1``); winner:
  ``study.best_trial``.
* ``bridge``: ``TPESampler(seed=s, constant_liar=True)`` through ``optimize`` with ``k``
  (``--instances``, 10) instances per trial and ``--batch`` (8) trials at a time, ``N // k``
  trials, each told the race's statistic (``"max"``) of its instances; winner:
  ``study.best_trial``.
* ``random``: ``N // k`` models drawn uniformly (``SearchSpace.sample``, log ranges uniform in
  log space), ``k`` instances each (``jrobust.exhaustive``); winner: the best by the statistic.

**Judged on fresh instances**: every winner trains ``--fresh`` (20) instances ``1000, 1001, ...``
(``jrobust.train_instances(winner, population, range(1000, 1000 + F), seed=s)``: training
subsets of the same population that no column trained); their mean, std and PD (Q90 - Q10,
``jrobust.stats``). Over the seeds: the median and the range (min to max) of each, and a 95 %
percentile bootstrap interval of the mean. Per column also the trainings spent, the wall
seconds, and the XLA compilations with their seconds (counted by a ``jax.monitoring`` listener:
every backend compile during the column, the training programs and the small helper
computations alike), the programs jrobust compiled, and, where a ``SelectionResult`` says it,
the engine's programs and executables (see **Compilation**).
Target (issue "Search beyond a grid"): ``search``'s winner at least as good on fresh mean and
std as every other column's in at least 4 of 5 seeds (the ``search as good`` column counts the
seeds).

**Compilation.** Every column (per space) runs in a process of its own (``--workers`` at
once, default 1), its seeds one after another: it compiles its programs on its first seed (as
a search in a fresh process would) and reuses them on its later seeds (as one long-running
process would). Reported: the programs compiled (``jrobust.train.n_compiled``) on the first
seed (and on the later ones) and the XLA compilations of the first seed.
``--shared-programs`` runs every column in this process instead, reusing each other's programs
(faster; the compile figures then depend on the order of the columns).

Default sizes (``--budget 240``, 5 seeds, 20 fresh instances, both spaces, every column): the
four columns other than ``search`` took 46 minutes on the shared 2-core VM at a load average of
6 to 7 (benchmarks/results/search_four_columns_prelim.*); on the CPU a column's time is mostly
the compilation of its programs (the bridge's and random's later seeds compile new stack
sizes). ``--workers 2`` halves the wall time on an idle machine. ``--quick``: the digits space, 1 seed, ``--budget 24``
with 4 instances per trial, 1 epoch, 4 fresh instances, 300 samples per instance, bridge batch
4, shared programs, and XLA's lowest backend optimisation level (``XLA_FLAGS``, as the tests
set it): it is a check of the machinery, under 2 minutes, not a result.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import jrobust

METHODS = ("search", "grid", "tpe", "bridge", "random")
SPACES = ("digits", "calo")
MEASURES = ("mean", "std", "pd")
#: The first fresh instance: no column trains instance indices this high (budgets are smaller).
FRESH_START = 1000
LEARNING_RATE = (1e-4, 1e-1)
WEIGHT_DECAY = (1e-6, 1e-2)
WIDTHS = {"digits": (16, 32, 64), "calo": (4, 8, 16)}
EPOCHS = {"digits": 5, "calo": 3}
#: ``--quick`` compiles at XLA's lowest backend optimisation (unless XLA_FLAGS is set): its
#: few trainings are cheap and the default level's compilations would take most of its time.
QUICK_XLA_FLAGS = "--xla_backend_optimization_level=0"
QUICK = dict(
    seeds=1, budget=24, instances=4, epochs=1, fresh=4, train_size=300, batch=4,
    shared_programs=True, spaces=["digits"],
)  # fmt: skip


@dataclass(frozen=True)
class Setup:
    """One space's models and data, as every column sees them."""

    name: str
    widths: tuple[int, ...]
    epochs: int
    train_size: int
    population: Any = field(repr=False, compare=False)

    @property
    def width_field(self) -> str:
        return "hidden" if self.name == "digits" else "conv"

    def model(self, width: int, learning_rate: float, weight_decay: float) -> jrobust.ModelConfig:
        """The space's model with these parameters."""
        common = dict(
            learning_rate=learning_rate, weight_decay=weight_decay, optimizer="adamw",
            train_size=self.train_size, batch_size=50, epochs=self.epochs,
        )  # fmt: skip
        if self.name == "digits":
            return jrobust.zoo.mlp_config(
                hidden=(width,), outputs=10, loss="cross_entropy", metric="cross_entropy",
                **common,
            )  # fmt: skip
        return jrobust.zoo.cnn_config(
            conv=(width,), pool=(2,), dense=(16,), target="energy", **common
        )

    def base(self) -> jrobust.ModelConfig:
        return self.model(self.widths[0], 1e-3, 1e-4)

    def space(self) -> jrobust.SearchSpace:
        """The ranged space of ``jrobust.search`` (and of ``random``'s draws)."""
        from jrobust.space import loguniform

        return jrobust.SearchSpace(
            self.base(),
            learning_rate=loguniform(*LEARNING_RATE),
            weight_decay=loguniform(*WEIGHT_DECAY),
            **{self.width_field: [(w,) for w in self.widths]},
        )

    def grid(self, n_models: int) -> jrobust.SearchSpace:
        """A grid of about ``n_models`` models (at least one per width): see ``grid_axes``."""
        n_lr, n_wd = grid_axes(n_models, len(self.widths))
        return jrobust.SearchSpace(
            self.base(),
            learning_rate=cell_centres(*LEARNING_RATE, n_lr),
            weight_decay=cell_centres(*WEIGHT_DECAY, n_wd),
            **{self.width_field: [(w,) for w in self.widths]},
        )

    def make_config(self, trial: Any) -> jrobust.ModelConfig:
        """Optuna's side: the same parameters from the same ranges."""
        return self.model(
            trial.suggest_categorical("width", list(self.widths)),
            trial.suggest_float("learning_rate", *LEARNING_RATE, log=True),
            trial.suggest_float("weight_decay", *WEIGHT_DECAY, log=True),
        )

    def params(self, config: jrobust.ModelConfig) -> dict[str, Any]:
        """A winner's parameters, for the tables."""
        width = getattr(config.architecture, self.width_field)[0]
        return dict(
            width=int(width),
            learning_rate=float(config.learning_rate),
            weight_decay=float(config.weight_decay),
        )


def make_setup(name: str, epochs: int | None, train_size: int) -> Setup:
    if name == "digits":
        population = jrobust.data.digits()
    else:
        population = jrobust.data.calorimeter(4_000, "B", test_size=500, val_size=0)
    return Setup(name, WIDTHS[name], epochs or EPOCHS[name], train_size, population)


def grid_axes(n_models: int, n_widths: int) -> tuple[int, int]:
    """Learning rates and weight decays of a grid of at most ``n_models`` models (at least one
    of each per width): as many cells as fit, the learning rate (which matters more) with at
    least as many values as the weight decay and at most three times as many."""
    cells = max(1, n_models // n_widths)
    pairs = [(min(cells // b, 3 * b), b) for b in range(1, math.isqrt(cells) + 1)]
    return max(pairs, key=lambda ab: (ab[0] * ab[1], ab[1]))


def cell_centres(lo: float, hi: float, n: int) -> list[float]:
    """``n`` numbers at the centres of ``n`` equal cells of ``[lo, hi]`` in log space."""
    u = (np.arange(n) + 0.5) / n
    return [float(v) for v in np.exp(np.log(lo) + u * (np.log(hi) - np.log(lo)))]


# ---------------------------------------------------------------------------------- compiles


class Compiles:
    """XLA backend compilations (count and seconds) while the ``with`` block runs."""

    def __init__(self) -> None:
        self.count, self.seconds = 0, 0.0

    def _listen(self, event: str, duration: float, **_: Any) -> None:
        if event == "/jax/core/compile/backend_compile_duration":
            self.count += 1
            self.seconds += float(duration)

    def __enter__(self) -> Compiles:
        import jax.monitoring

        jax.monitoring.register_event_duration_secs_listener(self._listen)
        return self

    def __exit__(self, *exc: Any) -> None:
        import jax.monitoring

        jax.monitoring.unregister_event_duration_listener(self._listen)


# ---------------------------------------------------------------------------------- columns


@dataclass
class Column:
    """What a column found: its winner and what it cost."""

    winner: jrobust.ModelConfig
    trainings: int
    programs: int | None = None
    executables: int | None = None
    note: str = ""


def _engine(result: Any) -> dict[str, Any]:
    timing = getattr(result, "timing", {}) or {}
    return dict(programs=timing.get("n_programs"), executables=timing.get("n_compiled"))


def run_search(setup: Setup, budget: int, seed: int, k: int, batch: int, stat: str) -> Column:
    """``jrobust.search`` as the contract calls it (the race's defaults inside)."""
    result = jrobust.search(
        setup.space(), setup.population, budget=budget, seed=seed, progress=False,
        compilation_cache=False,
    )  # fmt: skip
    iterations = getattr(result, "iterations", None)
    n_iter = int(iterations["iteration"].max()) if iterations is not None and len(iterations) else 0
    return Column(
        result.configs[result.winner_id], int(result.n_trainings), **_engine(result),
        note=f"{len(result.configs)} candidates sampled in {n_iter} iterations",
    )  # fmt: skip


def run_grid(setup: Setup, budget: int, seed: int, k: int, batch: int, stat: str) -> Column:
    """The race (default settings) on a grid of ``budget // k`` models, at most ``budget``."""
    space = setup.grid(budget // k)
    result = jrobust.race(
        space, setup.population, budget=budget, seed=seed, progress=False,
        compilation_cache=False,
    )  # fmt: skip
    return Column(
        result.configs[result.winner_id], int(result.n_trainings), **_engine(result),
        note=f"grid of {len(space)} models",
    )  # fmt: skip


def _study(seed: int, liar: bool) -> Any:
    import optuna

    return optuna.create_study(
        sampler=optuna.samplers.TPESampler(seed=seed, constant_liar=liar),
        pruner=optuna.pruners.NopPruner(),
    )


def _best(setup: Setup, study: Any) -> jrobust.ModelConfig:
    import optuna

    return setup.make_config(optuna.trial.FixedTrial(study.best_trial.params))


def run_tpe(setup: Setup, budget: int, seed: int, k: int, batch: int, stat: str) -> Column:
    """TPE, one trial at a time, one instance (instance 0) per trial."""
    from jrobust.integrations.optuna import optimize

    study = _study(seed, liar=False)
    optimize(
        study, setup.make_config, setup.population, n_trials=budget, batch=1, instances=1,
        statistic="mean", seed=seed, compilation_cache=False,
    )  # fmt: skip
    return Column(_best(setup, study), budget, note=f"{budget} trials of 1 instance")


def run_bridge(setup: Setup, budget: int, seed: int, k: int, batch: int, stat: str) -> Column:
    """TPE through the bridge: ``k`` instances per trial, ``batch`` trials at a time."""
    from jrobust.integrations.optuna import optimize

    n_trials = budget // k
    study = _study(seed, liar=True)
    optimize(
        study, setup.make_config, setup.population, n_trials=n_trials, batch=batch,
        instances=k, statistic=stat, seed=seed, compilation_cache=False,
    )  # fmt: skip
    return Column(
        _best(setup, study), n_trials * k, note=f"{n_trials} trials of {k} instances, batch {batch}"
    )


def run_random(setup: Setup, budget: int, seed: int, k: int, batch: int, stat: str) -> Column:
    """``budget // k`` uniform draws, ``k`` instances each, the best by ``stat``."""
    configs = setup.space().sample(budget // k, seed=np.random.default_rng([seed, 7]))
    result = jrobust.exhaustive(
        configs, setup.population, instances=k, statistic=stat, seed=seed, progress=False,
        compilation_cache=False,
    )  # fmt: skip
    return Column(
        configs[result.winner_id], int(result.n_trainings), **_engine(result),
        note=f"{len(configs)} models of {k} instances",
    )  # fmt: skip


RUNNERS: dict[str, Callable[..., Column]] = dict(
    search=run_search, grid=run_grid, tpe=run_tpe, bridge=run_bridge, random=run_random
)


# ---------------------------------------------------------------------------------- judging


def fresh_losses(setup: Setup, config: jrobust.ModelConfig, seed: int, fresh: int) -> np.ndarray:
    """The winner's losses on ``fresh`` instances no column trained (+inf for a failure)."""
    rows = jrobust.train_instances(
        config, setup.population, range(FRESH_START, FRESH_START + fresh), seed=seed
    )
    losses = rows["loss"].to_numpy(np.float64)
    return np.where(np.isfinite(losses), losses, np.inf)


def fresh_values(losses: np.ndarray) -> dict[str, float]:
    """Mean, std and PD of one winner's fresh losses (``jrobust.stats``)."""
    table = np.asarray(losses, np.float64)[None, :]
    return {s: float(np.asarray(jrobust.get_statistic(s)(table))[0]) for s in MEASURES}


def run_seed(
    setup: Setup,
    seed: int,
    methods: Sequence[str],
    budget: int,
    k: int,
    batch: int,
    fresh: int,
    stat: str,
) -> list[dict[str, Any]]:
    """Every column of ``methods`` on one seed, its winner judged on the fresh instances."""
    import optuna

    from jrobust.train import n_compiled

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows, judged = [], {}
    for method in methods:
        t0, before = time.perf_counter(), n_compiled()
        with Compiles() as compiles, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            column = RUNNERS[method](setup, budget, seed, k, batch, stat)
        seconds, compiled = time.perf_counter() - t0, n_compiled() - before
        key = column.winner.full_repr()  # the full configuration (repr shortens it)
        if key not in judged:  # two columns with the same winner: judged once
            judged[key] = fresh_losses(setup, column.winner, seed, fresh)
        losses = judged[key]
        rows.append(
            dict(
                space=setup.name,
                seed=seed,
                method=method,
                **setup.params(column.winner),
                trainings=column.trainings,
                seconds=round(seconds, 2),
                compiled=compiled,
                compiles=compiles.count,
                compile_seconds=round(compiles.seconds, 2),
                programs=column.programs,
                executables=column.executables,
                **{f"fresh_{s}": v for s, v in fresh_values(losses).items()},
                fresh_losses=[float(x) for x in losses],
                note=column.note,
            )
        )
        print(
            f"  {setup.name} seed {seed} {method}: fresh mean {rows[-1]['fresh_mean']:.4g} "
            f"std {rows[-1]['fresh_std']:.4g}, {column.trainings} trainings, {seconds:.1f} s",
            flush=True,
        )
    return rows


def run_column(
    name: str,
    epochs: int | None,
    train_size: int,
    method: str,
    seeds: int,
    budget: int,
    k: int,
    batch: int,
    fresh: int,
    stat: str,
) -> list[dict[str, Any]]:
    """One column on seeds ``0..seeds-1`` with its own data (``make_setup``): run in a process
    of its own, it compiles its programs on its first seed, as a search in a fresh process
    would, and reuses them on the later seeds, as one long-running process would."""
    setup = make_setup(name, epochs, train_size)
    rows = []
    for seed in range(seeds):
        rows += run_seed(setup, seed, [method], budget, k, batch, fresh, stat)
    return rows


# ---------------------------------------------------------------------------------- reporting


def bootstrap_ci(values: Sequence[float], resamples: int = 10_000) -> tuple[float, float]:
    """95 % percentile bootstrap interval of the mean of ``values`` (over seeds)."""
    x = np.asarray(values, np.float64)
    if len(x) < 2 or not np.isfinite(x).all():
        return float(np.min(x)), float(np.max(x))
    means = x[np.random.default_rng(0).integers(0, len(x), (resamples, len(x)))].mean(axis=1)
    lo, hi = np.quantile(means, [0.025, 0.975])
    return float(lo), float(hi)


def summarize(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per space and column: the median, range and bootstrap interval over seeds of each fresh
    measure, and the seeds where ``search``'s winner is as good on fresh mean and std."""
    out = []
    for space in dict.fromkeys(r["space"] for r in rows):
        here = [r for r in rows if r["space"] == space]
        search = {r["seed"]: r for r in here if r["method"] == "search"}
        for method in dict.fromkeys(r["method"] for r in here):
            sel = [r for r in here if r["method"] == method]
            line: dict[str, Any] = dict(space=space, method=method, seeds=len(sel))
            for k in ("trainings", "seconds"):
                line[k] = float(np.median([r[k] for r in sel]))
            first = min(sel, key=lambda r: r["seed"])  # the seed that compiled the programs
            for k in ("compiled", "compiles", "compile_seconds"):
                line[k] = first[k]
                line[f"{k}_all_seeds"] = sum(r[k] for r in sel)
            for m in MEASURES:
                vals = [r[f"fresh_{m}"] for r in sel]
                line[f"fresh_{m}"] = dict(
                    median=float(np.median(vals)), low=float(np.min(vals)),
                    high=float(np.max(vals)), mean_ci=bootstrap_ci(vals),
                )  # fmt: skip
            if search and method != "search":
                line["search_as_good"] = sum(
                    search[r["seed"]]["fresh_mean"] <= r["fresh_mean"] + 1e-12
                    and search[r["seed"]]["fresh_std"] <= r["fresh_std"] + 1e-12
                    for r in sel
                    if r["seed"] in search
                )
            out.append(line)
    return out


def _g(x: float) -> str:
    return f"{x:.4g}"


def markdown(
    rows: Sequence[Mapping[str, Any]], summary: Sequence[Mapping[str, Any]], meta: Mapping
) -> str:
    lines = [
        f"Command: `{meta['command']}` (jrobust {meta['jrobust']}, optuna {meta['optuna']}, "
        f"JAX {meta['jax']} on {meta['backend']}, {meta['date']}"
        + (f", XLA_FLAGS={meta['xla_flags']!r}" if meta["xla_flags"] else "")
        + f"); whole run {meta['seconds']:.0f} s.",
        "",
        f"Sizes: {meta['seeds']} seeds; budget {meta['budget']} trainings per column; "
        f"{meta['instances']} instances per trial (bridge, random; grid of budget // k models); "
        f"bridge batch {meta['batch']}; statistic {meta['statistic']!r}; {meta['fresh']} fresh "
        f"instances from {FRESH_START}; {meta['train_size']} samples per instance, batch 50; "
        + (
            "columns share their compiled programs (compile figures depend on the order)."
            if meta["shared_programs"]
            else "every column compiles its own programs (on its first seed)."
        ),
        "",
    ]
    for space in dict.fromkeys(s["space"] for s in summary):
        sizes = meta["spaces"][space]
        lines += [
            f"### {space}: widths {sizes['widths']}, {sizes['epochs']} epochs",
            "",
            "| column | fresh mean: median [min, max] | fresh std | fresh PD | trainings "
            "| seconds (median) | programs compiled, first seed (later seeds) | XLA compiles, "
            "first seed (s) | search as good on mean and std |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for s in (s for s in summary if s["space"] == space):
            cells = [
                f"{_g(s[f'fresh_{m}']['median'])} [{_g(s[f'fresh_{m}']['low'])}, "
                f"{_g(s[f'fresh_{m}']['high'])}]"
                for m in MEASURES
            ]
            good = f"{s['search_as_good']} of {s['seeds']}" if "search_as_good" in s else "-"
            lines.append(
                f"| {s['method']} | {' | '.join(cells)} | {s['trainings']:.0f} "
                f"| {s['seconds']:.1f} | {s['compiled']} ({s['compiled_all_seeds'] - s['compiled']}) "
                f"| {s['compiles']} ({s['compile_seconds']:.1f}) | {good} |"
            )
        lines += [
            "",
            "| seed | column | width | learning rate | weight decay | fresh mean | fresh std "
            "| fresh PD | engine programs / executables | note |",
            "|---:|---|---:|---:|---:|---:|---:|---:|---|---|",
        ]
        for r in (r for r in rows if r["space"] == space):
            engine = "-" if r["programs"] is None else f"{r['programs']} / {r['executables']}"
            lines.append(
                f"| {r['seed']} | {r['method']} | {r['width']} | {r['learning_rate']:.3g} "
                f"| {r['weight_decay']:.3g} | {_g(r['fresh_mean'])} | {_g(r['fresh_std'])} "
                f"| {_g(r['fresh_pd'])} | {engine} | {r['note']} |"
            )
        lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------- command


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line, checked (``SystemExit(2)`` with one line on bad input)."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--spaces", nargs="+", choices=SPACES, default=None, help="default: both")
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    p.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 (default 5)")
    p.add_argument("--budget", type=int, default=None, help="trainings per column (default 240)")
    p.add_argument("--instances", type=int, default=None, help="k per trial (default 10)")
    p.add_argument("--batch", type=int, default=None, help="bridge trials at once (default 8)")
    p.add_argument("--epochs", type=int, default=None, help="default: digits 5, calo 3")
    p.add_argument("--fresh", type=int, default=None, help="fresh instances (default 20)")
    p.add_argument("--train-size", type=int, default=None, help="samples (default 1000)")
    p.add_argument("--statistic", default=None, help="default: the race's ('max')")
    p.add_argument("--quick", action="store_true", help="tiny sizes, 1 seed: a check")
    p.add_argument(
        "--workers", type=int, default=1, help="columns run at once, each in its own process"
    )
    p.add_argument(
        "--shared-programs",
        action="store_true",
        default=None,
        help="columns reuse each other's compiled programs (faster; compile figures then "
        "depend on the order; on with --quick)",
    )
    p.add_argument("--json", type=Path, help="write the rows, the summary and the sizes")
    p.add_argument("--markdown", type=Path, help="write the tables")
    args = p.parse_args(argv)
    defaults = dict(
        spaces=list(SPACES), seeds=5, budget=240, instances=10, batch=8, fresh=20, train_size=1000,
        shared_programs=False,
    )  # fmt: skip
    for source in (QUICK, defaults) if args.quick else (defaults,):
        for key, value in source.items():
            if getattr(args, key) is None:
                setattr(args, key, value)
    args.statistic = args.statistic or jrobust.RaceSettings().statistic
    args.methods = list(dict.fromkeys(args.methods))
    args.spaces = list(dict.fromkeys(args.spaces))
    for key in ("seeds", "instances", "batch", "fresh", "train_size", "workers"):
        if getattr(args, key) < 1:
            p.error(f"--{key.replace('_', '-')} must be at least 1")
    if args.epochs is not None and args.epochs < 1:
        p.error("--epochs must be at least 1")
    if args.budget < 2 * args.instances:
        p.error(
            f"--budget ({args.budget}) must allow at least 2 models of --instances "
            f"({args.instances}) trainings each"
        )
    if args.train_size < 50:
        p.error("--train-size must be at least the batch size, 50")
    if "search" in args.methods and not hasattr(jrobust, "search"):
        p.error(
            "this jrobust has no jrobust.search: leave the column out "
            "(--methods grid tpe bridge random)"
        )
    try:
        jrobust.get_statistic(args.statistic)
    except (ValueError, TypeError) as err:
        p.error(f"--statistic: {err}")
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    if args.quick:  # a check, not a measurement: compile fast (as the tests do), train slower
        os.environ.setdefault("XLA_FLAGS", QUICK_XLA_FLAGS)
    import jax
    import optuna

    command = " ".join(
        ["python benchmarks/search.py", *(argv if argv is not None else sys.argv[1:])]
    )
    print(f"# {command}", flush=True)
    t0 = time.perf_counter()
    spaces = {n: dict(widths=list(WIDTHS[n]), epochs=args.epochs or EPOCHS[n]) for n in args.spaces}
    sizes = (args.budget, args.instances, args.batch, args.fresh, args.statistic)
    rows = []
    if args.shared_programs:  # one process: a column reuses the programs of the columns before
        for name in args.spaces:
            setup = make_setup(name, args.epochs, args.train_size)
            for seed in range(args.seeds):
                rows += run_seed(setup, seed, args.methods, *sizes)
    else:  # a process per column (and space), seeds in it one after another
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        jobs = [
            (name, args.epochs, args.train_size, method, args.seeds, *sizes)
            for name in args.spaces
            for method in args.methods
        ]
        context = multiprocessing.get_context("spawn")  # JAX is threaded: no fork
        with ProcessPoolExecutor(args.workers, mp_context=context, max_tasks_per_child=1) as pool:
            parts = list(pool.map(run_column, *zip(*jobs, strict=True)))
        order = {(n, m): i for i, (n, _, _, m, *_) in enumerate(jobs)}
        rows = sorted(
            (r for part in parts for r in part),
            key=lambda r: (
                args.spaces.index(r["space"]),
                r["seed"],
                order[r["space"], r["method"]],
            ),
        )
    summary = summarize(rows)
    meta = dict(
        command=command,
        date=time.strftime("%Y-%m-%d"),
        seconds=time.perf_counter() - t0,
        seeds=args.seeds,
        budget=args.budget,
        instances=args.instances,
        batch=args.batch,
        fresh=args.fresh,
        train_size=args.train_size,
        statistic=args.statistic,
        methods=args.methods,
        shared_programs=args.shared_programs,
        spaces=spaces,
        learning_rate=LEARNING_RATE,
        weight_decay=WEIGHT_DECAY,
        jrobust=jrobust.__version__,
        optuna=optuna.__version__,
        jax=jax.__version__,
        backend=jax.default_backend(),
        python=platform.python_version(),
        xla_flags=os.environ.get("XLA_FLAGS", ""),
    )
    text = markdown(rows, summary, meta)
    print(text)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text)
    report = dict(meta=meta, rows=rows, summary=summary)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
