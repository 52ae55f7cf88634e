"""The race: Algorithm 1 of Boldyrev, Ratnikov, Shevelev (IEEE Access 2025) as batched rounds.

Each round trains new instances of every surviving model (grouped by cohort and packed into
buckets that one compiled, vmapped call trains each), updates the ledger and applies the
elimination rule. The warm-up (``warmup`` instances per model, during which nothing is removed)
is one round: its instances are independent, so training them together gives the ledger of
Algorithm 1's first ``k`` steps. After it, each round adds ``instances_per_round`` instances per
survivor (1: the paper's exact semantics; ``"auto"``: as many as keep the stack as wide as the
warm-up round, so the device stays full when few models survive).

The race is deterministic: the same seed gives the same ledger and winner, a killed race resumes
from its checkpoint to the same result, and every host of a multi-host run takes the same
decisions. The steps of a round are the methods of ``jrobust.state.RaceState``; the settings are
a ``jrobust.RaceSettings``.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pandas as pd

from jrobust import _lock, _signals, parallel
from jrobust._cache import enable_compilation_cache
from jrobust._specs import DEFAULT_EVENTS, data_spec
from jrobust.config import ModelConfig
from jrobust.data.population import Population
from jrobust.engine import Engine, call_evaluator
from jrobust.result import SelectionResult
from jrobust.settings import RaceSettings
from jrobust.space.product import SearchSpace
from jrobust.state import (
    CHECKPOINT_FILE,
    Evaluator,
    RaceState,
    Work,
    race_fingerprint,
    refuse_legacy,
)
from jrobust.stats import get_statistic
from jrobust.train import check_compatible, fit_to_population

__all__ = ["race", "exhaustive", "StopRace", "SelectionResult", "CHECKPOINT_FILE"]


class StopRace(Exception):
    """Raise it from a ``progress`` callback to end the race after the current round: ``race``
    returns the result so far (``result.finished`` is False; a checkpoint resumes it)."""


def race(
    space: SearchSpace | Sequence[ModelConfig] | int,
    population: Population | str | None = None,
    settings: RaceSettings | Mapping[str, Any] | None = None,
    *,
    evaluator: Evaluator | None = None,
    devices: Any = None,
    checkpoint_dir: str | os.PathLike | None = None,
    progress: Callable[[dict], None] | bool | None = None,
    **overrides: Any,
) -> SelectionResult:
    """Race the models of ``space`` on ``population`` until ``n_winners`` robust winners are left.

    Args:
      space: a ``SearchSpace``, a list of ``ModelConfig``, or (with ``evaluator``) a model count.
      population: the data every instance samples its training subset from (not needed with an
        ``evaluator``), or its name as ``jrobust run --data`` takes it: ``"calo-a"``,
        ``"calo-b"`` (10,000 events), ``"digits"``, ``"tfds:NAME"``, ``"npz:PATH"``. On a
        classification population, models that still have the regression defaults (loss and
        metric ``"mse"``, output width 1) race with ``loss="cross_entropy"``,
        ``metric="cross_entropy"`` and as many outputs as classes (``jrobust.train.
        fit_to_population``; a warning says so once).
      settings: a ``RaceSettings`` (or a mapping of its fields); default ``RaceSettings()``.
      evaluator: ``evaluator(model_ids, instance_indices) -> losses`` replacing the JAX trainer;
        with ``fidelity`` it is called ``evaluator(model_ids, instance_indices, train_sizes)``
        (one training size per instance) and must accept that third argument. For a race
        ``over="transforms"`` or ``"both"`` it returns ``(losses, transformed_losses)`` with
        ``transformed_losses`` of shape ``(instances, T)`` (the ledger names the columns by the
        ``population``'s ``TransformGrid`` when one is given, else ``custom`` 0..T-1).
      devices: devices to shard stacks over (``None``: all local devices when there are several).
      checkpoint_dir: write a checkpoint after every round; an existing checkpoint of the same
        race is resumed. The race holds the folder's lock (``run.lock``) while it runs, so a
        second race or ``jrobust run`` into it at the same time is refused.
      progress: ``True``: the command line's display (a header, a live bar with the steps
        inside a round on a terminal or in a notebook, else one line per round; the winner at
        the end); ``None`` (default): that display on a terminal or in a notebook, nothing
        elsewhere; ``False``: nothing. A callable is called after every round with a dict
        (round, survivors, trained, ...) and may raise ``StopRace`` to end the race there; if
        it also has an ``event(dict)`` method, that gets the steps inside a round (see
        ``jrobust.engine.Engine``).
      **overrides: any field of ``RaceSettings`` (``statistic``, ``rule``, ``warmup``,
        ``max_instances``, ``budget``, ``n_winners``, ``elites``, ``final_instances``,
        ``fidelity``, ``over``, ``seed``, ...), applied over ``settings``.

    Returns:
      A ``SelectionResult``.

    Raises:
      ValueError, TypeError: bad settings, models that cannot train on the data, a budget that
        does not cover the warm-up round, a fidelity schedule whose sizes are below the space's
        largest batch size or above the training pool (or an evaluator that does not take
        sizes), ``over="transforms"``/``"both"`` on a population without transformed test sets,
        all before anything is compiled.
      jrobust.runfolder.FolderInUse: ``checkpoint_dir`` is in use by another running race (the
        message names its process, host and start), or locked from another host.
      jrobust.Interrupted: on Ctrl-C, SIGTERM or SIGHUP, after the last complete round's
        checkpoint.

    Example:
      >>> import numpy as np
      >>> spread = np.linspace(0.1, 1.0, 8)
      >>> ev = lambda m, i: 1.0 + spread[m] * np.sin(13.0 * i + m)
      >>> race(8, evaluator=ev, statistic="std", rule="halving", warmup=3).winner_id
      0
    """
    t_start = time.perf_counter()
    settings = RaceSettings.of(settings, **overrides).resolved(evaluator=evaluator is not None)
    rule, statistic = settings.make_rule(), get_statistic(settings.statistic)
    rank_by = get_statistic(settings.rank_by) if settings.rank_by is not None else statistic
    configs, models = _resolve_space(space, evaluator)
    if isinstance(population, str):
        population = named_population(population)
    if evaluator is None and configs is not None and isinstance(population, Population):
        configs = _fit_all(configs, population)
    _check_budget(settings, len(models))
    grid = getattr(population, "transforms", None)
    check_memory(len(models), settings, n_transforms=len(grid) if grid is not None else 0)
    check_fidelity_fits(settings, configs, population if evaluator is None else None, evaluator)
    check_over(settings, population, evaluator)
    if evaluator is None:
        _check_all(configs, population)
        if settings.compilation_cache:
            cache = settings.compilation_cache
            enable_compilation_cache(None if cache is True else cache)
        engine = evaluate = Engine(configs, population, settings, devices)
    else:
        grid = getattr(population, "transforms", None)
        pairs = tuple(grid.pairs) if grid is not None else None
        sized = settings.fidelity is not None
        engine, evaluate = None, _user_evaluator(evaluator, sized=sized, pairs=pairs)
    data_key = population.fingerprint() if evaluator is None else None
    key = race_fingerprint(settings, configs, len(models), data_key)
    ckpt = Path(checkpoint_dir) / CHECKPOINT_FILE if checkpoint_dir is not None else None
    display = None
    if progress is True or progress is None:  # the display: on the main process only
        if (progress is True or _interactive()) and jax.process_index() == 0:
            display = _display(models, engine, population, settings)
        progress = display
    elif progress is False:
        progress = None
    if engine is not None:
        engine.events = getattr(progress, "event", None)
    # one race per folder: the lock is taken before the folder is read or written
    owner = _lock.hold(checkpoint_dir) if ckpt is not None and jax.process_index() == 0 else None
    with (
        owner or contextlib.nullcontext(),
        _signals.deferred_signals(),
        contextlib.ExitStack() as showing,
    ):
        state = _start(ckpt, key, len(models), settings)
        state.data_fingerprint = data_key
        if configs is not None:
            state.own_sizes = np.array([c.train_size for c in configs], np.int64)
        if display is not None:
            showing.enter_context(display)
        while not state.done:
            work = state.plan(settings)
            if work is None:  # the race ends here (max_instances or budget): record that
                _save(state, ckpt, key)
                break
            state.record(work, evaluate(work))
            state.apply_rule(rule, statistic, rank_by, settings)
            _save(state, ckpt, key)
            _signals.check()
            if progress is not None:
                try:
                    progress(state.progress_info())
                except StopRace:
                    break
    timing = dict(engine.timing() if engine else {"n_cohorts": 0, "n_programs": 0})
    result = state.to_result(models, settings, statistic, rank_by, configs=configs, timing=timing)
    result.timing["wall_seconds"] = time.perf_counter() - t_start
    if display is not None:
        from jrobust.cli.console import finish

        finish(display, result, result.timing["wall_seconds"])
    if result.all_failed:
        warnings.warn(
            "every instance of every model failed (non-finite losses): the race has no "
            "meaningful winner; check the learning rates and the data",
            RuntimeWarning,
            stacklevel=2,
        )
    return result


def _interactive() -> bool:
    """A terminal or a notebook: where ``race`` shows its display by default."""
    try:
        terminal = sys.stdout.isatty()
    except (AttributeError, ValueError):
        terminal = False
    return terminal or "ipykernel" in sys.modules


def _display(models: pd.DataFrame, engine: Engine | None, population, settings: RaceSettings):
    """The command line's live display for a race from Python."""
    from jrobust.cli.console import race_display

    cohorts = engine.n_cohorts if engine is not None else len(models)
    data = population if isinstance(population, Population) else None
    return race_display(len(models), cohorts, data, settings)


def exhaustive(
    space: SearchSpace | Sequence[ModelConfig] | int,
    population: Population | None = None,
    *,
    instances: int = 20,
    **kwargs: Any,
) -> SelectionResult:
    """Every model × ``instances`` instances (the full grid), ranked by ``rank_by`` (default
    ``statistic``): the reference a race is compared with. Takes ``race``'s other arguments."""
    kwargs.setdefault("instances_per_round", 1)
    return race(space, population, rule=_never, warmup=instances, max_instances=instances, **kwargs)


def _never(losses, mask, alive, round_index):
    return alive


# ---------------------------------------------------------------------------------- checks
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
        space = list(space)
        _refuse_repeats(space)
        space = SearchSpace.from_models(space)
    return space.models, space.to_frame()


def _refuse_repeats(models: list) -> None:
    """A list of models races under the list's indices: a model listed twice is refused (the
    ids of the models after it would otherwise shift, and the race cannot tell a model from
    itself; see docs/reliability.md)."""
    first: dict = {}
    for i, model in enumerate(models):
        try:
            j = first.setdefault(model, i)
        except TypeError:  # not hashable, so not a ModelConfig: SearchSpace names the problem
            return
        if j != i:
            what = model.describe() if hasattr(model, "describe") else repr(model)
            raise ValueError(
                f"models {j} and {i} of the list are the same configuration ({what}): model ids "
                "are the list's indices, so a repeat cannot be dropped without shifting the ids "
                "after it, and racing a model against itself decides nothing; remove the repeat "
                "(e.g. list(dict.fromkeys(models))) or pass a SearchSpace"
            )


def _check_budget(settings: RaceSettings, n_models: int) -> None:
    needed = n_models * settings.warmup_for()
    if settings.budget is not None and settings.budget < needed:
        raise ValueError(
            f"budget={settings.budget} trainings cannot cover the warm-up round ({n_models} "
            f"models x {settings.warmup_for()} instances = {needed}): nothing would be trained; "
            f"raise the budget to at least {needed}, or lower warmup"
        )


#: Bytes per value of a ledger column, and the columns of a ledger row (keys, loss, status,
#: round, stage, size, seconds and a few metrics): the memory estimate of ``check_memory``.
_VALUE_BYTES = 8
_LEDGER_COLUMNS = 12


def memory_text(n_bytes: float) -> str:
    """``12.3 GB``: a byte count for a message."""
    for unit, size in (("EB", 1e18), ("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n_bytes >= size:
            return f"{n_bytes / size:.3g} {unit}"
    return f"{n_bytes / 1e3:.3g} kB"


def check_memory(
    n_models: int,
    settings: RaceSettings,
    *,
    n_transforms: int = 0,
    data_bytes: int = 0,
    data_text: str = "",
    available: int | None = None,
) -> None:
    """Refuse a race whose ledger (and data) cannot fit in the host's available memory, before
    anything is allocated or written: the loss tables are ``models x instances`` (instances:
    ``max_instances`` per stage and ``final_instances``) and, at most, the ledger has a row of
    ``_LEDGER_COLUMNS`` columns per (instance, test set).

    Args:
      n_models: the models of the race.
      settings: the race settings.
      n_transforms: transformed test sets per instance.
      data_bytes: the memory of data still to be generated (0: already in memory), described
        by ``data_text`` (e.g. ``events=10000 (10000 events of 15x15 inputs)``).
      available: the bytes available (default: the host's available memory).

    Raises:
      ValueError: one line naming the setting to lower.
    """
    columns = settings.max_instances * (len(settings.fidelity) if settings.fidelity else 1)
    columns += settings.final_instances
    tests = 1 + n_transforms
    cell = 9 + _VALUE_BYTES * n_transforms + tests * _LEDGER_COLUMNS * _VALUE_BYTES
    ledger = float(n_models) * columns * cell
    if available is None:
        available = parallel._host_available_bytes()
    if ledger + data_bytes <= available:
        return
    have = f"more than the {memory_text(available)} this machine has available"
    if data_bytes > ledger:
        raise ValueError(
            f"{data_text} needs about {memory_text(data_bytes)} of memory for the data, {have}; "
            "use fewer events"
        )
    shape = f"{n_models} models x {columns} instances" + (
        f" x {tests} test sets" if n_transforms else ""
    )
    raise ValueError(
        f"max_instances={settings.max_instances} needs about {memory_text(ledger)} of memory for "
        f"the race's ledger ({shape}), {have}; lower max_instances"
    )


def _takes_sizes(evaluator: Callable[..., Any]) -> bool:
    """Whether ``evaluator`` can be called with three positional arguments."""
    try:
        inspect.signature(evaluator).bind(None, None, None)
    except TypeError:
        return False
    except ValueError:  # no signature to inspect (some builtins): assume the documented two
        return False
    return True


def _user_evaluator(
    evaluator: Evaluator, *, sized: bool, pairs: tuple | None = None
) -> Callable[[Work], Any]:
    """A user's evaluator as a work-list evaluator: ``evaluator(model_ids, instance_indices)``,
    or with a fidelity schedule ``evaluator(model_ids, instance_indices, train_sizes)``;
    transformed losses are named by ``pairs`` (the population's grid) when their count fits."""

    def evaluate(work: Work):
        if sized:
            sizes = np.asarray(work.train_size, np.int64).copy()
            outcome = call_evaluator(lambda m, i: evaluator(m, i, sizes), work)
        else:
            outcome = call_evaluator(evaluator, work)
        if outcome.transformed is not None and pairs and len(pairs) == outcome.transformed.shape[1]:
            outcome = outcome._replace(pairs=pairs)
        return outcome

    return evaluate


def check_over(
    settings: RaceSettings, population: Population | None, evaluator: Evaluator | None
) -> None:
    """``over="transforms"``/``"both"`` needs transformed test sets: a population made with
    ``jrobust.data.with_transforms`` (an evaluator's are checked when it first returns)."""
    if settings.over == "instances" or evaluator is not None:
        return
    if getattr(population, "transforms", None) is None:
        raise ValueError(
            f"over={settings.over!r} takes the statistics over transformed test sets, but the "
            "population has none: use jrobust.data.with_transforms(population, rotation=[0, 15, "
            "30, 45]) (or scale=, shift=, custom=), or over='instances'"
        )


def check_fidelity_fits(
    settings: RaceSettings,
    configs: list[ModelConfig] | None,
    population: Population | None,
    evaluator: Evaluator | None = None,
) -> None:
    """A fidelity schedule that cannot run is an error before anything is compiled: a size
    below the largest batch size of the space, above the population's training pool, or an
    evaluator that does not take sizes."""
    sizes = settings.fidelity
    if sizes is None:
        return
    if evaluator is not None and not _takes_sizes(evaluator):
        raise TypeError(
            f"fidelity={list(sizes)} trains instances at several sizes, so the evaluator must take "
            "them: evaluator(model_ids, instance_indices, train_sizes) -> losses (a third "
            "argument, one size per instance)"
        )
    if configs:
        batch = max(c.batch_size for c in configs)
        if sizes[0] < batch:
            widest = next(i for i, c in enumerate(configs) if c.batch_size == batch)
            raise ValueError(
                f"fidelity size {sizes[0]} is smaller than the largest batch size of the space "
                f"({batch}, model {widest}): every fidelity size must be at least {batch}"
            )
    if population is not None and configs:
        pool = population.pool_size
        fixed = [i for i, c in enumerate(configs) if not c.bootstrap]
        if fixed and sizes[-1] > pool:
            raise ValueError(
                f"fidelity size {sizes[-1]} is larger than the population's training pool of "
                f"{pool} events (model {fixed[0]} draws without replacement); use sizes up to "
                f"{pool}, bootstrap=True, or more data"
            )


def named_population(spec: str) -> Population:
    """The population a name stands for, as ``jrobust run --data`` loads it (the calorimeter
    with ``DEFAULT_EVENTS`` events)."""
    from jrobust.data import load

    try:
        spec = data_spec(spec)
    except ValueError as err:
        raise ValueError(f"population: {err}") from None
    return load(spec, n_events=DEFAULT_EVENTS) if spec.startswith("calo-") else load(spec)


def _fit_all(configs: list[ModelConfig], population: Population) -> list[ModelConfig]:
    """The models made fit for a classification population where they have the regression
    defaults (``fit_to_population``), said once in a warning."""
    fitted, changed = [], {}
    for config in configs:
        new, changes = fit_to_population(config, population)
        fitted.append(new)
        if changes:
            key = ", ".join(f"{k}={v!r}" for k, v in changes.items())
            changed[key] = changed.get(key, 0) + 1
    if changed:
        how = "; ".join(f"{n} with {key}" for key, n in changed.items())
        warnings.warn(
            f"the population {population.name!r} is a classification set "
            f"({population.num_classes} classes) and models had the regression defaults, so they "
            f"race with the classification settings: {how} (set loss, metric and outputs to "
            "choose otherwise)",
            UserWarning,
            stacklevel=3,
        )
    return fitted


def _check_all(configs: list[ModelConfig], population: Population | None) -> None:
    if population is None:
        raise TypeError(
            "race() trains the models on a population: pass one, e.g. "
            "jrobust.data.calorimeter(10_000), or pass evaluator= to race losses you compute"
        )
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


# ---------------------------------------------------------------------------------- checkpoints
def _start(ckpt: Path | None, key: str, n_models: int, settings: RaceSettings) -> RaceState:
    if ckpt is None:
        return RaceState.new(n_models, settings.max_instances)
    refuse_legacy(ckpt.parent)
    if ckpt.exists():
        return RaceState.load(ckpt, key)
    return RaceState.new(n_models, settings.max_instances)


def _save(state: RaceState, ckpt: Path | None, key: str) -> None:
    if ckpt is None or not state.round or jax.process_index() != 0:
        return
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    state.save(ckpt, key)
