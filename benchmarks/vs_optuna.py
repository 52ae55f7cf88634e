"""The paper's NAS comparison, made fair: the race versus Optuna TPE (with and without pruning).

Boldyrev, Ratnikov and Shevelev (IEEE Access 2025) found their NAS 1 / NAS 2 energy models with
Optuna's TPE sampler; the instances of those winners were not robust (NAS 2's instances "freeze"
anywhere between 0.023 and 0.048 RMSE(E)/E). This benchmark repeats that comparison on equal terms:

* **One space.** Small energy CNNs for the synthetic calorimeter (data set B, ``--events`` events,
  target ``energy``, the total energy fed in before the last hidden dense layer like NAS 1/2,
  ``loss="relative_mse"``, ``metric="relative_rmse"``, AdamW, ``--train-size`` training events and
  ``--epochs`` epochs per instance). ``--models`` picks the grid (see ``SPACES``): conv widths x
  activation (relu / prelu) [x dense head] make the cohorts (one compiled program each); learning
  rate x weight decay are scalar hyperparameters inside a cohort.
* **One trainer.** Every training of every search is a jrobust instance (``train_stack`` of one
  lane): instance ``i`` of a model draws training subset ``i`` of the population and an init key
  from ``(seed, i, model)``. JAX compiles each cohort's program once and then reuses it: before any
  search, one throw-away instance per cohort compiles the programs (reported separately), so no
  search pays or saves compilation and the wall times compare searches, not compilers. Every
  stack here has one lane (``max_bucket=1``; ``--max-bucket`` changes the race's): on the 2-core
  CPU this was written on, a stack of 4 instances took 4.4 s against 1.3 s for one, so stacking
  buys nothing there, and one program per cohort keeps the compile bill small (3-20 s each). On a
  GPU the race would stack its rounds. Every search starts from instance index 0 (the searches
  share training subsets: common random numbers).
* **The race** (``jrobust.race``): halving after ``--warmup`` instances per model, one new instance
  per survivor per round (Algorithm 1), eliminating and ranking by ``--statistic`` (default
  ``q3+iqr``: Q3 + IQR of the instance losses, an upper bound that penalises both a poor average
  and a wide spread; fixed before the first run). Its number of trainings is the budget of both
  Optuna searches.
* **Optuna TPE** (``TPESampler(seed)`` with its defaults; one ``suggest_categorical`` per choice of
  the grid, so it searches exactly the same models): trial ``t`` trains ONE instance, instance
  index ``t`` (a fresh training subset and init each time, also when TPE proposes a model again),
  and its objective is that instance's test loss. As many trials as the race had trainings. The
  winner is ``study.best_trial``, what the paper's NAS reported.
* **Optuna TPE + successive halving** (``SuccessiveHalvingPruner(min_resource=1,
  reduction_factor=2)``): the resource is *instances*, not epochs (reporting per-epoch values would
  mean retraining with more epochs, which the fixed-epoch instances of the paper do not have).
  A trial trains up to ``--pruner-instances`` instances of its model one after another (instance
  indices 0, 1, 2, ... counted over the whole study, so none repeats) and reports the running
  mean of their test losses after each instance as the intermediate value at step k = instances
  so far; the pruner stops trials whose running mean is not in the best half at rungs 1, 2, 4, ...
  instances. A completed trial's value is the mean over its instances. The study stops when it
  has trained as many instances as the race (a trial that the budget cuts short counts as
  pruned). The winner is the best completed trial.
* **Verdict on fresh instances.** Each winner is trained for ``--fresh`` instances never used by
  any search (indices from 1000 on) and compared by the mean, std and PD = Q90 - Q10 of their test
  losses (and Welch's t-test of its mean against the race winner's). ``--exhaustive N`` adds the
  best model of an exhaustive search (every model x N instances, ranked by ``--statistic``), the
  ground truth of what the race looks for; it costs models x N trainings.

Usage:
    python benchmarks/vs_optuna.py              # 32 models, 30 fresh instances (~10 min, 2 cores)
    python benchmarks/vs_optuna.py --quick      # 16 models, smaller trainings (a few minutes)
    python benchmarks/vs_optuna.py --models 64 --fresh 50 --exhaustive 10 --seed 1

The Markdown table is printed and written to ``--out`` (default ``benchmarks/RESULTS_optuna.md``).
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

# The grids, by number of models. Cohort fields first (each combination compiles one program).
SPACES: dict[int, dict[str, list]] = {
    16: dict(
        conv=[(8, 8), (16, 8)],
        activation=["relu", "prelu"],
        learning_rate=[1e-3, 1e-2],
        weight_decay=[1e-3, 1e-1],
    ),
    32: dict(
        conv=[(8, 8), (16, 8)],
        activation=["relu", "prelu"],
        learning_rate=[1e-3, 3e-3, 1e-2, 3e-2],
        weight_decay=[1e-3, 1e-1],
    ),
    64: dict(
        conv=[(8, 8), (16, 8)],
        activation=["relu", "prelu"],
        dense=[(32, 9), (64, 32, 9)],
        learning_rate=[1e-3, 3e-3, 1e-2, 3e-2],
        weight_decay=[1e-3, 1e-1],
    ),
}
FRESH_START = 1000


def base_config(train_size: int, epochs: int, batch_size: int):
    from jrobust import zoo

    return zoo.cnn_config(
        conv=(16, 8),
        pool=(None, "global"),
        dense=(32, 9),
        activation="relu",
        side_at=1,
        optimizer="adamw",
        learning_rate=1e-3,
        weight_decay=1e-3,
        batch_size=batch_size,
        epochs=epochs,
        train_size=train_size,
        loss="relative_mse",
        metric="relative_rmse",
        target="energy",
        side_features=("total_energy",),
    )


def make_config(base, choice: dict):
    """The model of one point of the grid (the total energy enters before the last hidden layer)."""
    import dataclasses

    arch_fields = {f.name for f in dataclasses.fields(base.architecture)}
    arch = {k: v for k, v in choice.items() if k in arch_fields}
    rest = {k: v for k, v in choice.items() if k not in arch_fields}
    architecture = dataclasses.replace(base.architecture, **arch)
    architecture = dataclasses.replace(architecture, side_at=len(architecture.dense) - 1)
    return dataclasses.replace(base, architecture=architecture, **rest)


def grid_models(base, grid: dict[str, list]) -> tuple[list, list[dict]]:
    fields = list(grid)
    choices = [dict(zip(fields, combo, strict=True)) for combo in itertools.product(*grid.values())]
    return [make_config(base, c) for c in choices], choices


def label(choice: dict) -> str:
    def fmt(v):
        if isinstance(v, tuple):
            return "-".join(map(str, v))
        if isinstance(v, float):
            return f"{v:g}"
        return str(v)

    short = {"activation": "", "learning_rate": "lr", "weight_decay": "wd"}
    parts = []
    for k, v in choice.items():
        name = short.get(k, k)
        parts.append(f"{name}={fmt(v)}" if name else fmt(v))
    return " ".join(parts)


class Trainer:
    """One-lane jrobust trainings; counts them and their compile time."""

    def __init__(self, population, seed: int):
        self.population, self.seed = population, seed
        self.compile_seconds = 0.0

    def losses(self, config, instances) -> np.ndarray:
        from jrobust.train import train_stack

        out = []
        for i in instances:
            res = train_stack([config], [int(i)], self.population, seed=self.seed, bucket=1)
            self.compile_seconds += res["compile_seconds"]
            ok = res["ok"][0] and np.isfinite(res["loss"][0])
            out.append(float(res["loss"][0]) if ok else np.inf)
        return np.asarray(out)


def key_of(choice: dict) -> tuple:
    return tuple(choice.items())


def run_tpe(configs, choices, grid, trainer, budget, seed):
    import optuna

    index = {key_of(c): m for m, c in enumerate(choices)}
    labels = {f: [label({f: v}) or str(v) for v in vals] for f, vals in grid.items()}
    values_of = {f: dict(zip(labels[f], vals, strict=True)) for f, vals in grid.items()}

    def pick(trial) -> int:
        choice = {f: values_of[f][trial.suggest_categorical(f, labels[f])] for f in grid}
        return index[key_of(choice)]

    tried: list[int] = []

    def objective(trial):
        m = pick(trial)
        tried.append(m)
        trial.set_user_attr("model_id", m)
        return float(trainer.losses(configs[m], [trial.number])[0])

    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed))
    t0 = time.perf_counter()
    study.optimize(objective, n_trials=budget)
    wall = time.perf_counter() - t0
    best = study.best_trial
    return dict(
        winner=best.user_attrs["model_id"],
        estimate=best.value,
        trainings=budget,
        wall=wall,
        distinct=len(set(tried)),
        trials=len(study.trials),
        note="winner = best single instance",
    )


def run_pruned(configs, choices, grid, trainer, budget, seed, per_trial):
    import optuna

    index = {key_of(c): m for m, c in enumerate(choices)}
    labels = {f: [label({f: v}) or str(v) for v in vals] for f, vals in grid.items()}
    values_of = {f: dict(zip(labels[f], vals, strict=True)) for f, vals in grid.items()}
    used = {"n": 0}
    tried: list[int] = []

    def objective(trial):
        choice = {f: values_of[f][trial.suggest_categorical(f, labels[f])] for f in grid}
        m = index[key_of(choice)]
        tried.append(m)
        trial.set_user_attr("model_id", m)
        losses = []
        for step in range(1, per_trial + 1):
            if used["n"] >= budget:
                trial.study.stop()
                raise optuna.TrialPruned("training budget spent")
            losses.append(float(trainer.losses(configs[m], [used["n"]])[0]))
            used["n"] += 1
            running = float(np.mean(losses))
            trial.report(running, step)
            if step < per_trial and trial.should_prune():
                raise optuna.TrialPruned()
        return running

    def stop_when_spent(study, trial):
        if used["n"] >= budget:
            study.stop()

    study = optuna.create_study(
        direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=2),
    )
    t0 = time.perf_counter()
    study.optimize(objective, callbacks=[stop_when_spent])
    wall = time.perf_counter() - t0
    states = [t.state for t in study.trials]
    done = states.count(optuna.trial.TrialState.COMPLETE)
    pruned = states.count(optuna.trial.TrialState.PRUNED)
    if done:
        best = study.best_trial
        winner, estimate = best.user_attrs["model_id"], best.value
    else:  # nothing completed: the best last intermediate value
        best = min(
            (t for t in study.trials if t.intermediate_values),
            key=lambda t: t.intermediate_values[max(t.intermediate_values)],
        )
        winner = best.user_attrs["model_id"]
        estimate = best.intermediate_values[max(best.intermediate_values)]
    return dict(
        winner=winner,
        estimate=estimate,
        trainings=used["n"],
        wall=wall,
        distinct=len(set(tried)),
        trials=len(study.trials),
        note=f"{done} trials completed ({per_trial} instances), {pruned} pruned",
    )


def markdown(frame, floatfmt: str = ".4f") -> str:
    """A DataFrame as a GitHub Markdown table (without the optional ``tabulate`` package)."""

    def cell(v):
        return format(v, floatfmt) if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += [
        "| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)
    ]
    return "\n".join(lines)


def describe_stats(losses: np.ndarray) -> dict:
    finite = np.isfinite(losses)
    x = np.where(finite, losses, np.nan)
    q10, q25, q50, q75, q90 = np.nanquantile(x, [0.1, 0.25, 0.5, 0.75, 0.9])
    return dict(
        mean=float(np.nanmean(x)),
        std=float(np.nanstd(x, ddof=1)),
        median=float(q50),
        pd=float(q90 - q10),
        q3iqr=float(q75 + (q75 - q25)),
        max=float(np.nanmax(x)),
        failed=int((~finite).sum()),
    )


def machine() -> str:
    import jax

    dev = jax.devices()[0]
    cpu = platform.processor() or platform.machine()
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    return (
        f"{os.cpu_count()}-core CPU ({cpu}), jax backend {dev.platform}, "
        f"{len(jax.devices())} device(s); load average at start {load} "
        "(shared cores: noisy timings)"
    )


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--models",
        type=int,
        default=None,
        choices=sorted(SPACES),
        help="size of the search space (default 32; 16 with --quick)",
    )
    p.add_argument(
        "--fresh",
        type=int,
        default=None,
        help="fresh instances per winner (default 30; 10 with --quick)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--quick",
        action="store_true",
        help="16 models, 1000 events x 3 epochs per instance, 10 fresh",
    )
    p.add_argument("--events", type=int, default=20_000, help="calorimeter events (data set B)")
    p.add_argument(
        "--train-size", type=int, default=None, help="training events per instance (default 2000)"
    )
    p.add_argument("--epochs", type=int, default=None, help="epochs per instance (default 5)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument(
        "--statistic", default="q3+iqr", help="the race's elimination and ranking statistic"
    )
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument(
        "--pruner-instances", type=int, default=8, help="instances of a full Optuna+pruner trial"
    )
    p.add_argument(
        "--max-bucket", type=int, default=1, help="the race's largest stack per compiled call"
    )
    p.add_argument(
        "--exhaustive",
        type=int,
        default=0,
        help="also an exhaustive search with N instances per model",
    )
    p.add_argument("--out", type=Path, default=Path(__file__).with_name("RESULTS_optuna.md"))
    args = p.parse_args(argv)
    n_models = args.models or (16 if args.quick else 32)
    fresh = args.fresh or (10 if args.quick else 30)
    train_size = args.train_size or (1000 if args.quick else 2000)
    epochs = args.epochs or (3 if args.quick else 5)

    import jax
    import optuna
    import pandas as pd
    import scipy.stats

    import jrobust
    from jrobust.data import calorimeter

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    t_all = time.perf_counter()
    cli = argv if argv is not None else sys.argv[1:]
    command = " ".join(["python benchmarks/vs_optuna.py", *cli])
    where = machine()
    print(f"# {command}\n# jax {jax.__version__}, optuna {optuna.__version__}; {where}", flush=True)

    t0 = time.perf_counter()
    pop = calorimeter(n_events=args.events, dataset="B", seed=args.seed)
    t_data = time.perf_counter() - t0
    grid = SPACES[n_models]
    base = base_config(train_size, epochs, args.batch_size)
    configs, choices = grid_models(base, grid)
    space = jrobust.SearchSpace.from_models(configs)
    names = [label(c) for c in choices]
    print(
        f"# {pop}; {len(configs)} models in {space.n_cohorts} cohorts ({t_data:.1f} s data)",
        flush=True,
    )

    # compile every cohort's one-lane program once, before any search
    trainer = Trainer(pop, args.seed)
    t0 = time.perf_counter()
    seen = {}
    for c in configs:
        seen.setdefault(c.static_key(), c)
    for c in seen.values():
        trainer.losses(c, [10**6])
    t_compile = time.perf_counter() - t0
    print(
        f"# compiled {len(seen)} programs in {t_compile:.1f} s "
        f"(compile {trainer.compile_seconds:.1f} s)",
        flush=True,
    )

    results: dict[str, dict] = {}

    # --- the race
    t0 = time.perf_counter()
    res = jrobust.race(
        space,
        pop,
        statistic=args.statistic,
        rule="halving",
        warmup=args.warmup,
        seed=args.seed,
        max_instances=50,
        instances_per_round=1,
        max_bucket=args.max_bucket,
        compilation_cache=False,
        progress=False,  # timed: no live display beside it
    )
    wall = time.perf_counter() - t0
    budget = int(res.n_trainings)
    w_losses = res.losses(res.winner_id)
    results["race"] = dict(
        winner=res.winner_id,
        estimate=float(jrobust.get_statistic(args.statistic)(w_losses[None])[0]),
        trainings=budget,
        wall=wall,
        distinct=len(configs),
        trials=len(res.history),
        note=f"halving, warmup {args.warmup}, {args.statistic}; the winner has {len(w_losses)} "
        f"instances (mean {np.mean(w_losses):.4f}); compilation inside the race "
        f"{res.timing['compile_seconds']:.1f} s",
    )
    print(f"race: {budget} trainings, {wall:.1f} s -> {names[res.winner_id]}", flush=True)

    # --- Optuna TPE, same budget
    results["optuna_tpe"] = run_tpe(configs, choices, grid, trainer, budget, args.seed)
    r = results["optuna_tpe"]
    print(
        f"optuna tpe: {r['trainings']} trainings, {r['wall']:.1f} s -> {names[r['winner']]}",
        flush=True,
    )

    # --- Optuna TPE + successive halving, same budget
    results["optuna_tpe_sh"] = run_pruned(
        configs, choices, grid, trainer, budget, args.seed, args.pruner_instances
    )
    r = results["optuna_tpe_sh"]
    print(
        f"optuna tpe+sh: {r['trainings']} trainings, {r['wall']:.1f} s -> {names[r['winner']]}",
        flush=True,
    )

    # --- optional exhaustive ground truth
    if args.exhaustive:
        t0 = time.perf_counter()
        full = jrobust.exhaustive(
            space,
            pop,
            instances=args.exhaustive,
            statistic=args.statistic,
            seed=args.seed,
            max_bucket=args.max_bucket,
            compilation_cache=False,
            progress=False,
        )
        wall = time.perf_counter() - t0
        results["exhaustive"] = dict(
            winner=full.winner_id,
            estimate=float(full.summary(top=1)["rank_value"].iloc[0]),
            trainings=int(full.n_trainings),
            wall=wall,
            distinct=len(configs),
            trials=len(configs),
            note=f"every model x {args.exhaustive} instances, best by {args.statistic}",
        )
        print(
            f"exhaustive: {full.n_trainings} trainings, {wall:.1f} s -> {names[full.winner_id]}",
            flush=True,
        )

    # --- fresh instances of every winner
    start = max(FRESH_START, budget)  # above every instance index a search used
    fresh_idx = list(range(start, start + fresh))
    fresh_losses: dict[int, np.ndarray] = {}
    t0 = time.perf_counter()
    for r in results.values():
        m = r["winner"]
        if m not in fresh_losses:
            fresh_losses[m] = trainer.losses(configs[m], fresh_idx)
    t_fresh = time.perf_counter() - t0
    race_fresh = fresh_losses[results["race"]["winner"]]

    titles = {
        "race": "jrobust race",
        "optuna_tpe": "Optuna TPE",
        "optuna_tpe_sh": "Optuna TPE + SH pruner",
        "exhaustive": f"exhaustive ({args.exhaustive}/model)",
    }
    rows = []
    for key, r in results.items():
        s = describe_stats(fresh_losses[r["winner"]])
        if r["winner"] == results["race"]["winner"]:
            pval = "same model" if key != "race" else "-"
        else:
            test = scipy.stats.ttest_ind(fresh_losses[r["winner"]], race_fresh, equal_var=False)
            pval = f"{test.pvalue:.2g}"
        rows.append(
            {
                "search": titles[key],
                "winner": f"#{r['winner']} {names[r['winner']]}",
                "params": jrobust.count_params(configs[r["winner"]], pop.input_shape),
                "search estimate": f"{r['estimate']:.4f}",
                f"fresh mean ({fresh})": f"{s['mean']:.4f}",
                "fresh median": f"{s['median']:.4f}",
                "fresh std": f"{s['std']:.4f}",
                "fresh PD (Q90-Q10)": f"{s['pd']:.4f}",
                "fresh max": f"{s['max']:.4f}",
                "Welch p vs race": pval,
                "trainings": r["trainings"],
                "search wall (s)": f"{r['wall']:.0f}",
            }
        )
    table = pd.DataFrame(rows)
    md = markdown(table)
    print("\n" + md + "\n", flush=True)

    columns = (
        ("mean", f"fresh mean ({fresh})"),
        ("std", "fresh std"),
        ("PD", "fresh PD (Q90-Q10)"),
    )
    best = {k: min(rows, key=lambda row: float(row[c]))["search"] for k, c in columns}
    details = "\n".join(
        f"- **{titles[k]}**: {r['trials']} {'rounds' if k == 'race' else 'trials'}, "
        f"{r['distinct']} distinct models trained; {r['note']}; its worst fresh instances: "
        f"{', '.join(f'{v:.4f}' for v in np.sort(fresh_losses[r['winner']])[::-1][:3])}."
        for k, r in results.items()
    )
    per_model = (
        res.summary(top=None)[["model_id", "instances", "mean", "std", "pd", "rank_value"]]
        .head(8)
        .assign(name=lambda f: [names[i] for i in f.model_id])
    )
    grid_text = " x ".join(
        "{" + ", ".join(label({k: v}) for v in vals) + "}" for k, vals in grid.items()
    )
    text = f"""# jrobust race vs Optuna (the paper's NAS comparison, made fair)

Command: `{command}`

Date: {datetime.date.today().isoformat()}. Machine: {where}. jax {jax.__version__}, optuna \
{optuna.__version__}, jrobust {jrobust.__version__}, Python {platform.python_version()}.

Setup: calorimeter data set B, {args.events} events (training pool {len(pop.pool_index)}, \
validation {len(pop.val_index)}, test {len(pop.test_index)}); {len(configs)} energy CNNs in \
{space.n_cohorts} cohorts (grid: {grid_text}), \
AdamW, batch {args.batch_size}, {train_size} training events x {epochs} epochs per instance, \
loss relative MSE, instance loss = test RMSE(E)/E. Budget of each Optuna search = the race's \
{budget} trainings. Fresh instances: indices {fresh_idx[0]}..{fresh_idx[-1]}, never used by a \
search. How each search works: see the docstring of `benchmarks/vs_optuna.py`.

"Search estimate" is what the search believed of its winner: the race's {args.statistic} over the \
winner's instances, TPE's best single-instance loss, the pruner's mean over the best completed \
trial's instances. Wall times exclude compilation: the {len(seen)} one-lane programs were \
compiled once before the searches ({t_compile:.0f} s); data {t_data:.0f} s, fresh \
evaluation {t_fresh:.0f} s, whole run {time.perf_counter() - t_all:.0f} s.

{md}

Lowest fresh mean: {best["mean"]}; lowest fresh std: {best["std"]}; lowest fresh PD: {best["PD"]}.

{details}

The race's best models (its ledger, best first):

{markdown(per_model)}
"""
    args.out.write_text(text)
    print(f"# written {args.out} ({time.perf_counter() - t_all:.0f} s in all)", flush=True)
    return dict(results=results, fresh=fresh_losses, table=table)


if __name__ == "__main__":
    main()
