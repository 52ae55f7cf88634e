"""Selection quality judged on instances no search saw: the race against exhaustive search and
random choice, and a choice of default settings fixed before the test numbers are computed.

Every search runs on a ground-truth grid (``benchmarks/selection_grids.py``: every model of a
space trained for ``G`` instances once, stored in ``benchmarks/data/``) through a lookup
evaluator, so a rerun costs seconds. Per benchmark seed ``s`` the grid's columns are permuted at
random (``numpy.random.default_rng([SPLIT_SEED, s])``) and cut into disjoint sets:

* **search** columns: the race's instance ``i`` of seed ``s`` is grid column ``search_s[i]``;
  every search (races, exhaustive searches) looks up only these (an index beyond them raises);
* **validation** columns (digits and calo only): used once, to choose the default settings;
* **test** columns: the held-out ground truth of the reported figures.

Spaces and splits (columns search / validation / test): ``digits`` (64 MLPs) and ``calo``
(32 CNNs): 20 / 20 / 20 of 60; the authors' CCT spaces ``cct-10k``, ``cct-20k``, ``cct-30k``
(64 configurations each): 10 / 0 / 10 of 20 ("race on 10, judge on the other 10"; the
CCT spaces take no part in the choice, so they also test it on spaces it never saw).

**Held-out regret.** For the winner ``w`` of a search and a held-out column set ``H``, with
``v(m)`` = a statistic of model ``m``'s losses on ``H`` (jrobust's own ``mean``, ``std``
(ddof 1) and ``pd`` = Q90 - Q10): regret = ``v(w) - min_m v(m)`` over all models of the space,
so 0 means the winner is the held-out best by that measure. "Top 5 %": the winner's held-out
rank (1 + the number of models with a strictly smaller value) is at most
``max(1, floor(0.05 M))`` (3 of 64, 1 of 32), once ranked by the held-out value of the
statistic that ranks the strategy's models (``rank_by``, else ``statistic``) and once by the
held-out mean. Random choice is reported by its expectation (the regrets averaged over all
models, the share of models in the top 5 %) on each seed's columns. Intervals: 95 % percentile
bootstrap of the mean over seeds (10,000 resamples).

**Strategies.** Races (``jrobust.race(M, evaluator=...)``, ``max_instances`` = the number of
search columns, ``seed=s``): the defaults (``jrobust.RaceSettings()``; with an evaluator one
instance per round), the defaults with ``instances_per_round="auto"`` (what the JAX trainer
does by default), the paired rules ``wilcoxon``, ``ttest_paired``, ``friedman``, ``bootstrap``
(defaults otherwise). Exhaustive search (``jrobust.exhaustive``) ranked by the race's statistic:
at the full budget (every model x every search column) and at the race's budget (``k`` = the
race's trainings // models, at least 1, instances each). Random choice.

**Choosing the defaults (mechanically, before the test numbers).** Phase 1 sees the grids of
digits and calo with each seed's test columns blanked out (NaN) in the array it receives, so
nothing it computes can depend on them. Candidates: statistic ``max``, ``mean``, ``q3+iqr``, ``std``
(``rank_by="mean"``) x rule ``halving``, ``wilcoxon``, ``ttest_paired``, ``friedman``,
``bootstrap`` x warm-up (the default: 3 or the rule's minimum; and 5). A candidate is eligible
when its median trainings are at most half the full exhaustive budget on both spaces; the
chosen one has the lowest validation score = the mean over the two spaces and the seeds of
``0.5 q_mean + 0.25 q_std + 0.25 q_pd``, each ``q`` the winner's held-out rank fraction by
that measure (models strictly better / (M - 1): 0 for the best, 1 for the worst, 0.5 for
random choice; the ranks are the regrets' order, on a scale that a few untrained models do
not dominate); ties go to fewer trainings. Location weighs as much as the two spreads. The
choice is printed and written to ``--choice`` (JSON) before phase 2 reads it back and computes
the test columns' figures of the chosen settings, the defaults and the reference strategies.
``--frozen-choice FILE`` skips phase 1 and uses a choice made before; ``--choice-only`` stops
after it (with ``--first-seed``, a check of the choice on other seeds' validation columns).

    python benchmarks/selection.py --json benchmarks/results/selection.json \\
        --markdown benchmarks/results/selection.md    # the choice: results/selection_choice.json
    python benchmarks/selection.py --first-seed 10 --seeds 20 --choice-only \\
        --choice benchmarks/results/selection_choice_seeds10-29.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import jrobust

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from selection_grids import SPACES, Grid, load_grid  # noqa: E402

SPLIT_SEED = 2026
TOP_PERCENT = 5.0
#: (search, validation) columns per space; the rest of the grid's columns are the test columns.
SPLITS: dict[str, tuple[int, int]] = {
    "digits": (20, 20),
    "calo": (20, 20),
    "cct-10k": (10, 0),
    "cct-20k": (10, 0),
    "cct-30k": (10, 0),
}
CHOICE_SPACES = ("digits", "calo")
#: The choice's weights of the held-out regrets (location, then the two spreads).
WEIGHTS = {"mean": 0.5, "std": 0.25, "pd": 0.25}
MEASURES = ("mean", "std", "pd")
PAIRED_RULES = ("wilcoxon", "ttest_paired", "friedman", "bootstrap")


# ---------------------------------------------------------------------------------- columns


@dataclasses.dataclass(frozen=True)
class Split:
    """One seed's disjoint column sets of a grid (indices into its columns)."""

    search: np.ndarray
    validation: np.ndarray
    test: np.ndarray


def split_columns(n_columns: int, n_search: int, n_validation: int, seed: int) -> Split:
    """A random permutation of ``n_columns`` cut into search, validation and test columns.

    Args:
      n_columns: the grid's instances per model.
      n_search: columns a search may look up.
      n_validation: columns for choosing settings (may be 0).
      seed: the benchmark seed.

    Returns:
      A ``Split``; the three sets are disjoint and cover every column.
    """
    if n_search < 1 or n_validation < 0 or n_search + n_validation >= n_columns:
        raise ValueError(
            f"cannot cut {n_columns} columns into {n_search} search and {n_validation} "
            "validation columns and at least one test column"
        )
    perm = np.random.default_rng([SPLIT_SEED, seed]).permutation(n_columns)
    cut = n_search + n_validation
    return Split(perm[:n_search], perm[n_search:cut], perm[cut:])


def lookup(losses: np.ndarray, columns: np.ndarray) -> Callable[[np.ndarray, np.ndarray], Any]:
    """The evaluator of one search: instance ``i`` of model ``m`` is ``losses[m, columns[i]]``;
    an instance beyond ``columns`` raises ``IndexError`` (a search never sees other columns), and
    a NaN (a column blanked out for the validation pass) ``RuntimeError``."""
    columns = np.asarray(columns)

    def evaluate(models: np.ndarray, instances: np.ndarray) -> np.ndarray:
        instances = np.asarray(instances)
        if instances.size and instances.max() >= len(columns):
            raise IndexError(f"instance {instances.max()} beyond the {len(columns)} search columns")
        out = losses[np.asarray(models), columns[instances]]
        if np.isnan(out).any():  # grids hold no NaN (a failure is +inf): a blanked column
            raise RuntimeError("a search reached a blanked (held-out) column")
        return out

    return evaluate


# ---------------------------------------------------------------------------------- strategies


@dataclasses.dataclass(frozen=True)
class Strategy:
    """A way to pick one model from the search columns.

    Attributes:
      name: its label in the tables.
      kind: ``"race"``, ``"exhaustive"`` or ``"random"``.
      settings: race settings (``jrobust.race`` overrides), or for an exhaustive search the
        ``statistic``/``rank_by`` it ranks by.
      budget_of: for an exhaustive search, the name of the race whose trainings // models
        instances each it gets; ``None``: every search column.
    """

    name: str
    kind: str
    settings: tuple[tuple[str, Any], ...] = ()
    budget_of: str | None = None

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.settings)

    @property
    def ranks_by(self) -> str:
        """The statistic that ranks this strategy's models (what it optimises)."""
        o = {**jrobust.RaceSettings().describe(), **self.options}
        return o.get("rank_by") or o["statistic"]


def race_strategy(name: str, **settings: Any) -> Strategy:
    return Strategy(name, "race", tuple(sorted(settings.items())))


def exhaustive_for(race: Strategy, budget: bool) -> Strategy:
    """Exhaustive search ranked like ``race``: at the full budget, or at ``race``'s."""
    o = {**jrobust.RaceSettings().describe(), **race.options}
    rank = {"statistic": o["statistic"]}
    if race.options.get("rank_by"):
        rank["rank_by"] = race.options["rank_by"]
    label = o["statistic"] + (f", rank_by {rank['rank_by']}" if "rank_by" in rank else "")
    if budget:
        name = f"exhaustive ({label}), {race.name}'s budget"
        return Strategy(name, "exhaustive", tuple(sorted(rank.items())), budget_of=race.name)
    return Strategy(f"exhaustive ({label}), all search columns", "exhaustive", tuple(rank.items()))


RANDOM = Strategy("random choice (expected)", "random")


def run(
    strategy: Strategy, losses: np.ndarray, search: np.ndarray, seed: int, budgets: Mapping
) -> tuple[int | None, int]:
    """The winner and the trainings of ``strategy`` on one seed's search columns.

    Args:
      strategy: what to run.
      losses: the (models x columns) grid.
      search: the seed's search columns.
      seed: the benchmark seed (the race's ``seed``).
      budgets: trainings of the races already run on this seed, by name.

    Returns:
      ``(winner, trainings)``; random choice has no winner (``None``) and 0 trainings.
    """
    n_models = losses.shape[0]
    evaluate = lookup(losses, search)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ties and the like: the benchmark reads the results
        if strategy.kind == "race":
            result = jrobust.race(
                n_models, evaluator=evaluate, max_instances=len(search), seed=seed,
                progress=False, **strategy.options,
            )  # fmt: skip
        elif strategy.kind == "exhaustive":
            k = len(search)
            if strategy.budget_of is not None:
                k = min(len(search), max(1, budgets[strategy.budget_of] // n_models))
            result = jrobust.exhaustive(
                n_models, evaluator=evaluate, instances=k, progress=False, **strategy.options
            )
        else:
            return None, 0
    return int(result.winner_id), int(result.n_trainings)


# ---------------------------------------------------------------------------------- judging


def heldout_values(losses: np.ndarray, statistics: Iterable[str]) -> dict[str, np.ndarray]:
    """Per model, each statistic (jrobust's definitions) of its held-out losses ``losses``."""
    return {s: np.asarray(jrobust.get_statistic(s)(losses), np.float64) for s in statistics}


def regret(values: np.ndarray, winner: int) -> float:
    """``values[winner] - min(values)``: 0 when the winner is the best by ``values``."""
    return float(values[winner] - np.min(values))


def in_top(values: np.ndarray, winner: int, percent: float = TOP_PERCENT) -> bool:
    """Whether the winner's rank (1 + models strictly better) is in the top ``percent`` %
    (at least the best model)."""
    top = max(1, int(np.floor(len(values) * percent / 100 + 1e-9)))
    return int(np.sum(values < values[winner])) + 1 <= top


def rank_fraction(values: np.ndarray, winner: int) -> float:
    """The winner's held-out rank as a fraction: (number of models strictly better) / (M - 1),
    0 for the best, 1 for the worst (random choice: about 0.5)."""
    return float(np.sum(values < values[winner]) / max(1, len(values) - 1))


def judge(values: Mapping[str, np.ndarray], winner: int | None, ranks_by: str) -> dict[str, float]:
    """The regrets, rank fractions and top-5 % flags of ``winner`` (``None``: their mean over
    every model, the expectation of random choice)."""
    models = range(len(values["mean"])) if winner is None else [winner]
    rows = [
        {
            **{f"regret_{m}": regret(values[m], w) for m in MEASURES},
            **{f"rank_{m}": rank_fraction(values[m], w) for m in MEASURES},
            "top_own": float(in_top(values[ranks_by], w)),
            "top_mean": float(in_top(values["mean"], w)),
        }
        for w in models
    ]
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def evaluate_seed(
    grid: Grid, strategies: Sequence[Strategy], seed: int, heldout: str
) -> list[dict[str, Any]]:
    """Every strategy on one seed of ``grid``, judged on its ``heldout`` columns
    (``"validation"``: the seed's test columns are blanked out (NaN) first, so nothing computed
    here can depend on them; ``"test"``); one row per strategy."""
    n_search, n_validation = SPLITS[grid.name]
    statistics = set(MEASURES) | {s.ranks_by for s in strategies}
    split = split_columns(grid.n_instances, n_search, n_validation, seed)
    columns = getattr(split, heldout)
    if len(columns) == 0:
        raise ValueError(f"{grid.name} has no {heldout} columns")
    table = grid.losses
    if heldout != "test":
        table = table.copy()
        table[:, split.test] = np.nan
    values = heldout_values(table[:, columns], statistics)
    budgets: dict[str, int] = {}
    rows = []
    for strategy in strategies:
        winner, trainings = run(strategy, table, split.search, seed, budgets)
        if strategy.kind == "race":
            budgets[strategy.name] = trainings
        judged = judge(values, winner, strategy.ranks_by)
        if not all(np.isfinite(v) for v in judged.values()):
            raise RuntimeError(
                f"{grid.name}, seed {seed}, {strategy.name}: a non-finite held-out figure (a "
                "failed instance, or a blanked test column reached)"
            )
        rows.append(
            dict(space=grid.name, seed=seed, strategy=strategy.name, winner=winner,
                 trainings=trainings, **judged)
        )  # fmt: skip
    return rows


#: Worker processes for ``evaluate_all`` (set by ``--workers``); one pool per run.
WORKERS = 1
_POOL: Any = None


def _pool() -> Any:
    global _POOL
    if _POOL is None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context("spawn")  # JAX is loaded: no fork
        _POOL = ProcessPoolExecutor(WORKERS, mp_context=context)
    return _POOL


def evaluate_all(
    grids: Sequence[Grid],
    strategies: Sequence[Strategy],
    seeds: Sequence[int],
    heldout: str,
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """``evaluate_seed`` for every grid and seed (in ``WORKERS`` processes); rows in grid and
    seed order."""
    t0 = time.perf_counter()
    jobs = [(grid, strategies, seed, heldout) for grid in grids for seed in seeds]
    if WORKERS > 1:
        parts = list(_pool().map(evaluate_seed, *zip(*jobs, strict=True)))
    else:
        parts = [evaluate_seed(*job) for job in jobs]
    log(f"  {', '.join(g.name for g in grids)}: {len(strategies)} strategies x {len(seeds)} seeds "
        f"on {heldout} columns ({time.perf_counter() - t0:.0f} s)")  # fmt: skip
    return [r for part in parts for r in part]


def fmt(x: float) -> str:
    return f"{x:.4f}" if abs(x) >= 1e-3 or x == 0 else f"{x:.2e}"


def bootstrap_ci(values: Sequence[float], resamples: int = 10_000) -> tuple[float, float]:
    """95 % percentile bootstrap interval of the mean of ``values`` (over seeds)."""
    x = np.asarray(values, np.float64)
    rng = np.random.default_rng(0)
    means = x[rng.integers(0, len(x), (resamples, len(x)))].mean(axis=1)
    lo, hi = np.quantile(means, [0.025, 0.975])
    return float(lo), float(hi)


def summarize(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One line per (space, strategy): median trainings, mean regrets and top-5 % shares over
    the seeds with their intervals."""
    out = []
    for key in dict.fromkeys((r["space"], r["strategy"]) for r in rows):
        sel = [r for r in rows if (r["space"], r["strategy"]) == key]
        line: dict[str, Any] = dict(
            space=key[0],
            strategy=key[1],
            seeds=len(sel),
            trainings=float(np.median([r["trainings"] for r in sel])),
            trainings_range=[min(r["trainings"] for r in sel), max(r["trainings"] for r in sel)],
        )
        keys = (*(f"regret_{m}" for m in MEASURES), *(f"rank_{m}" for m in MEASURES))
        for k in (*keys, "top_own", "top_mean"):
            vals = [r[k] for r in sel]
            line[k] = float(np.mean(vals))
            line[f"{k}_ci"] = bootstrap_ci(vals)
        out.append(line)
    return out


# ---------------------------------------------------------------------------------- the choice


def candidates() -> list[Strategy]:
    """The candidate default settings (see the module docstring)."""
    statistics = {
        "max": {"statistic": "max"},
        "mean": {"statistic": "mean"},
        "q3+iqr": {"statistic": "q3+iqr"},
        "std (rank_by mean)": {"statistic": "std", "rank_by": "mean"},
    }
    out = []
    for label, stat in statistics.items():
        for rule in ("halving", *PAIRED_RULES):
            default = jrobust.RaceSettings(rule=rule).warmup_for()
            for warmup in dict.fromkeys((default, 5)):
                out.append(
                    race_strategy(f"{label}, {rule}, warm-up {warmup}", rule=rule, warmup=warmup,
                                  **stat)
                )  # fmt: skip
    return out


def default_candidate() -> str:
    """The candidate that is ``jrobust.RaceSettings()`` (the current defaults)."""
    d = jrobust.RaceSettings()
    statistic = d.describe()["statistic"]
    return f"{statistic}, {d.describe()['rule']}, warm-up {d.warmup_for()}"


def choose(grids: Sequence[Grid], seeds: Sequence[int], log: Callable[[str], None] = print) -> dict:
    """Phase 1: every candidate on the validation columns of ``grids`` (each seed's test columns
    blanked out); returns the choice and the figures it was made from."""
    cands = candidates()
    rows = evaluate_all(grids, [*cands, RANDOM], seeds, "validation", log)
    names = [g.name for g in grids]
    lines = {(s["space"], s["strategy"]): s for s in summarize(rows)}
    per_seed = {  # candidate -> per-seed score (mean over the spaces)
        c.name: np.mean(
            [
                [sum(WEIGHTS[m] * r[f"rank_{m}"] for m in MEASURES) for r in rows
                 if r["strategy"] == c.name and r["space"] == n]
                for n in names
            ],
            axis=0,
        )
        for c in cands
    }  # fmt: skip
    default = default_candidate()
    table: dict[str, dict[str, Any]] = {}
    for c in cands:
        entry: dict[str, Any] = {"settings": c.options}
        for grid in grids:
            s, chance = lines[grid.name, c.name], lines[grid.name, RANDOM.name]
            full = grid.n_models * SPLITS[grid.name][0]
            entry[grid.name] = dict(
                trainings=s["trainings"],
                eligible=s["trainings"] <= full / 2,
                score=sum(WEIGHTS[m] * s[f"rank_{m}"] for m in MEASURES),
                ranks={m: s[f"rank_{m}"] for m in MEASURES},
                regrets={m: s[f"regret_{m}"] for m in MEASURES},
                random_regrets={m: chance[f"regret_{m}"] for m in MEASURES},
                top_own=s["top_own"],
                top_mean=s["top_mean"],
            )
        entry["eligible"] = all(entry[n]["eligible"] for n in names)
        entry["score"] = float(np.mean(per_seed[c.name]))
        entry["score_ci"] = bootstrap_ci(per_seed[c.name])
        if default in per_seed:
            entry["minus_default_ci"] = bootstrap_ci(per_seed[c.name] - per_seed[default])
        entry["trainings"] = float(np.mean([entry[n]["trainings"] for n in names]))
        table[c.name] = entry
    eligible = [n for n, e in table.items() if e["eligible"]]
    if not eligible:
        raise RuntimeError("no candidate trains at most half the exhaustive budget")
    chosen = min(eligible, key=lambda n: (table[n]["score"], table[n]["trainings"]))
    return dict(
        chosen=chosen,
        settings=table[chosen]["settings"],
        default=default,
        spaces=names,
        seeds=len(seeds),
        first_seed=int(seeds[0]),
        criterion=(
            "eligible: median trainings <= half of models x search columns on every space; "
            "score: mean over spaces and seeds of 0.5 q_mean + 0.25 q_std + 0.25 q_pd, q_x = "
            "the winner's held-out rank fraction by x (models strictly better / (M - 1): 0 "
            "best, 1 worst, random 0.5); lowest score, then fewest trainings"
        ),
        candidates=table,
    )


def choice_markdown(choice: Mapping[str, Any]) -> str:
    names = choice["spaces"]
    lines = [
        f"Phase 1 (validation columns of {', '.join(names)}; {choice['seeds']} seeds from "
        f"{choice.get('first_seed', 0)}): "
        f"{choice['criterion']}. q = rank fractions, r = mean regrets (loss units).",
        "",
        "| candidate | "
        + " | ".join(
            f"{n} trainings | {n} q mean / std / PD | {n} r mean / std / PD" for n in names
        )
        + " | score [95 % CI] | minus the defaults' [95 % CI] | eligible |",
        "|---|" + "---:|---|---|" * len(names) + "---:|---:|---|",
    ]
    ordered = sorted(choice["candidates"].items(), key=lambda kv: kv[1]["score"])
    for name, e in ordered:
        cells = " | ".join(
            f"{e[n]['trainings']:.0f} | "
            + " / ".join(f"{e[n]['ranks'][m]:.3f}" for m in MEASURES)
            + " | "
            + " / ".join(fmt(e[n]["regrets"][m]) for m in MEASURES)
            for n in names
        )
        mark = f"**{name}** (chosen)" if name == choice["chosen"] else name
        if name == choice.get("default"):
            mark += " (the defaults)"
        lo, hi = e["score_ci"]
        diff = e.get("minus_default_ci")
        diff = f"[{diff[0]:+.3f}, {diff[1]:+.3f}]" if diff else ""
        lines.append(
            f"| {mark} | {cells} | {e['score']:.3f} [{lo:.3f}, {hi:.3f}] | {diff} "
            f"| {'yes' if e['eligible'] else 'no'} |"
        )
    first = choice["candidates"][next(iter(choice["candidates"]))]
    chance = " ; ".join(
        f"{n}: " + " / ".join(fmt(first[n]["random_regrets"][m]) for m in MEASURES) for n in names
    )
    lines += ["", f"Random choice's expected regrets (mean / std / PD): {chance}."]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------- phase 2


def reported_strategies(
    chosen: Mapping[str, Any] | None,
) -> tuple[list[Strategy], dict[str, tuple[str, str]]]:
    """The reported strategies (the defaults, the chosen settings, the paired rules, exhaustive
    search at the full budget and at the races' budgets, random choice), and for each race
    judged by the targets the names of its two exhaustive references (full, its budget)."""
    races = [
        race_strategy("race (defaults)"),
        race_strategy("race (defaults, auto rounds)", instances_per_round="auto"),
    ]
    if chosen is not None and chosen["settings"]:
        label = ", ".join(f"{k}={v}" for k, v in sorted(chosen["settings"].items()))
        races.append(race_strategy(f"race (chosen: {label})", **chosen["settings"]))
    out = [*races, *(race_strategy(f"race ({rule})", rule=rule) for rule in PAIRED_RULES)]
    references = {}
    for race in races:
        full, budget = exhaustive_for(race, budget=False), exhaustive_for(race, budget=True)
        out += [s for s in (full, budget) if s not in out]
        references[race.name] = (full.name, budget.name)
    return [*out, RANDOM], references


def targets(
    rows: Sequence[Mapping[str, Any]],
    summary: Sequence[Mapping[str, Any]],
    references: Mapping[str, tuple[str, str]],
) -> list[dict[str, Any]]:
    """Per space and race: (1) its mean held-out regrets (mean, std, PD) at most those of
    exhaustive search at its budget (with the 95 % interval of the per-seed difference);
    (2) each at most the upper end of the 95 % interval of exhaustive search at the full
    budget, with at most half its trainings."""
    by = {(s["space"], s["strategy"]): s for s in summary}
    seeds = {(r["space"], r["strategy"], r["seed"]): r for r in rows}
    out = []
    for space in dict.fromkeys(s["space"] for s in summary):
        space_seeds = sorted({r["seed"] for r in rows if r["space"] == space})
        for name, (full_name, budget_name) in references.items():
            r, full, budget = by[space, name], by[space, full_name], by[space, budget_name]
            row: dict[str, Any] = dict(
                space=space, race=name, trainings=r["trainings"],
                budget_trainings=budget["trainings"], exhaustive_trainings=full["trainings"],
            )  # fmt: skip
            for m in MEASURES:
                k = f"regret_{m}"
                diff = [
                    seeds[space, name, i][k] - seeds[space, budget_name, i][k] for i in space_seeds
                ]
                row[f"{m}_vs_budget"] = (r[k], budget[k], bool(r[k] <= budget[k] + 1e-12))
                row[f"{m}_minus_budget_ci"] = bootstrap_ci(diff)
                hi = full[f"{k}_ci"][1]
                row[f"{m}_vs_full"] = (r[k], hi, bool(r[k] <= hi + 1e-12))
            row["half_trainings"] = bool(r["trainings"] <= full["trainings"] / 2)
            row["met_1"] = all(row[f"{m}_vs_budget"][2] for m in MEASURES)
            row["met_2"] = row["half_trainings"] and all(row[f"{m}_vs_full"][2] for m in MEASURES)
            out.append(row)
    return out


def summary_markdown(summary: Sequence[Mapping[str, Any]], grids: Mapping[str, Grid]) -> str:
    lines = []
    for space in dict.fromkeys(s["space"] for s in summary):
        grid = grids[space]
        n_search, _ = SPLITS[space]
        n_test = grid.n_instances - sum(SPLITS[space])
        top = max(1, int(np.floor(grid.n_models * TOP_PERCENT / 100 + 1e-9)))
        lines += [
            f"**{space}**: {grid.meta['space']}; instance loss {grid.meta['loss']}; "
            f"{n_search} search columns, {n_test} test columns per seed; top 5 % = rank <= {top} "
            f"of {grid.n_models}.",
            "",
            "| strategy | trainings (median, range) | regret mean [95 % CI] | regret std [95 % CI] "
            "| regret PD [95 % CI] | top 5 % by own statistic | top 5 % by mean |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for s in (s for s in summary if s["space"] == space):
            lo, hi = s["trainings_range"]
            span = f"{s['trainings']:.0f}" + (f" ({lo}-{hi})" if lo != hi else "")
            cells = [
                f"{fmt(s[f'regret_{m}'])} [{fmt(s[f'regret_{m}_ci'][0])}, "
                f"{fmt(s[f'regret_{m}_ci'][1])}]"
                for m in MEASURES
            ]
            tops = [
                f"{100 * s[k]:.0f} % [{100 * s[f'{k}_ci'][0]:.0f}, {100 * s[f'{k}_ci'][1]:.0f}]"
                for k in ("top_own", "top_mean")
            ]
            lines.append(f"| {s['strategy']} | {span} | {' | '.join(cells)} | {' | '.join(tops)} |")
        lines.append("")
    return "\n".join(lines)


def compact_markdown(
    summary: Sequence[Mapping[str, Any]], references: Mapping[str, tuple[str, str]]
) -> str:
    """One line per space and reported race: its trainings and mean held-out regrets next to
    exhaustive search's (at the race's budget, at the full budget) and random choice's."""
    by = {(s["space"], s["strategy"]): s for s in summary}

    def cell(s: Mapping[str, Any]) -> str:
        regrets = " / ".join(fmt(s[f"regret_{m}"]) for m in MEASURES)
        return f"{s['trainings']:.0f}: {regrets}"

    lines = [
        "Trainings (median): mean held-out regret in mean / std / PD.",
        "",
        "| space | race | race | exhaustive, race's budget | exhaustive, full | random |",
        "|---|---|---|---|---|---|",
    ]
    for space in dict.fromkeys(s["space"] for s in summary):
        for name, (full, budget) in references.items():
            cells = [by[space, name], by[space, budget], by[space, full], by[space, RANDOM.name]]
            lines.append(f"| {space} | {name} | " + " | ".join(map(cell, cells)) + " |")
    return "\n".join(lines) + "\n"


def targets_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    lines = [
        "(1): the race's mean held-out regret (mean ; std ; PD) vs exhaustive search's at the "
        "race's budget, and the 95 % interval of their per-seed difference; (2): the race's vs "
        "the upper end of exhaustive search's 95 % interval at the full budget, and the "
        "trainings (at most half needed).",
        "",
        "| space | race | (1) race vs exhaustive at its budget [difference CI] | met "
        "| (2) race vs upper bound, exhaustive full | trainings vs full | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        one = " ; ".join(
            f"{fmt(r[f'{m}_vs_budget'][0])} vs {fmt(r[f'{m}_vs_budget'][1])} "
            f"[{fmt(r[f'{m}_minus_budget_ci'][0])}, {fmt(r[f'{m}_minus_budget_ci'][1])}]"
            for m in MEASURES
        )
        two = " ; ".join(
            f"{fmt(r[f'{m}_vs_full'][0])} vs {fmt(r[f'{m}_vs_full'][1])}" for m in MEASURES
        )
        lines.append(
            f"| {r['space']} | {r['race']} | {one} | {'yes' if r['met_1'] else '**no**'} | {two} "
            f"| {r['trainings']:.0f} / {r['exhaustive_trainings']:.0f} "
            f"| {'yes' if r['met_2'] else '**no**'} |"
        )
    return "\n".join(lines) + "\n"


def git_commit() -> str:
    import subprocess

    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
            cwd=Path(__file__).parent, check=True,
        )  # fmt: skip
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--seeds", type=int, default=10, help="benchmark seeds (column splits)")
    p.add_argument("--first-seed", type=int, default=0, help="seeds FIRST..FIRST+SEEDS-1")
    p.add_argument(
        "--choice-only", action="store_true", help="stop after phase 1 (validation columns)"
    )
    p.add_argument("--spaces", nargs="+", default=list(SPACES), choices=SPACES)
    p.add_argument(
        "--choice",
        type=Path,
        default=HERE / "results" / "selection_choice.json",
        help="where phase 1 writes its choice (JSON; default benchmarks/results/)",
    )
    p.add_argument("--frozen-choice", type=Path, help="skip phase 1; use this choice file")
    p.add_argument("--json", type=Path, help="write every row and the summary (JSON)")
    p.add_argument("--markdown", type=Path, help="write the tables (Markdown)")
    p.add_argument("--workers", type=int, default=2, help="processes (seeds run in parallel)")
    args = p.parse_args(argv)
    if args.workers < 1:
        p.error("--workers must be a positive integer")
    global WORKERS
    WORKERS = args.workers
    if args.seeds < 2 or args.first_seed < 0:
        p.error("--seeds must be at least 2 (intervals over seeds), --first-seed at least 0")
    if args.choice_only and args.frozen_choice is not None:
        p.error("--choice-only makes a choice; --frozen-choice skips making one")
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    if args.frozen_choice is not None and not args.frozen_choice.is_file():
        p.error(f"--frozen-choice {args.frozen_choice}: no such file")
    command = " ".join(
        ["python benchmarks/selection.py", *(argv if argv is not None else sys.argv[1:])]
    )
    t0 = time.perf_counter()
    try:
        grids = {name: load_grid(name) for name in dict.fromkeys([*CHOICE_SPACES, *args.spaces])}
    except FileNotFoundError as e:
        print(e, file=sys.stderr)
        sys.exit(2)
    print(f"# {command}")
    text = [f"Command: `{command}` (jrobust {jrobust.__version__}, commit {git_commit()}, "
            f"{time.strftime('%Y-%m-%d')}); seeds {seeds[0]}..{seeds[-1]}.", ""]  # fmt: skip

    if args.frozen_choice is None:
        print("# phase 1: the choice, on validation columns (test columns blanked out)")
        choice = choose([grids[n] for n in CHOICE_SPACES], seeds)
        choice["made"] = dict(command=command, commit=git_commit(), date=time.strftime("%Y-%m-%d"))
        args.choice.parent.mkdir(parents=True, exist_ok=True)
        args.choice.write_text(json.dumps(choice, indent=1))
        print(choice_markdown(choice))
        print(f"# chosen: {choice['chosen']} {choice['settings']}; frozen in {args.choice}")
        text += ["### Phase 1: the choice (validation columns)", "", choice_markdown(choice)]
        frozen = args.choice
    else:
        frozen = args.frozen_choice
        text += [f"Phase 1 skipped: the choice frozen in `{frozen}` is used.", ""]
    choice = json.loads(frozen.read_text())  # phase 2 starts from the file, as frozen
    if args.choice_only:
        if _POOL is not None:
            _POOL.shutdown()
        return dict(command=command, seeds=args.seeds, choice=choice)

    print("# phase 2: test columns")
    strategies, references = reported_strategies(choice)
    rows = evaluate_all([grids[n] for n in args.spaces], strategies, seeds, "test")
    if _POOL is not None:
        _POOL.shutdown()
    summary = summarize(rows)
    goals = targets(rows, summary, references)
    text += [
        f"### Phase 2: held-out figures (test columns), chosen settings: `{choice['chosen']}`",
        "",
        compact_markdown(summary, references),
        summary_markdown(summary, grids),
        "### Targets",
        "",
        targets_markdown(goals),
        f"Whole run {time.perf_counter() - t0:.0f} s.",
    ]
    markdown = "\n".join(text)
    print(markdown)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(markdown)
    report = dict(command=command, seeds=args.seeds, choice=choice, rows=rows, summary=summary,
                  targets=goals)  # fmt: skip
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
