"""From the command line, a space file and a run folder to checked settings, before any training.

Precedence: command-line options over the space file's ``[race]``/``[data]`` tables over the
defaults (``jrobust.RaceSettings`` for the race; ``DEFAULT_DATA``/``DEFAULT_EVENTS`` for the
data). Every problem is a ``UsageError`` (one line, exit status 2) raised before a run folder is
created or any data is generated.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as _dt
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jrobust._src import checks
from jrobust._src import lock as _lock
from jrobust._src.cli.options import DEFAULT_DATA, DEFAULT_EVENTS, UsageError, data_spec
from jrobust._src.lock import LOCK_FILE
from jrobust._src.specs import BUILTIN_RACE
from jrobust._version import __version__

# The data, the space, the trainer and the race state are imported inside the functions that
# need them: the checks that need none of them (the options, the [race] and [data] tables) run
# before JAX is imported, so a mistake there is reported at once.
if TYPE_CHECKING:
    from jrobust._src.data.population import Population
    from jrobust._src.settings import RaceSettings
    from jrobust._src.space.product import SearchSpace

CONFIG_FILE = "config.toml"  # jrobust._src.runfolder.layout.CONFIG_FILE, without importing it

__all__ = [
    "DataFacts",
    "RACE_OPTIONS",
    "build_checked_space",
    "check_budget",
    "check_free",
    "check_memory",
    "check_writable",
    "check_fidelity_fits",
    "check_over",
    "check_folder",
    "check_space_fits",
    "check_version",
    "checkpoint_facts",
    "data_facts",
    "data_settings",
    "load_population",
    "new_folder",
    "own_folder",
    "race_settings",
    "resolved_config",
    "space_tables",
]

#: Command-line options and the race setting each sets.
RACE_OPTIONS = {
    "statistic": "statistic",
    "rank_by": "rank_by",
    "rule": "rule",
    "warmup": "warmup",
    "alpha": "alpha",
    "patience": "patience",
    "correction": "correction",
    "max_instances": "max_instances",
    "instances_per_round": "instances_per_round",
    "budget": "budget",
    "winners": "n_winners",
    "final_instances": "final_instances",
    "elites": "elites",
    "fidelity": "fidelity",
    "over": "over",
    "seed": "seed",
    "max_bucket": "max_bucket",
    "merge": "merge",
    "waste": "waste",
}


def race_settings(
    args: argparse.Namespace, file_race: Mapping[str, Any], builtin: bool = False
) -> RaceSettings:
    """The race settings: command line over the space file's ``[race]`` over the defaults (and,
    for the built-in space, over its own ``BUILTIN_RACE`` table)."""
    from jrobust._src.settings import RaceSettings

    table = {**(BUILTIN_RACE if builtin else {}), **dict(file_race)}
    try:
        settings = RaceSettings.from_table(table)
    except (ValueError, TypeError) as err:
        raise UsageError(f"[race]: {err}") from None
    given = {
        setting: getattr(args, option)
        for option, setting in RACE_OPTIONS.items()
        if getattr(args, option, None) is not None
    }
    try:
        return settings.replace(**given).resolved()
    except (ValueError, TypeError) as err:
        raise UsageError(str(err)) from None


def data_settings(args: argparse.Namespace, file_data: Mapping[str, Any]) -> dict[str, Any]:
    """The data settings: ``source``, ``events`` (calorimeter), ``data_dir`` (TFDS), checked."""
    source = args.data or file_data.get("source") or DEFAULT_DATA
    try:
        source = data_spec(str(source))
    except argparse.ArgumentTypeError as err:
        raise UsageError(f"data: {err}") from None
    data: dict[str, Any] = {"source": source}
    events = args.events if args.events is not None else file_data.get("events")
    data_dir = args.data_dir if args.data_dir is not None else file_data.get("data_dir")
    if source.startswith("calo"):
        events = DEFAULT_EVENTS if events is None else events
        if isinstance(events, bool) or not isinstance(events, int) or events < 100:
            raise UsageError(f"events must be an integer of at least 100, got {events!r}")
        data["events"] = int(events)
    elif events is not None:
        raise UsageError(f"--events applies to the calorimeter (calo-a, calo-b), not to {source!r}")
    if data_dir is not None:
        if not source.lower().startswith("tfds:"):
            raise UsageError(f"--data-dir applies to TFDS data (tfds:NAME), not to {source!r}")
        if not Path(data_dir).expanduser().is_dir():
            raise UsageError(
                f"data folder {data_dir} does not exist "
                "(--data-dir: the folder of prepared TFDS data sets)"
            )
        data["data_dir"] = str(Path(data_dir).expanduser().resolve())
    if source.lower().startswith("npz:") or source.lower().endswith(".npz"):
        path = Path(source[4:] if source.lower().startswith("npz:") else source).expanduser()
        if not path.is_file():
            raise UsageError(f"no such .npz file: {path}")
        data["source"] = f"npz:{path.resolve()}"  # the run folder must not depend on the cwd
    for name in TRANSFORM_KEYS:
        values = getattr(args, name, None)
        values = file_data.get(name) if values is None else values
        if values is not None:
            data[name] = _transform_values(name, values)
    return data


#: The ``[data]`` keys (and options) of transformed test sets (``jrobust.data.with_transforms``).
TRANSFORM_KEYS = ("rotation", "scale", "shift")


def _transform_values(name: str, values: Any) -> list[float]:
    if isinstance(values, int | float) and not isinstance(values, bool):
        values = [values]
    ok = isinstance(values, list | tuple) and values
    ok = ok and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    if not ok:
        raise UsageError(
            f"{name} must be a list of numbers, e.g. {name} = [0, 15, 30]; got {values!r}"
        )
    if name == "scale" and min(values) <= 0:
        raise UsageError(f"scale factors must be positive, got {list(values)}")
    return [float(v) for v in values]


def check_over(settings: RaceSettings, data: Mapping[str, Any]) -> None:
    """``--over transforms``/``both`` needs transformed test sets (else a ``UsageError``)."""
    with checks.as_usage(UsageError):
        checks.check_over(settings, any(k in data for k in TRANSFORM_KEYS))


@dataclasses.dataclass(frozen=True)
class DataFacts:
    """What the built-in space and the parameter counts need to know of the data."""

    name: str
    input_shape: tuple[int, ...]
    is_classification: bool
    num_classes: int | None
    pool_size: int

    @classmethod
    def of(cls, pop: Population) -> DataFacts:
        return cls(pop.name, pop.input_shape, pop.is_classification, pop.num_classes, pop.pool_size)


def data_facts(data: Mapping[str, Any]) -> tuple[DataFacts, Population | None]:
    """The facts of the data, and the population when it had to be loaded to know them (a
    calorimeter is described without generating it; other sources are read)."""
    from jrobust._src.data.calorimeter import TEST_SIZE, VAL_SIZE
    from jrobust._src.data.population import pool_size

    if data["source"].startswith("calo"):
        name = "calo-" + data["source"][-1].upper()
        pool = pool_size(int(data.get("events", DEFAULT_EVENTS)), TEST_SIZE, VAL_SIZE)
        return DataFacts(name, (15, 15, 1), False, None, pool), None
    pop = load_population(data)
    return DataFacts.of(pop), pop


def load_population(data: Mapping[str, Any]) -> Population:
    from jrobust._src.data.sources import load
    from jrobust._src.data.transforms import with_transforms

    kwargs: dict[str, Any] = {}
    if "events" in data:
        kwargs["n_events"] = int(data["events"])
    if "data_dir" in data:
        kwargs["data_dir"] = data["data_dir"]
    try:
        pop = load(data["source"], **kwargs)
    except (FileNotFoundError, ValueError, KeyError, TypeError, ImportError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        raise UsageError(
            f"cannot load data {data['source']!r}: {str(message).splitlines()[0]}"
        ) from None
    grid = {k: data[k] for k in TRANSFORM_KEYS if k in data}
    if not grid:
        return pop
    try:
        return with_transforms(pop, **grid)
    except ValueError as err:
        raise UsageError(f"data {data['source']!r}: {err}") from None


def space_tables(file_tables, facts: DataFacts, target: str | None) -> list[dict[str, Any]]:
    """The space file's tables, or the built-in space for this data."""
    from jrobust._src.space.builtin import default_spec

    if file_tables:
        return file_tables
    return default_spec(
        classification=facts.is_classification,
        input_shape=facts.input_shape,
        num_classes=facts.num_classes,
        target=target,
        calorimeter=facts.name.lower().startswith("calo"),
        pool_size=facts.pool_size,
    )


def build_checked_space(
    tables: Sequence[Mapping[str, Any]], overrides: Mapping[str, Any]
) -> tuple[SearchSpace, list[dict[str, Any]]]:
    """The space of ``tables`` with ``overrides`` fixed on every model."""
    from jrobust._src.space.files import SpaceError, build_space, with_overrides

    tables = with_overrides(tables, **overrides)
    try:
        space = build_space(tables)
    except SpaceError as err:
        raise UsageError(f"space: {err}") from None
    return space, tables


def check_space_fits(space: SearchSpace, pop: Population) -> str:
    """Every cohort of the space can train on the population (else a ``UsageError``).

    Returns:
      A line saying which models race with the classification settings a classification
      population needs (``jrobust.train.fit_to_population``), or ``""``.
    """
    from jrobust._src.train import fit_all, fit_note

    configs, tally = fit_all(space.models, pop)
    with checks.as_usage(UsageError):
        checks.check_space_fits(configs, pop, space.names())
    return fit_note(pop, tally, " in the space file")


def check_fidelity_fits(settings: RaceSettings, space: SearchSpace, pop: Population) -> None:
    """A ``--fidelity`` schedule the space and data can train (else a ``UsageError``)."""
    with checks.as_usage(UsageError):
        checks.check_fidelity_fits(settings, space.models, pop)


def check_budget(settings: RaceSettings, n_models: int) -> None:
    """A ``--budget`` that covers the warm-up round (else a ``UsageError``)."""
    with checks.as_usage(UsageError):
        checks.check_budget(settings, n_models)


# ------------------------------------------------------------------------------ run folders
def resolved_config(
    data: Mapping[str, Any], race: RaceSettings, tables: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """What ``config.toml`` holds: enough to rerun the race (``--space``) or resume it."""
    return {
        "jrobust": {"version": __version__},
        "data": dict(data),
        "race": race.to_table(execution=False),
        "space": list(tables),
    }


_STALE = re.compile(r"\.tmp\d+$")


def _differences(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[str]:
    out = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append(f"{prefix}{k}")
    return out


def _comparable(config: Mapping[str, Any]) -> dict[str, Any]:
    from jrobust._src.settings import RaceSettings
    from jrobust._src.space.files import to_toml

    doc = tomllib.loads(to_toml(config))
    race = doc["race"] = RaceSettings.race_part(doc.get("race", {}))
    if race:
        try:  # compare resolved values, so an explicit default equals an omitted one
            doc["race"] = RaceSettings.from_table(race).resolved().to_table(execution=False)
        except (ValueError, TypeError):
            pass
    return doc


def check_folder(
    folder: Path, config: Mapping[str, Any], parts: Sequence[str] | None = None
) -> bool:
    """Whether ``folder`` already holds this run (to be continued); a ``UsageError`` if it holds
    another run or something else.

    ``parts``: compare only these tables of the configuration (an early check, before the data
    is loaded and the space resolved).
    """
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--out {folder} is a file, not a folder")
    left = [p for p in folder.iterdir() if not _STALE.search(p.name)] if folder.exists() else []
    if not [p for p in left if p.name != LOCK_FILE]:
        check_free(folder)
        return False  # empty, or holding only what a killed atomic write or run left
    from jrobust._src.race.checkpoint import CheckpointMismatch, refuse_legacy
    from jrobust._src.runfolder.layout import is_run_folder, read_config

    if not is_run_folder(folder):
        check_free(folder)
        raise UsageError(
            f"--out {folder} exists and holds something else than a jrobust run; "
            "choose a new folder"
        )
    try:
        refuse_legacy(folder)
        old = read_config(folder)
    except (ValueError, CheckpointMismatch) as err:
        raise UsageError(str(err)) from None
    if old is None:
        check_free(folder)  # a run that has not written its configuration yet
        raise UsageError(
            f"--out {folder} holds a jrobust run without its config.toml; choose a new folder"
        )
    old, new = _comparable(old), _comparable(config)
    if parts is not None:
        old = {k: v for k, v in old.items() if k in parts}
        new = {k: v for k, v in new.items() if k in parts}
    diff = _differences(old, new)
    if diff:
        check_free(folder)  # a running run is named as such
        shown = ", ".join(diff[:6]) + (", ..." if len(diff) > 6 else "")
        raise UsageError(
            f"--out {folder} holds a different run (it differs in {shown}); choose another --out, "
            f"or continue that run with: jrobust run --resume {folder}"
        )
    return True


def check_free(folder: Path) -> None:
    """A ``UsageError`` naming the process that holds ``folder`` (a live run, or a lock of
    another host); nothing when the folder is free or its lock is stale. Read only."""
    try:
        _lock.check_free(folder)
    except _lock.FolderInUse as err:
        raise UsageError(str(err)) from None


def check_writable(folder: Path, option: str = "--out") -> None:
    """A ``UsageError`` when the run folder cannot be created or written (a file in its place
    or above it, a folder this user cannot write): before any data is generated."""
    try:
        _lock.check_writable(folder, what=f"{option} {folder}")
    except ValueError as err:
        raise UsageError(str(err)) from None


@contextlib.contextmanager
def own_folder(folder: Path, command: str, notify: Callable[[str], None]) -> Iterator[Path]:
    """Hold the lock of ``folder`` for this run (``jrobust._src.lock``); a ``UsageError`` naming
    the running process when another run holds it. ``notify`` says when a stale lock is
    taken over."""
    try:
        _lock.acquire(folder, command, notify)
    except (_lock.FolderInUse, ValueError) as err:
        raise UsageError(str(err)) from None
    try:
        yield folder
    finally:
        _lock.release(folder)


#: Memory of one generated calorimeter event while it is made and kept (15x15 cells in float64
#: and float32, the side features and the truth): the estimate ``check_memory`` uses.
CALO_EVENT_BYTES = 4096


def check_memory(settings: RaceSettings, n_models: int, data: Mapping[str, Any]) -> None:
    """A ``UsageError`` when the race's ledger and the data to generate cannot fit in the
    host's available memory (``jrobust._src.checks.check_memory``), before anything is
    written."""
    n_transforms = sum(len(data[k]) for k in TRANSFORM_KEYS if k in data)
    data_bytes, text = 0, ""
    if data["source"].startswith("calo"):
        events = int(data.get("events", DEFAULT_EVENTS))
        data_bytes = events * CALO_EVENT_BYTES
        text = f"events={events} (calorimeter events of 15x15 cells)"
    with checks.as_usage(UsageError):
        checks.check_memory(
            n_models, settings, n_transforms=n_transforms, data_bytes=data_bytes, data_text=text
        )


def read_config(folder: Path) -> dict[str, Any] | None:
    """The run folder's ``config.toml`` (``None`` when it has none)."""
    from jrobust._src.runfolder.layout import read_config

    return read_config(folder)


def check_version(config: Mapping[str, Any], folder: Path) -> None:
    made = config.get("jrobust", {}).get("version")
    if made is not None and made != __version__:
        raise UsageError(
            f"the run in {folder} was made by jrobust {made}, this is {__version__}; a checkpoint "
            f"does not carry over between versions: start a new run with "
            f"jrobust run --space {folder / CONFIG_FILE}"
        )


def checkpoint_facts(folder: Path) -> dict[str, Any]:
    """Round and trainings of a folder's checkpoint (empty when there is none or it is unreadable:
    the race itself then reports the problem)."""
    from jrobust._src.race.checkpoint import CHECKPOINT_FILE, CheckpointError, peek

    path = folder / CHECKPOINT_FILE
    if not path.is_file():
        return {}
    try:
        return peek(path)
    except CheckpointError:
        return {}


def _slug(source: str) -> str:
    low = source.lower()
    if low.startswith("npz:") or low.endswith(".npz"):
        low = "npz-" + Path(source[4:] if low.startswith("npz:") else source).stem
    return re.sub(r"[^a-z0-9]+", "-", low).strip("-") or "data"


def new_folder(source: str) -> Path:
    """``runs/<time>-<data>`` (with a suffix when it exists)."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path("runs") / f"{stamp}-{_slug(source)}"
    folder, n = base, 1
    while folder.exists():
        n += 1
        folder = base.with_name(f"{base.name}-{n}")
    return folder
