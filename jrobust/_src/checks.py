"""Every check of a race's inputs that needs more than one setting, in one place.

Each raises ``CheckError`` (a ``ValueError``, and a ``TypeError`` where the input is of the wrong
kind) with one sentence that says what is wrong and how to fix it, before anything is compiled or
written. ``jrobust.race`` calls them; the command line calls the same functions and turns the
error into its usage error (exit status 2).
"""

from __future__ import annotations

import contextlib
import inspect
import os
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

# Light on purpose: the command line checks its options with these before JAX is imported.
if TYPE_CHECKING:
    from jrobust._src.config import ModelConfig
    from jrobust._src.data.population import Population
    from jrobust._src.settings import RaceSettings

__all__ = [
    "CheckError",
    "as_usage",
    "check_budget",
    "check_fidelity_fits",
    "check_memory",
    "memory_text",
    "check_over",
    "host_available_bytes",
    "check_space_fits",
    "takes_sizes",
]


class CheckError(ValueError, TypeError):
    """Bad input found before anything is compiled (a ``ValueError``; also a ``TypeError``, so
    an input of the wrong kind is caught as one)."""


@contextlib.contextmanager
def as_usage(error: type[Exception]) -> Iterator[None]:
    """Turn a ``CheckError`` inside the block into ``error`` (the command line's usage error),
    with the same one-line message."""
    try:
        yield
    except CheckError as err:
        raise error(str(err)) from None


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
      CheckError: one line naming the setting to lower.
    """
    columns = settings.max_instances * (len(settings.fidelity) if settings.fidelity else 1)
    columns += settings.final_instances
    tests = 1 + n_transforms
    cell = 9 + _VALUE_BYTES * n_transforms + tests * _LEDGER_COLUMNS * _VALUE_BYTES
    ledger = float(n_models) * columns * cell
    if available is None:
        available = host_available_bytes()
    if ledger + data_bytes <= available:
        return
    have = f"more than the {memory_text(available)} this machine has available"
    if data_bytes > ledger:
        raise CheckError(
            f"{data_text} needs about {memory_text(data_bytes)} of memory for the data, {have}; "
            "use fewer events"
        )
    shape = f"{n_models} models x {columns} instances" + (
        f" x {tests} test sets" if n_transforms else ""
    )
    raise CheckError(
        f"max_instances={settings.max_instances} needs about {memory_text(ledger)} of memory for "
        f"the race's ledger ({shape}), {have}; lower max_instances"
    )


def host_available_bytes() -> int:
    """The host's available memory in bytes (``MemAvailable`` of ``/proc/meminfo``; elsewhere
    the free pages; 8 GiB when neither can be read)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def check_budget(settings: RaceSettings, n_models: int) -> None:
    """A budget must cover the warm-up round: else nothing would be trained."""
    warmup = settings.warmup_for()
    needed = n_models * warmup
    if settings.budget is not None and settings.budget < needed:
        raise CheckError(
            f"budget={settings.budget} trainings cannot cover the warm-up round ({n_models} "
            f"models x {warmup} instances = {needed}): nothing would be trained; raise the "
            f"budget to at least {needed}, or lower warmup"
        )


def check_over(settings: RaceSettings, has_transforms: bool) -> None:
    """``over="transforms"``/``"both"`` needs transformed test sets (a population made with
    ``jrobust.data.with_transforms``; an evaluator's are checked when it first returns)."""
    if settings.over != "instances" and not has_transforms:
        raise CheckError(
            f"over={settings.over!r} takes the statistics over transformed test sets, but the "
            "population has none: give them with --rotation, --scale or --shift on the command "
            "line (rotation = [...] in a space file's [data]), or with "
            "jrobust.data.with_transforms(population, rotation=[0, 15, 30, 45]) from Python; or "
            "race over='instances'"
        )


def takes_sizes(evaluator: Callable[..., Any]) -> bool:
    """Whether ``evaluator`` can be called with three positional arguments."""
    try:
        inspect.signature(evaluator).bind(None, None, None)
    except TypeError:
        return False
    except ValueError:  # no signature to inspect (some builtins): assume the documented two
        return False
    return True


def check_fidelity_fits(
    settings: RaceSettings,
    configs: Sequence[ModelConfig] | None,
    population: Population | None,
    evaluator: Callable[..., Any] | None = None,
) -> None:
    """A fidelity schedule that cannot run: a size below the largest batch size of the space,
    above the population's training pool, or an evaluator that does not take sizes."""
    sizes = settings.fidelity
    if sizes is None:
        return
    if evaluator is not None and not takes_sizes(evaluator):
        raise CheckError(
            f"fidelity={list(sizes)} trains instances at several sizes, so the evaluator must take "
            "them: evaluator(model_ids, instance_indices, train_sizes) -> losses (a third "
            "argument, one size per instance)"
        )
    if configs:
        batch = max(c.batch_size for c in configs)
        if sizes[0] < batch:
            widest = next(i for i, c in enumerate(configs) if c.batch_size == batch)
            raise CheckError(
                f"fidelity size {sizes[0]} is smaller than the largest batch size of the space "
                f"({batch}, model {widest}): every fidelity size must be at least {batch}"
            )
    if population is not None and configs:
        pool = population.pool_size
        fixed = [i for i, c in enumerate(configs) if not c.bootstrap]
        if fixed and sizes[-1] > pool:
            raise CheckError(
                f"fidelity size {sizes[-1]} is larger than the population's training pool of "
                f"{pool} events (model {fixed[0]} draws without replacement); use sizes up to "
                f"{pool}, bootstrap=True, or more data"
            )


def check_space_fits(
    configs: Sequence[ModelConfig],
    population: Population | None,
    names: Sequence[str] | None = None,
) -> None:
    """Every cohort of the space can train on the population (one check per cohort)."""
    from jrobust._src.train import check_compatible

    if population is None:
        raise CheckError(
            "race() trains the models on a population: pass one, e.g. "
            "jrobust.data.calorimeter(10_000), or pass evaluator= to race losses you compute"
        )
    seen: set = set()
    for i, config in enumerate(configs):
        key = config.static_key()
        if key in seen:
            continue
        seen.add(key)
        try:
            check_compatible(config, population)
        except (ValueError, TypeError) as err:
            name = names[i] if names is not None else config.describe()
            raise CheckError(f"model {i} ({name}) does not fit the data: {err}") from None
