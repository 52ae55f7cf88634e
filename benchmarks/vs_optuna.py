"""The race against Optuna at equal trainings, winners judged on instances no search saw.

The paper's NAS found its energy models with Optuna's TPE; the winners' instances were not
robust. This benchmark repeats that comparison on equal terms on the calorimeter grid of
``benchmarks/selection_grids.py`` (32 small CNNs, every model x 60 instances trained once, every
training the same 4,000 events x 3 epochs at batch 64 = 186 steps: equal trainings are equal
instance-steps). A search's training of ``(model, instance)`` is a lookup of that grid.

**Columns.** Per seed ``s`` the 60 columns are permuted (``numpy.random.default_rng([SPLIT_SEED,
s])``): the first ``--search`` (30) are the search columns, the others (30) the **fresh** ones no
search saw. Instance ``i`` of a search is search column ``i``: every search pairs its models on
the same instances, as the race does (common random numbers). Every look-up is one training,
also of a pair the search trained before (Optuna's trials train what they are asked to; the
notes count these repeats; ``--cache`` lets the pruned searches keep their losses instead, as a
user's cache would, and bounds their trials at 3 per training of the budget), and a search stops
when its budget is spent.

**Searches** (budget: the trainings of the default race on that seed):

* **race (defaults)**: ``jrobust.race(32, evaluator=...)`` with ``jrobust.RaceSettings()``
  (with an evaluator: one instance per round) and ``max_instances`` = the search columns; extra
  rows: the paired rules ``wilcoxon``, ``ttest_paired``, ``friedman``, ``bootstrap`` (defaults
  otherwise, their own trainings), and with ``--choice FILE`` the settings chosen by
  ``benchmarks/selection.py``.
* **TPE**: ``optuna.samplers.TPESampler(seed=s)``, one categorical per factor of the space;
  trial ``t`` trains one instance of the proposed model, its next unused instance (so a model
  proposed again gets a new instance, until its search columns run out), and its value is that
  instance's loss. Winner: ``study.best_trial`` (the best single instance, what the paper's NAS
  reported); and, from the same study, the model with the lowest mean over its trials.
* **TPE + WilcoxonPruner** (``p_threshold=0.1``, Optuna's default): a trial evaluates the proposed
  model on instances ``0..n-1`` (``--per-trial`` n = 10) in a per-trial shuffled order, as
  Optuna's documentation recommends, reporting instance ``k``'s loss at step ``k`` (the same
  instance ids for every trial: paired); when pruned it returns the mean so far (the documented
  pattern, so TPE learns from it). Winner: the trial with the lowest mean among those that
  evaluated all n instances.
* **TPE + SuccessiveHalvingPruner** (``min_resource=1, reduction_factor=2``): instances
  ``0..n-1`` in order, reporting the running mean after ``k`` instances at step ``k``; pruned
  trials raise ``TrialPruned``. Winner: the completed trial with the lowest mean.
* References (not equal budget unless said): exhaustive search ranked like the race
  (``jrobust.exhaustive``) with ``budget // 32`` instances each (about equal budget), and with
  every search column.

**Judged on fresh columns**: the winner's fresh mean, std and PD = Q90 - Q10 (jrobust's
statistics), and the regret of each (winner's value minus the best model's on the same fresh
columns). Intervals: 95 % percentile bootstrap over seeds. Target: the race's winner at least as
good on fresh std and PD as each Optuna search's in at least 4 of 5 seeds (here: 80 % of them).

    python benchmarks/vs_optuna.py --choice benchmarks/results/selection_choice.json \\
        --json benchmarks/results/vs_optuna.json --markdown benchmarks/results/vs_optuna.md
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import jrobust

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from selection_grids import Grid, load_grid  # noqa: E402

SPLIT_SEED = 4242
MEASURES = ("mean", "std", "pd")
PAIRED_RULES = ("wilcoxon", "ttest_paired", "friedman", "bootstrap")
#: With a cache a trial of a model evaluated before costs nothing; this bounds the trials.
MAX_TRIALS_PER_TRAINING = 3
OPTUNA = ("TPE", "TPE + WilcoxonPruner", "TPE + SuccessiveHalvingPruner")


class BudgetSpent(Exception):
    """Raised by ``Charged`` when a search asks for a training beyond its budget."""


class Charged:
    """One search's access to the grid: instance ``i`` of model ``m`` is ``losses[m,
    search[i]]``, one training per look-up up to ``budget``; with ``cache`` a pair trained
    before is free (its loss is kept), without it is trained (and charged) again."""

    def __init__(
        self,
        losses: np.ndarray,
        search: np.ndarray,
        budget: int | None = None,
        cache: bool = False,
    ):
        self.losses, self.search, self.budget, self.cache = (
            losses,
            np.asarray(search),
            budget,
            cache,
        )
        self.trainings = 0
        self.seen: set[tuple[int, int]] = set()

    @property
    def repeated(self) -> int:
        """Trainings of a pair trained before (identical losses: nothing learnt)."""
        return self.trainings - len(self.seen)

    def __call__(self, models: Any, instances: Any) -> np.ndarray:
        models, instances = np.atleast_1d(models), np.atleast_1d(instances)
        if instances.size and instances.max() >= len(self.search):
            raise IndexError(f"instance {instances.max()} beyond the {len(self.search)} columns")
        pairs = {(int(m), int(i)) for m, i in zip(models, instances, strict=True)}
        cost = len(pairs - self.seen) if self.cache else len(models)
        if self.budget is not None and self.trainings + cost > self.budget:
            raise BudgetSpent
        self.trainings += cost
        self.seen |= pairs
        return self.losses[models, self.search[instances]]

    def one(self, model: int, instance: int) -> float:
        return float(self(model, instance)[0])


# ---------------------------------------------------------------------------------- the space


def factors(grid: Grid) -> tuple[dict[str, list[str]], dict[tuple[str, ...], int]]:
    """The space's factors for Optuna (one categorical each) and the model of every combination.

    Columns of the grid's model table that split the models the same way (the calorimeter's
    ``conv`` and ``pool``) are one factor; if the factors do not form a full product, the space
    is one categorical over the model names.
    """
    records = grid.meta["models"]
    columns = [c for c in records[0] if c not in ("model_id", "name", "cohort", "row")]
    merged: dict[tuple, list[str]] = {}
    for c in columns:
        values = [str(r[c]) for r in records]
        labels = tuple(dict.fromkeys(values))
        merged.setdefault(tuple(labels.index(v) for v in values), []).append(c)
    choices: dict[str, list[str]] = {}
    keys = [[] for _ in records]
    for cols in merged.values():
        name = "+".join(cols)
        labels = [" ".join(str(r[c]) for c in cols) for r in records]
        choices[name] = list(dict.fromkeys(labels))
        for k, label in zip(keys, labels, strict=True):
            k.append(label)
    index = {tuple(k): m for m, k in enumerate(keys)}
    if len(index) != grid.n_models or np.prod([len(v) for v in choices.values()]) != len(index):
        return {"model": list(grid.names)}, {(n,): m for m, n in enumerate(grid.names)}
    return choices, index


def suggest(trial: Any, choices: Mapping[str, list[str]], index: Mapping) -> int:
    return index[tuple(trial.suggest_categorical(f, v) for f, v in choices.items())]


# ---------------------------------------------------------------------------------- searches


def run_race(grid: Grid, search: np.ndarray, seed: int, **settings: Any) -> dict[str, Any]:
    charged = Charged(grid.losses, search)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = jrobust.race(
            grid.n_models,
            evaluator=charged,
            max_instances=len(search),
            seed=seed,
            progress=False,
            **settings,
        )
    assert charged.trainings == result.n_trainings == len(charged.seen)
    return dict(winner=int(result.winner_id), trainings=charged.trainings)


def run_exhaustive(grid: Grid, search: np.ndarray, instances: int, **rank: Any) -> dict[str, Any]:
    charged = Charged(grid.losses, search)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = jrobust.exhaustive(
            grid.n_models, evaluator=charged, instances=instances, progress=False, **rank
        )
    return dict(winner=int(result.winner_id), trainings=charged.trainings)


def _study(seed: int, pruner: Any = None) -> Any:
    import optuna

    return optuna.create_study(
        direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed), pruner=pruner
    )


def _optimize(study: Any, objective: Callable, charged: Charged) -> None:
    """Trials until the budget is spent, or (with a cache, where a trial may cost nothing)
    ``MAX_TRIALS_PER_TRAINING`` trials per training of the budget."""

    def stop(study: Any, trial: Any) -> None:
        limit = MAX_TRIALS_PER_TRAINING * charged.budget
        if charged.trainings >= charged.budget or len(study.trials) >= limit:
            study.stop()

    study.optimize(objective, callbacks=[stop], catch=(BudgetSpent,))


def run_tpe(grid: Grid, search: np.ndarray, seed: int, budget: int) -> list[dict[str, Any]]:
    """TPE, one instance per trial; two winners from the one study."""
    choices, index = factors(grid)
    charged = Charged(grid.losses, search, budget)
    tried: dict[int, list[float]] = {}

    def objective(trial: Any) -> float:
        m = suggest(trial, choices, index)
        k = len(tried.get(m, []))  # past the search columns of m: train one of them again
        loss = charged.one(m, k % len(search))
        tried.setdefault(m, []).append(loss)
        trial.set_user_attr("model", m)
        return loss

    study = _study(seed)
    _optimize(study, objective, charged)
    best = study.best_trial.user_attrs["model"]
    by_mean = min(tried, key=lambda m: (np.mean(tried[m]), -len(tried[m])))
    note = (
        f"{len(study.trials)} trials, {len(tried)} distinct models, most trials of one model "
        f"{max(map(len, tried.values()))}, {charged.repeated} trainings of a pair trained "
        "before (the model's search columns used up)"
    )
    return [
        dict(search="TPE", winner=int(best), trainings=charged.trainings, note=note),
        dict(
            search="TPE (winner: best mean over its trials)",
            winner=int(by_mean),
            trainings=charged.trainings,
            note=f"the winner had {len(tried[by_mean])} trials",
        ),
    ]


def run_wilcoxon(
    grid: Grid, search: np.ndarray, seed: int, budget: int, per_trial: int, cache: bool = False
) -> dict[str, Any]:
    import optuna

    choices, index = factors(grid)
    charged = Charged(grid.losses, search, budget, cache)
    full: dict[int, float] = {}  # trial number -> mean over all per_trial instances

    def objective(trial: Any) -> float:
        m = suggest(trial, choices, index)
        trial.set_user_attr("model", m)
        order = np.random.default_rng([seed, trial.number]).permutation(per_trial)
        losses = []
        for step in order:
            try:
                losses.append(charged.one(m, int(step)))
            except BudgetSpent:
                break
            trial.report(losses[-1], int(step))
            if trial.should_prune():
                break
        if not losses:
            raise optuna.TrialPruned("training budget spent")
        if len(losses) == per_trial:
            full[trial.number] = float(np.mean(losses))
        return float(np.mean(losses))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        pruner = optuna.pruners.WilcoxonPruner(p_threshold=0.1)
    study = _study(seed, pruner)
    _optimize(study, objective, charged)
    if full:
        number = min(full, key=full.get)
        winner = study.trials[number].user_attrs["model"]
    else:
        winner = study.best_trial.user_attrs["model"]
    return dict(
        search="TPE + WilcoxonPruner",
        winner=int(winner),
        trainings=charged.trainings,
        note=f"{len(study.trials)} trials, {len(full)} evaluated all {per_trial} instances, "
        f"{charged.repeated} trainings of a pair trained before (a model proposed again)",
    )


def run_halving(
    grid: Grid, search: np.ndarray, seed: int, budget: int, per_trial: int, cache: bool = False
) -> dict[str, Any]:
    import optuna

    choices, index = factors(grid)
    charged = Charged(grid.losses, search, budget, cache)

    def objective(trial: Any) -> float:
        m = suggest(trial, choices, index)
        trial.set_user_attr("model", m)
        losses = []
        for step in range(per_trial):
            try:
                losses.append(charged.one(m, step))
            except BudgetSpent:
                raise optuna.TrialPruned("training budget spent") from None
            trial.report(float(np.mean(losses)), step + 1)
            if step + 1 < per_trial and trial.should_prune():
                raise optuna.TrialPruned()
        return float(np.mean(losses))

    pruner = optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=2)
    study = _study(seed, pruner)
    _optimize(study, objective, charged)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if done:
        winner = min(done, key=lambda t: t.value).user_attrs["model"]
    else:  # nothing completed: the best last intermediate value
        winner = min(
            (t for t in study.trials if t.intermediate_values),
            key=lambda t: t.intermediate_values[max(t.intermediate_values)],
        ).user_attrs["model"]
    return dict(
        search="TPE + SuccessiveHalvingPruner",
        winner=int(winner),
        trainings=charged.trainings,
        note=f"{len(study.trials)} trials, {len(done)} completed ({per_trial} instances), "
        f"{charged.repeated} trainings of a pair trained before (a model proposed again)",
    )


# ---------------------------------------------------------------------------------- one seed


def split(n_columns: int, n_search: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(search, fresh) columns of one seed: a random permutation cut in two."""
    perm = np.random.default_rng([SPLIT_SEED, seed]).permutation(n_columns)
    return perm[:n_search], perm[n_search:]


def run_seed(
    grid: Grid,
    seed: int,
    n_search: int,
    per_trial: int,
    chosen: Mapping[str, Any] | None,
    cache: bool = False,
) -> list[dict[str, Any]]:
    """Every search on one seed; one row per search with its winner's fresh figures."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    search, fresh = split(grid.n_instances, n_search, seed)
    t0 = time.perf_counter()
    rows = [dict(search="race (defaults)", **run_race(grid, search, seed))]
    budget = rows[0]["trainings"]
    if chosen:
        label = ", ".join(f"{k}={v}" for k, v in sorted(chosen.items()))
        rows.append(
            dict(search=f"race (chosen: {label})", **run_race(grid, search, seed, **chosen))
        )
    rows += [
        dict(search=f"race ({r})", **run_race(grid, search, seed, rule=r)) for r in PAIRED_RULES
    ]
    rows += run_tpe(grid, search, seed, budget)
    rows.append(run_wilcoxon(grid, search, seed, budget, per_trial, cache))
    rows.append(run_halving(grid, search, seed, budget, per_trial, cache))
    default = jrobust.RaceSettings()
    rank = dict(statistic=default.statistic)
    k = max(1, budget // grid.n_models)
    rows.append(
        dict(search=f"exhaustive ({default.statistic}), {k} instances each (about equal budget)",
             **run_exhaustive(grid, search, k, **rank))
    )  # fmt: skip
    rows.append(
        dict(search=f"exhaustive ({default.statistic}), all {n_search} search columns",
             **run_exhaustive(grid, search, n_search, **rank))
    )  # fmt: skip
    values = {s: np.asarray(jrobust.get_statistic(s)(grid.losses[:, fresh])) for s in MEASURES}
    for r in rows:
        r.update(seed=seed, budget=budget)
        for s in MEASURES:
            r[f"fresh_{s}"] = float(values[s][r["winner"]])
            r[f"regret_{s}"] = float(values[s][r["winner"]] - values[s].min())
        r["name"] = grid.names[r["winner"]]
    rows[0]["seconds"] = time.perf_counter() - t0
    return rows


# ---------------------------------------------------------------------------------- reporting


def bootstrap_ci(values: Sequence[float], resamples: int = 10_000) -> tuple[float, float]:
    """95 % percentile bootstrap interval of the mean of ``values`` (over seeds)."""
    x = np.asarray(values, np.float64)
    means = x[np.random.default_rng(0).integers(0, len(x), (resamples, len(x)))].mean(axis=1)
    lo, hi = np.quantile(means, [0.025, 0.975])
    return float(lo), float(hi)


def summarize(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    out = []
    race = {r["seed"]: r for r in rows if r["search"] == "race (defaults)"}
    for name in dict.fromkeys(r["search"] for r in rows):
        sel = [r for r in rows if r["search"] == name]
        line: dict[str, Any] = dict(search=name, seeds=len(sel))
        line["trainings"] = float(np.median([r["trainings"] for r in sel]))
        for k in (*(f"fresh_{s}" for s in MEASURES), *(f"regret_{s}" for s in MEASURES)):
            vals = [r[k] for r in sel]
            line[k], line[f"{k}_ci"] = float(np.mean(vals)), bootstrap_ci(vals)
        # seeds where the race's winner is at least as good on fresh std and PD as this one's
        line["race_as_good_std_pd"] = sum(
            race[r["seed"]]["fresh_std"] <= r["fresh_std"] + 1e-12
            and race[r["seed"]]["fresh_pd"] <= r["fresh_pd"] + 1e-12
            for r in sel
        )
        out.append(line)
    return out


def fmt(x: float) -> str:
    return f"{x:.4f}"


def markdown(
    rows: Sequence[Mapping[str, Any]], summary: Sequence[Mapping[str, Any]], meta: Mapping
) -> str:
    seeds = sorted({r["seed"] for r in rows})
    lines = [
        "| search | trainings (median) | fresh mean [95 % CI] | fresh std [95 % CI] "
        "| fresh PD [95 % CI] | regret mean / std / PD | race's winner as good on std and PD |",
        "|---|---:|---:|---:|---:|---|---:|",
    ]
    for s in summary:
        cells = [
            f"{fmt(s[f'fresh_{m}'])} [{fmt(s[f'fresh_{m}_ci'][0])}, {fmt(s[f'fresh_{m}_ci'][1])}]"
            for m in MEASURES
        ]
        regrets = " / ".join(fmt(s[f"regret_{m}"]) for m in MEASURES)
        lines.append(
            f"| {s['search']} | {s['trainings']:.0f} | {' | '.join(cells)} | {regrets} "
            f"| {s['race_as_good_std_pd']} of {s['seeds']} |"
        )
    per_seed = [
        "",
        "Per seed: each search's winner (model id) and its fresh std / PD (x 1000):",
        "",
        "| seed | " + " | ".join(s["search"] for s in summary) + " |",
        "|---|" + "---|" * len(summary),
    ]
    for seed in seeds:
        by = {r["search"]: r for r in rows if r["seed"] == seed}
        cells = [
            f"#{by[s['search']]['winner']} {1000 * by[s['search']]['fresh_std']:.2f} / "
            f"{1000 * by[s['search']]['fresh_pd']:.2f}"
            for s in summary
        ]
        per_seed.append(f"| {seed} | " + " | ".join(cells) + " |")
    winners = sorted({r["winner"]: r["name"] for r in rows}.items())
    per_seed += ["", "Models: " + "; ".join(f"#{m} {name}" for m, name in winners) + "."]
    notes = ["", "Search notes, seed 0:", ""] + [
        f"- {r['search']}: {r['note']}" for r in rows if r["seed"] == seeds[0] and r.get("note")
    ]
    head = [
        f"Command: `{meta['command']}` (jrobust {jrobust.__version__}, optuna "
        f"{meta['optuna']}, {meta['date']}); {len(seeds)} seeds; grid {meta['grid']}: "
        f"{meta['space']}; instance loss {meta['loss']}; {meta['search']} search columns and "
        f"{meta['fresh']} fresh columns per seed; {meta['per_trial']} instances per pruned "
        f"trial; pruned searches {'keep' if meta['cache'] else 'do not keep'} their losses "
        f"(a model proposed again {'costs only new instances' if meta['cache'] else 'is trained again'}); "
        f"whole run {meta['seconds']:.0f} s.",
        "",
    ]
    return "\n".join(head + lines + per_seed + notes) + "\n"


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--seeds", type=int, default=10, help="benchmark seeds (at least 5)")
    p.add_argument("--grid", default="calo", help="the grid (benchmarks/data/grid_NAME.npz)")
    p.add_argument("--search", type=int, default=30, help="search columns per seed")
    p.add_argument("--per-trial", type=int, default=10, help="instances of a pruned trial")
    p.add_argument("--choice", type=Path, help="add the race with benchmarks/selection.py's choice")
    p.add_argument(
        "--cache",
        action="store_true",
        help="pruned Optuna searches keep their losses: a model proposed again costs only its "
        "new instances (slower: up to 3 trials per training of the budget)",
    )
    p.add_argument("--workers", type=int, default=2, help="processes (seeds run in parallel)")
    p.add_argument("--json", type=Path, help="write every row and the summary (JSON)")
    p.add_argument("--markdown", type=Path, help="write the tables (Markdown)")
    args = p.parse_args(argv)
    if args.seeds < 2 or args.workers < 1 or args.per_trial < 2:
        p.error("--seeds and --per-trial must be at least 2, --workers at least 1")
    try:
        grid = load_grid(args.grid)
    except (FileNotFoundError, ValueError) as e:
        print(e, file=sys.stderr)
        sys.exit(2)
    if not 1 <= args.search < grid.n_instances:
        p.error(f"--search must be between 1 and {grid.n_instances - 1}")
    chosen = json.loads(args.choice.read_text())["settings"] if args.choice else None
    import optuna

    command = " ".join(
        ["python benchmarks/vs_optuna.py", *(argv if argv is not None else sys.argv[1:])]
    )
    print(f"# {command}", flush=True)
    t0 = time.perf_counter()
    jobs = [
        (grid, seed, args.search, args.per_trial, chosen, args.cache) for seed in range(args.seeds)
    ]
    if args.workers > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context("spawn")  # JAX is loaded: no fork
        with ProcessPoolExecutor(min(args.workers, args.seeds), mp_context=context) as pool:
            parts = list(pool.map(run_seed, *zip(*jobs, strict=True)))
    else:
        parts = [run_seed(*job) for job in jobs]
    rows = [r for part in parts for r in part]
    summary = summarize(rows)
    meta = dict(
        command=command,
        optuna=optuna.__version__,
        date=time.strftime("%Y-%m-%d"),
        grid=args.grid,
        space=grid.meta["space"],
        loss=grid.meta["loss"],
        search=args.search,
        fresh=grid.n_instances - args.search,
        per_trial=args.per_trial,
        cache=args.cache,
        seconds=time.perf_counter() - t0,
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
