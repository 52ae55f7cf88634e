"""The race: Algorithm 1 of Boldyrev, Ratnikov, Shevelev (IEEE Access 2025) as batched rounds.

``race`` is the loop ``ask -> evaluate -> tell`` over a ``jrobust.Race``: each round trains new
instances of every surviving model (grouped into programs and packed into stacks that one
compiled, vmapped call trains each), updates the ledger and applies the elimination rule. The
warm-up (``warmup`` instances per model, during which nothing is removed) is one round: its
instances are independent, so training them together gives the ledger of Algorithm 1's first
``k`` steps. After it, each round adds ``instances_per_round`` instances per survivor (1: the
paper's exact semantics; ``"auto"``: as many as keep the stack as wide as the warm-up round, so
the device stays full when few models survive).

The race is deterministic: the same seed gives the same ledger and winner, a killed race resumes
from its checkpoint to the same result, and every host of a multi-host run takes the same
decisions.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jrobust._src import lock as _lock
from jrobust._src import signals as _signals
from jrobust._src.cache import enable_compilation_cache
from jrobust._src.checks import (
    CheckError,
    check_budget,
    check_fidelity_fits,
    check_over,
    check_space_fits,
)
from jrobust._src.config import ModelConfig
from jrobust._src.data.population import Population
from jrobust._src.race.checkpoint import CHECKPOINT_FILE
from jrobust._src.race.race import Race, as_outcome
from jrobust._src.race.work import Outcome, Work
from jrobust._src.result import SelectionResult
from jrobust._src.settings import RaceSettings
from jrobust._src.space.product import SearchSpace
from jrobust._src.specs import DEFAULT_EVENTS, data_spec
from jrobust._src.train import fit_all, fit_note

__all__ = ["race", "exhaustive", "StopRace", "SelectionResult", "CHECKPOINT_FILE"]

# A user's evaluator: losses for the work list, in its order.
Evaluator = Callable[[np.ndarray, np.ndarray], Any]


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
        ``metric="cross_entropy"`` and as many outputs as classes (``jrobust._src.train.
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
        ``jrobust._src.engine.Engine``).
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
      jrobust.Interrupted: on Ctrl-C or SIGTERM, after the last complete round's checkpoint.

    Example:
      >>> import numpy as np
      >>> spread = np.linspace(0.1, 1.0, 8)
      >>> ev = lambda m, i: 1.0 + spread[m] * np.sin(13.0 * i + m)
      >>> race(8, evaluator=ev, statistic="std", rule="halving", warmup=3).winner_id
      0
    """
    t_start = time.perf_counter()
    if evaluator is None and isinstance(space, int | np.integer) and not isinstance(space, bool):
        raise CheckError(
            "a bare model count needs an evaluator; pass a SearchSpace to train with JAX"
        )
    if isinstance(population, str):
        population = named_population(population)
    trainer = "external" if evaluator is not None else "jax"
    r = Race(space, population, settings, trainer=trainer, **overrides)
    if evaluator is None and isinstance(population, Population):
        r.configs = _fit_all(r.configs, population)
    settings = r.resolved.settings
    check_budget(settings, len(r.models))
    grid = getattr(population, "transforms", None)
    check_fidelity_fits(settings, r.configs, population if evaluator is None else None, evaluator)
    engine = None
    if evaluator is None:
        check_over(settings, grid is not None)
        check_space_fits(r.configs, population, list(r.models["name"]))
        if settings.compilation_cache:
            cache = settings.compilation_cache
            enable_compilation_cache(None if cache is True else cache)
        from jrobust._src.engine import Engine  # the JAX trainer, only when it trains

        engine = Engine(r.configs, population, settings.execution, settings.seed, devices)
        evaluate = engine
    else:
        evaluate = _user_evaluator(evaluator, r, sized=settings.fidelity is not None)
    progress, display = _progress(progress, r, engine, population)
    folder = Path(checkpoint_dir) if checkpoint_dir is not None else None
    # one race per folder: the lock is taken before the folder is read or written
    owner = _lock.hold(folder) if folder is not None and jax.process_index() == 0 else None
    with (
        owner or contextlib.nullcontext(),
        _signals.deferred_signals(),
        display or contextlib.nullcontext(),
    ):
        if folder is not None:
            r.resume(folder)
        _loop(r, evaluate, folder, progress)
    timing = dict(engine.timing() if engine else {"n_cohorts": 0, "n_programs": 0})
    result = r.result(timing)
    result.timing["wall_seconds"] = time.perf_counter() - t_start
    if display is not None:
        from jrobust._src.cli.console import finish

        finish(display, result, result.timing["wall_seconds"])
    if result.all_failed:
        warnings.warn(
            "every instance of every model failed (non-finite losses): the race has no "
            "meaningful winner; check the learning rates and the data",
            RuntimeWarning,
            stacklevel=2,
        )
    return result


def _loop(r: Race, evaluate: Callable[[Work], Outcome], folder, progress) -> None:
    """Algorithm 1: ask, evaluate, tell, until the race is over (or ``progress`` stops it); a
    checkpoint after every round, and a pending Ctrl-C honoured there."""
    while (work := r.ask()) is not None:
        r.tell(work, evaluate(work))
        _save(r, folder)
        _signals.check()
        if progress is not None:
            try:
                progress(_progress_info(r))
            except StopRace:
                return
    _save(r, folder)  # the race ended at ``ask`` (its budget): record that


def _progress(progress, r: Race, engine, population):
    """``(callback, display)``: the command line's display for ``True`` (and for ``None`` in a
    terminal or a notebook, on the main process), nothing for ``False``, else the callable; the
    engine reports the steps inside a round to the callback's ``event`` method."""
    display = None
    if progress is True or progress is None:
        if (progress is True or _interactive()) and jax.process_index() == 0:
            from jrobust._src.cli.console import race_display

            cohorts = engine.n_cohorts if engine is not None else len(r.models)
            data = population if isinstance(population, Population) else None
            display = race_display(len(r.models), cohorts, data, r.resolved.settings)
        progress = display
    elif progress is False:
        progress = None
    if engine is not None:
        engine.events = getattr(progress, "event", None)
    return progress, display


def _interactive() -> bool:
    """A terminal or a notebook: where ``race`` shows its display by default."""
    try:
        terminal = sys.stdout.isatty()
    except (AttributeError, ValueError):
        terminal = False
    return terminal or "ipykernel" in sys.modules


def named_population(spec: str) -> Population:
    """The population a name stands for, as ``jrobust run --data`` loads it (the calorimeter
    with ``DEFAULT_EVENTS`` events)."""
    from jrobust._src.data.sources import load

    try:
        spec = data_spec(spec)
    except ValueError as err:
        raise ValueError(f"population: {err}") from None
    return load(spec, n_events=DEFAULT_EVENTS) if spec.startswith("calo-") else load(spec)


def _fit_all(configs: list[ModelConfig], population: Population) -> list[ModelConfig]:
    """The models made fit for a classification population where they have the regression
    defaults (``jrobust._src.train.fit_all``), said once in a warning."""
    fitted, tally = fit_all(configs, population)
    if tally:
        warnings.warn(fit_note(population, tally), UserWarning, stacklevel=4)
    return fitted


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


def _user_evaluator(evaluator: Evaluator, r: Race, *, sized: bool) -> Callable[[Work], Outcome]:
    """A user's evaluator as a work-list evaluator: ``evaluator(model_ids, instance_indices)``,
    or with a fidelity schedule ``evaluator(model_ids, instance_indices, train_sizes)``; it
    gets copies, so it cannot change the race's work."""

    def evaluate(work: Work) -> Outcome:
        t0 = time.perf_counter()
        args = [work.model_ids.copy(), work.instances.copy()]
        if sized:
            args.append(np.asarray(work.train_sizes, np.int64).copy())
        outcome = as_outcome(evaluator(*args), len(work.model_ids), r._pairs())
        return outcome._replace(seconds=time.perf_counter() - t0)

    return evaluate


def _progress_info(r: Race) -> dict[str, Any]:
    """The facts of the last round, as the race's ``progress`` callback receives them."""
    state = r.state
    last = state.history[-1]
    return dict(
        round=state.round,
        survivors=int(state.alive.sum()),
        models=state.n_models,
        trained=last["trained"],
        n_trainings=state.n_trainings,
        seconds=last["seconds"],
        compile_seconds=last["compile_seconds"],
        instance_steps=last["instance_steps"],
        eliminated=len(last["eliminated"]),
        instances_per_model=last["instances_per_model"],
        stage=int(last.get("stage", 0)),
        stage_kind=last.get("stage_kind", "race"),
        train_size=last.get("train_size", 0),
        done=state.done,
    )


def _save(r: Race, folder: Path | None) -> None:
    if folder is None or not r.state.round or jax.process_index() != 0:
        return
    r.save(folder)
