"""The race: Algorithm 1 of Boldyrev, Ratnikov, Shevelev (IEEE Access 2025) as batched rounds.

Each round trains new instances of every surviving model, grouped by cohort and packed into
buckets that one compiled, vmapped call trains each, then updates the ledger and applies the
elimination rule. The warm-up (``warmup`` instances per model, during which nothing is removed)
is one round: its instances are independent, so training them together gives the ledger of
Algorithm 1's first ``k`` steps. After it, each round adds ``instances_per_round`` instances per
survivor (1: the paper's exact semantics; ``"auto"``: as many as keep the stack as wide as the
warm-up round, so the device stays full when few models survive).

The race is deterministic: the same seed gives the same ledger and winner, a killed race resumes
from its checkpoint to the same result, and every host of a multi-host run takes the same decisions.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pickle
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from jrobust.config import ModelConfig
from jrobust.data.population import Population
from jrobust.rules import Rule, TwoSampleTest, get_rule
from jrobust.space import SearchSpace
from jrobust.stats import Statistic, get_statistic

__all__ = ["race", "exhaustive", "SelectionResult", "CHECKPOINT_FILE"]

CHECKPOINT_FILE = "checkpoint.pkl"
Evaluator = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclasses.dataclass
class SelectionResult:
    """The outcome of a race.

    Attributes:
      winner: the winning ModelConfig (``None`` when the space is a bare model count).
      winner_id: its model id; winners: the ids of the ``n_winners`` best survivors, best first.
      ledger: one row per trained instance: ``model_id``, ``instance``, ``loss``, ``status``,
        ``round``, ``seconds`` (wall time share of its stack) and the test metrics.
      history: one row per round: ``round``, ``instances_per_model``, ``survivors`` (before the
        rule), ``trained``, ``eliminated`` (ids), ``remaining``, ``seconds``, ``compile_seconds``.
      path: one row per (round, model alive in it): ``statistic`` and ``rank`` values,
        ``instances``, ``alive`` after the rule (the paper's "model path" figures).
      models: the space as a DataFrame; n_trainings: instances trained in all.
      timing: compile, training and total seconds, cohorts and compiled programs.
      settings: the resolved race settings.
    """

    winner: ModelConfig | None
    winner_id: int
    winners: list[int]
    ledger: pd.DataFrame
    history: pd.DataFrame
    path: pd.DataFrame
    models: pd.DataFrame
    n_trainings: int
    timing: dict[str, float]
    settings: dict[str, Any]
    configs: list[ModelConfig] | None = None

    def losses(self, model_id: int) -> np.ndarray:
        """The instance losses of one model, in instance order."""
        rows = self.ledger[self.ledger.model_id == model_id].sort_values("instance")
        return rows["loss"].to_numpy()

    def summary(self, top: int | None = 10, alive_only: bool = False) -> pd.DataFrame:
        """Per-model statistics (mean, std, median, PD, min, max, instances), best first."""
        led = self.ledger.copy()
        led["loss"] = np.where(np.isfinite(led["loss"]), led["loss"], np.inf)
        g = led.groupby("model_id")["loss"]
        frame = pd.DataFrame(
            {
                "instances": g.size(),
                "failed": led.assign(f=led.status != "ok").groupby("model_id")["f"].sum(),
                "mean": g.mean(),
                "std": g.std(ddof=1).fillna(0.0),
                "median": g.median(),
                "pd": g.quantile(0.9) - g.quantile(0.1),
                "min": g.min(),
                "max": g.max(),
            }
        )
        stat = get_statistic(self.settings["statistic"])
        rank = get_statistic(self.settings["rank_by"])
        table, mask, ids = _table(self.ledger)
        frame.loc[ids, "statistic"] = stat(table, mask)
        frame.loc[ids, "rank_value"] = rank(table, mask)
        final = set(
            self.path[self.path["round"] == self.path["round"].max()].query("alive").model_id
        )
        frame["alive"] = frame.index.isin(final)
        frame = frame.join(self.models.set_index("model_id")[["name"]])
        order = [
            *self.winners,
            *[
                i
                for i in frame.sort_values(
                    ["alive", "instances", "rank_value"], ascending=[False, False, True]
                ).index
                if i not in self.winners
            ],
        ]
        frame = frame.loc[order]
        if alive_only:
            frame = frame[frame.alive]
        frame.insert(0, "model_id", frame.index)
        return frame.reset_index(drop=True).head(top) if top else frame.reset_index(drop=True)

    def __repr__(self) -> str:
        return (
            f"SelectionResult(winner_id={self.winner_id}, name={self.models.name[self.winner_id]!r}, "
            f"n_trainings={self.n_trainings}, rounds={len(self.history)}, models={len(self.models)})"
        )


def _table(ledger: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ids = np.sort(ledger.model_id.unique())
    width = int(ledger.instance.max()) + 1 if len(ledger) else 1
    table = np.full((len(ids), width), np.nan)
    mask = np.zeros((len(ids), width), bool)
    row = np.searchsorted(ids, ledger.model_id.to_numpy())
    table[row, ledger.instance.to_numpy()] = ledger.loss.to_numpy()
    mask[row, ledger.instance.to_numpy()] = True
    return table, mask, ids


# ---------------------------------------------------------------------------------- the driver
def _fingerprint(parts: Sequence[Any]) -> str:
    h = hashlib.sha1()
    for p in parts:
        h.update(repr(p).encode())
    return h.hexdigest()


def _write_atomic(path: str, payload: Any) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        pickle.dump(payload, f, protocol=pickle.HIGHEST_PROTOCOL)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def race(
    space: SearchSpace | Sequence[ModelConfig] | int,
    population: Population | None = None,
    *,
    statistic: str | Statistic | Callable = "std",
    rule: str | Rule | Callable = "halving",
    rank_by: str | Statistic | Callable | None = None,
    warmup: int | None = None,
    seed: int = 0,
    max_instances: int = 50,
    budget: int | None = None,
    n_winners: int = 1,
    evaluator: Evaluator | None = None,
    instances_per_round: int | str | None = None,
    alpha: float | None = None,
    patience: int | None = None,
    max_bucket: int | None = None,
    min_bucket: int = 8,
    devices: Any = None,
    checkpoint_dir: str | os.PathLike | None = None,
    progress: Callable[[dict], None] | None = None,
    compilation_cache: bool | str = True,
    conv_impl: str | None = None,
    _stop_after_rounds: int | None = None,
) -> SelectionResult:
    """Race the models of ``space`` on ``population`` until ``n_winners`` robust winners are left.

    Args:
      space: a ``SearchSpace``, a list of ``ModelConfig``, or (with ``evaluator``) a model count.
      population: the data (not needed with an ``evaluator``).
      statistic: eliminates: "mean", "median", "std", "min", "max", "q3", "q3+iqr", "pd", "q<p>",
        a ``Statistic`` or ``f(losses_1d) -> float``.
      rule: "halving", "quantile", "threshold", "welch", "mannwhitney", "ks", "bartlett",
        "levene", "fligner", a ``Rule`` or ``f(losses, mask, alive, round) -> alive``.
      rank_by: ranks (the best model, the winner); default: ``statistic``.
      warmup: instances per model before any elimination (default: 3, at least the rule's minimum).
      seed: the root seed (data subsets, initialisation, shuffling).
      max_instances: the most instances a model gets; budget: the most trainings in all.
      n_winners: stop when this many models are left (or rank the survivors and take the best).
      evaluator: ``evaluator(model_ids, instance_indices) -> losses`` replacing the JAX trainer.
      instances_per_round: instances per survivor per round after warm-up: an int, or "auto"
        (default with the JAX trainer; 1 with an evaluator).
      alpha, patience: significance level and patience stop of a test rule.
      max_bucket: cap on the instances per compiled call (default: sized from free device memory).
      min_bucket: the smallest stack compiled: fewer, wider rounds reuse one program instead of
        compiling one per survivor count (padded lanes repeat a real one and are dropped).
      devices: devices to shard stacks over (``None``: all local devices when there are several).
      checkpoint_dir: write a checkpoint after every round; an existing checkpoint of the same race
        is resumed.
      progress: called after every round with a dict (round, survivors, trained, ...).
      compilation_cache: JAX's persistent compilation cache (True: the user cache directory, a
        path, or False).

    Returns:
      A ``SelectionResult``.

    Example:
      >>> import numpy as np
      >>> spread = np.linspace(0.1, 1.0, 8)
      >>> ev = lambda m, i: 1.0 + spread[m] * np.sin(13.0 * i + m)
      >>> race(8, evaluator=ev, statistic="std", rule="halving", warmup=3).winner_id
      0
    """
    t_start = time.perf_counter()
    stat = get_statistic(statistic)
    rank = get_statistic(rank_by) if rank_by is not None else stat
    rule_kwargs = {k: v for k, v in (("alpha", alpha), ("patience", patience)) if v is not None}
    if rule_kwargs and not (isinstance(rule, str) and rule in _TEST_RULES):
        raise ValueError(f"alpha/patience apply to test rules {_TEST_RULES}, not to rule={rule!r}")
    rule_obj = get_rule(rule, **rule_kwargs)
    warmup = max(3, rule_obj.min_warmup) if warmup is None else warmup
    if isinstance(warmup, bool) or not isinstance(warmup, int | np.integer) or warmup < 1:
        raise ValueError(f"warmup must be a positive integer, got {warmup!r}")
    if warmup < rule_obj.min_warmup:
        raise ValueError(
            f"warmup={warmup} is too small for rule {rule_obj.name!r}: a two-sample test needs at least "
            f"{rule_obj.min_warmup} instances per model; use warmup >= {rule_obj.min_warmup}"
        )
    if max_instances < warmup:
        raise ValueError(
            f"max_instances={max_instances} is smaller than warmup={warmup}; raise max_instances"
        )
    if n_winners < 1:
        raise ValueError(f"n_winners must be >= 1, got {n_winners}")
    if budget is not None and budget < 1:
        raise ValueError(f"budget must be a positive number of trainings, got {budget}")

    configs, names_frame = _resolve_space(space, evaluator)
    n_models = len(names_frame)
    if evaluator is None:
        if population is None:
            from jrobust.data import calorimeter

            population = calorimeter()
        _check_all(configs, population)
    ipr = instances_per_round
    if ipr is None:
        ipr = "auto" if evaluator is None else 1
    if ipr != "auto" and (
        isinstance(ipr, bool) or not isinstance(ipr, int | np.integer) or ipr < 1
    ):
        raise ValueError(f"instances_per_round must be a positive integer or 'auto', got {ipr!r}")

    settings = dict(
        statistic=stat.name,
        rank_by=rank.name,
        rule=rule_obj.name,
        warmup=int(warmup),
        seed=int(seed),
        max_instances=int(max_instances),
        budget=budget,
        n_winners=int(n_winners),
        instances_per_round=ipr,
        evaluator=evaluator is not None,
        alpha=alpha,
        patience=patience,
    )
    if evaluator is None:
        _enable_cache(compilation_cache)
    if (
        isinstance(min_bucket, bool)
        or not isinstance(min_bucket, int | np.integer)
        or min_bucket < 1
    ):
        raise ValueError(f"min_bucket must be a positive integer, got {min_bucket!r}")
    engine = (
        _Engine(configs, population, seed, max_bucket, devices, conv_impl, int(min_bucket))
        if evaluator is None
        else None
    )
    fingerprint = _fingerprint(
        [
            _version(),
            settings,
            repr(rule_obj),
            [repr(c) for c in configs] if configs is not None else n_models,
            population.fingerprint() if population is not None and evaluator is None else None,
        ]
    )

    state = _RaceState.new(n_models, max_instances)
    ckpt = os.path.join(os.fspath(checkpoint_dir), CHECKPOINT_FILE) if checkpoint_dir else None
    if ckpt and os.path.exists(ckpt):
        state = _RaceState.load(ckpt, fingerprint)

    rounds_run = 0
    while not state.done:
        alive_ids = np.flatnonzero(state.alive)
        counts = state.mask.sum(axis=1)
        per_model = (
            warmup
            if state.round == 0
            else (max(1, n_models // len(alive_ids)) if ipr == "auto" else int(ipr))
        )
        work_m, work_i = [], []
        for m in alive_ids:
            start = int(counts[m])
            for i in range(start, min(start + per_model, max_instances)):
                work_m.append(m)
                work_i.append(i)
        if not work_m:
            state.stop_reason = "max_instances"
            break
        if budget is not None and state.n_trainings + len(work_m) > budget:
            state.stop_reason = "budget"
            break
        work_m, work_i = np.asarray(work_m), np.asarray(work_i)
        t0 = time.perf_counter()
        if evaluator is not None:
            losses = np.asarray(evaluator(work_m.copy(), work_i.copy()), dtype=np.float64).reshape(
                -1
            )
            if losses.shape != work_m.shape:
                raise ValueError(
                    f"evaluator returned {losses.shape[0]} losses for {len(work_m)} instances"
                )
            extra, compile_s, steps = {}, 0.0, 0
        else:
            losses, extra, compile_s, steps = engine.run(work_m, work_i)
        seconds = time.perf_counter() - t0 - compile_s
        state.round += 1
        state.record(work_m, work_i, losses, extra, seconds)

        # the rule
        n_min = int(state.mask[alive_ids].sum(axis=1).min())
        before = state.alive.copy()
        new_alive = rule_obj.select(state.losses, state.mask, before, n_min, warmup, stat, rank)
        new_alive = np.asarray(new_alive, bool) & before
        if new_alive.sum() < min(n_winners, before.sum()):
            keep = _best(
                stat, rank, state.losses, state.mask, before, min(n_winners, int(before.sum()))
            )
            new_alive[keep] = True
        eliminated = np.flatnonzero(before & ~new_alive)
        state.alive = new_alive
        if n_min > warmup:
            state.removed_counts.append(len(eliminated))
        stat_values = stat(state.losses, state.mask)
        rank_values = rank(state.losses, state.mask)
        for m in np.flatnonzero(before):
            state.path.append(
                dict(
                    round=state.round,
                    model_id=int(m),
                    statistic=float(stat_values[m]),
                    rank=float(rank_values[m]),
                    instances=int(state.mask[m].sum()),
                    alive=bool(new_alive[m]),
                )
            )
        state.history.append(
            dict(
                round=state.round,
                instances_per_model=n_min,
                survivors=int(before.sum()),
                trained=len(work_m),
                eliminated=[int(e) for e in eliminated],
                remaining=int(new_alive.sum()),
                seconds=seconds,
                compile_seconds=compile_s,
                instance_steps=int(steps),
            )
        )
        state.compile_seconds += compile_s
        state.train_seconds += seconds
        if new_alive.sum() <= n_winners:
            state.done, state.stop_reason = True, "winners"
        elif isinstance(rule_obj, TwoSampleTest) and rule_obj.should_stop(state.removed_counts):
            state.done, state.stop_reason = True, "patience"
        if ckpt and _is_writer():
            os.makedirs(os.path.dirname(ckpt), exist_ok=True)
            _write_atomic(ckpt, state.payload(fingerprint))
        if progress is not None:
            progress(
                dict(
                    round=state.round,
                    survivors=int(new_alive.sum()),
                    models=n_models,
                    trained=len(work_m),
                    n_trainings=state.n_trainings,
                    seconds=seconds,
                    compile_seconds=compile_s,
                    instance_steps=int(steps),
                    eliminated=len(eliminated),
                    instances_per_model=n_min,
                    done=state.done,
                )
            )
        rounds_run += 1
        if _stop_after_rounds is not None and rounds_run >= _stop_after_rounds:
            break

    if ckpt and _is_writer() and state.round:
        _write_atomic(ckpt, state.payload(fingerprint))
    winners = _best(
        stat, rank, state.losses, state.mask, state.alive, min(n_winners, int(state.alive.sum()))
    )
    ledger = pd.DataFrame(state.records)
    if len(ledger):
        ledger = ledger.sort_values(["model_id", "instance"], kind="stable").reset_index(drop=True)
    timing = dict(
        compile_seconds=state.compile_seconds,
        train_seconds=state.train_seconds,
        wall_seconds=time.perf_counter() - t_start,
        n_cohorts=engine.n_cohorts if engine else 0,
        n_programs=engine.n_programs if engine else 0,
        stop_reason=state.stop_reason,
    )
    return SelectionResult(
        winner=configs[winners[0]] if configs is not None else None,
        winner_id=int(winners[0]),
        winners=[int(w) for w in winners],
        ledger=ledger,
        history=pd.DataFrame(state.history),
        path=pd.DataFrame(state.path),
        models=names_frame,
        n_trainings=state.n_trainings,
        timing=timing,
        settings=settings,
        configs=configs,
    )


def exhaustive(
    space: SearchSpace | Sequence[ModelConfig] | int,
    population: Population | None = None,
    *,
    instances: int = 20,
    statistic: str | Statistic | Callable = "std",
    rank_by: str | Statistic | Callable | None = None,
    **kwargs: Any,
) -> SelectionResult:
    """Every model × ``instances`` instances (the full grid), ranked by ``rank_by`` (default
    ``statistic``): the reference a race is compared with."""
    kwargs.setdefault("instances_per_round", 1)
    return race(
        space,
        population,
        statistic=statistic,
        rank_by=rank_by,
        rule=_never,
        warmup=instances,
        max_instances=instances,
        **kwargs,
    )


def _never(losses, mask, alive, round_index):
    return alive


_TEST_RULES = ("welch", "mannwhitney", "ks", "bartlett", "levene", "fligner")


def _best(stat, rank, losses, mask, alive, n) -> np.ndarray:
    """The ``n`` best alive models by ``rank`` (ties: ``stat``, then lower id)."""
    ids = np.flatnonzero(alive)
    r = rank(losses, mask)[ids]
    s = stat(losses, mask)[ids]
    order = np.lexsort((ids, s, r))
    return ids[order[:n]]


def _is_writer() -> bool:
    import jax

    return jax.process_index() == 0


def _version() -> str:
    from jrobust import __version__

    return __version__


@dataclasses.dataclass
class _RaceState:
    losses: np.ndarray
    mask: np.ndarray
    alive: np.ndarray
    round: int = 0
    n_trainings: int = 0
    records: list = dataclasses.field(default_factory=list)
    history: list = dataclasses.field(default_factory=list)
    path: list = dataclasses.field(default_factory=list)
    removed_counts: list = dataclasses.field(default_factory=list)
    compile_seconds: float = 0.0
    train_seconds: float = 0.0
    done: bool = False
    stop_reason: str = ""

    @classmethod
    def new(cls, n_models: int, max_instances: int) -> _RaceState:
        return cls(
            np.full((n_models, max_instances), np.nan),
            np.zeros((n_models, max_instances), bool),
            np.ones(n_models, bool),
        )

    def record(self, models, instances, losses, extra, seconds) -> None:
        self.losses[models, instances] = losses
        self.mask[models, instances] = True
        self.n_trainings += len(models)
        share = seconds / max(len(models), 1)
        for j, (m, i) in enumerate(zip(models, instances, strict=True)):
            row = dict(
                model_id=int(m),
                instance=int(i),
                loss=float(losses[j]),
                status="ok"
                if np.isfinite(losses[j]) and extra.get("ok", np.ones(len(models), bool))[j]
                else "failed",
                round=self.round,
                seconds=share,
            )
            for k, v in extra.items():
                if k != "ok":
                    row[k] = float(v[j])
            self.records.append(row)

    def payload(self, fingerprint: str) -> dict:
        return {"fingerprint": fingerprint, "state": dataclasses.asdict(self)}

    @classmethod
    def load(cls, path: str, fingerprint: str) -> _RaceState:
        try:
            with open(path, "rb") as f:
                payload = pickle.load(f)
        except Exception as err:  # noqa: BLE001
            raise ValueError(
                f"cannot read the checkpoint {path}: {err}; delete it to start afresh"
            ) from None
        if payload.get("fingerprint") != fingerprint:
            raise ValueError(
                f"the checkpoint {path} belongs to a different race (another space, data, settings or "
                "jrobust version); resume with exactly the same arguments, or use a new checkpoint_dir"
            )
        return cls(**payload["state"])


def _resolve_space(space, evaluator) -> tuple[list[ModelConfig] | None, pd.DataFrame]:
    if isinstance(space, int | np.integer) and not isinstance(space, bool):
        if evaluator is None:
            raise TypeError(
                "a bare model count needs an evaluator; pass a SearchSpace to train with JAX"
            )
        if space < 1:
            raise ValueError(f"the space is empty ({space} models)")
        return None, pd.DataFrame(
            {"model_id": range(int(space)), "name": [f"model{i}" for i in range(int(space))]}
        )
    if not isinstance(space, SearchSpace):
        space = SearchSpace.from_models(list(space))
    if len(space) == 0:
        raise ValueError("the search space is empty")
    return space.models, space.to_frame()


def _check_all(configs: list[ModelConfig], population: Population) -> None:
    from jrobust.train import check_compatible

    seen = set()
    for i, c in enumerate(configs):
        key = c.static_key()
        if key in seen:
            continue
        seen.add(key)
        try:
            check_compatible(c, population)
        except (ValueError, TypeError) as err:
            raise type(err)(f"model {i} ({c.describe()}): {err}") from None


def _enable_cache(setting: bool | str) -> None:
    from jrobust._cache import enable_compilation_cache

    if setting:
        enable_compilation_cache(None if setting is True else setting)


class _Engine:
    """Trains work lists with the JAX trainer: per cohort, bucketed, dispatched before fetching."""

    def __init__(self, configs, population, seed, max_bucket, devices, conv_impl, min_bucket=1):
        from jrobust import parallel

        self.configs = configs
        self.population = population
        self.seed = seed
        self.conv_impl = conv_impl
        self.placement = parallel.placement_for(devices)
        self.multiple = self.placement.n_devices if self.placement is not None else 1
        self.max_bucket = max_bucket
        self.min_bucket = min_bucket
        self._caps: dict[int, int] = {}  # per cohort: the largest stack per call
        keys: dict[tuple, int] = {}
        self.cohort = np.asarray([keys.setdefault(c.static_key(), len(keys)) for c in configs])
        self.n_cohorts = len(keys)
        self.programs: set = set()
        self._subsets: dict[tuple, dict[int, np.ndarray]] = {}

    @property
    def n_programs(self) -> int:
        return len(self.programs)

    def cap(self, cohort: int, config: ModelConfig) -> int:
        """The largest stack of a cohort per compiled call: sized from free device memory and
        the model's footprint, at most ``max_bucket``; decided once per cohort (and on every host
        alike), lowered when a stack still runs out of memory."""
        if cohort not in self._caps:
            from jrobust.parallel import max_stack

            self._caps[cohort] = max_stack(
                config,
                self.population,
                self.placement,
                cap=self.max_bucket,
                conv_impl=self.conv_impl,
            )
        return self._caps[cohort]

    def subsets(self, config: ModelConfig, instances: np.ndarray) -> np.ndarray:
        cache = self._subsets.setdefault((config.train_size, config.bootstrap), {})
        missing = sorted({int(i) for i in instances} - set(cache))
        if missing:
            from jrobust.train import bucket_size_for

            padded = missing + [missing[-1]] * (bucket_size_for(len(missing)) - len(missing))
            rows = self.population.subset_indices(
                padded, config.train_size, seed=self.seed, bootstrap=config.bootstrap
            )
            cache.update({i: rows[j] for j, i in enumerate(missing)})
        return np.stack([cache[int(i)] for i in instances])

    def run(self, models: np.ndarray, instances: np.ndarray):
        from jrobust.parallel import launch_with_retry
        from jrobust.train import bucket_size_for, collect

        pending, compile_s, steps = [], 0.0, 0
        for c in np.unique(self.cohort[models]):
            sel = np.flatnonzero(self.cohort[models] == c)
            config = self.configs[models[sel[0]]]
            start = 0
            while start < len(sel):
                cap = self.cap(int(c), config)  # a multiple of the device count
                chunk = sel[start : start + cap]
                start += len(chunk)
                bucket = bucket_size_for(max(len(chunk), self.min_bucket), self.multiple, cap)
                cfgs = [self.configs[m] for m in models[chunk]]
                parts = launch_with_retry(
                    cfgs,
                    instances[chunk],
                    self.population,
                    seed=self.seed,
                    subsets=self.subsets(config, instances[chunk]),
                    bucket=bucket,
                    conv_impl=self.conv_impl,
                    placement=self.placement,
                )
                for part_index, part in parts:
                    pending.append((chunk[part_index], part))
                    compile_s += part.compile_seconds
                    self.programs.add((int(c), len(part.result.loss)))
                if len(parts) > 1:  # split after running out of memory: remember the size that fit
                    self._caps[int(c)] = max(len(part.result.loss) for _, part in parts)
                steps += len(chunk) * config.epochs * (config.train_size // config.batch_size)
        losses = np.empty(len(models))
        extra: dict[str, np.ndarray] = {}
        for idx, part in pending:
            out = collect(part)
            losses[idx] = np.where(out["ok"], out.pop("loss"), np.inf)
            for k, v in out.items():
                extra.setdefault(k, np.zeros(len(models), v.dtype))[idx] = v
        return losses, extra, compile_s, steps
