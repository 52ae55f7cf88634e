"""Search spaces as data: the built-in space of ``jrobust run`` and TOML space files.

A space file describes the models a race starts with, and optionally the race and the data::

    [base]                       # the model every choice modifies
    model = "paper1"             # a zoo model: paper1..paper4, nas1, nas2, cnn, mlp, resnet18
    epochs = 3                   # ... then ModelConfig or architecture fields as overrides
    train_size = 2000

    [choices]                    # lists: the space is their product
    learning_rate = [1e-4, 1e-3, 1e-2]
    l2 = [0.001, 0.01]
    conv = [[16, 32], [32, 64]]  # tuple-valued fields take lists of lists
    # or ranges, which make the space one to search (jrobust run --budget N), not to list:
    # weight_decay = { loguniform = [1e-5, 1e-1] }   # also { uniform = [low, high] }
    # dense = { intrange = [8, 64], log = true }     # every dense layer: one integer width

    [when]                       # optional: apply a choice only where fields have these values
    momentum = { optimizer = "sgd" }

    [race]                       # optional: the race settings (command-line options win)
    statistic = "q3+iqr"
    rule = "halving"

    [data]                       # optional: the data (command-line options win)
    source = "calo-a"
    events = 10000

Several spaces add up with an array of tables ``[[space]]``, each holding ``base``, ``choices``
and ``when`` (ranges need a file of one space). TOML has no null: the string ``"none"`` stands
for Python's ``None`` (e.g. ``early_stopping = "none"``, ``pool = ["none", "global"]``).

The resolved configuration a run folder keeps (``config.toml``) is a file of this format, so
``jrobust run --space runs/NAME/config.toml`` reruns a race.
"""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from jrobust._src import presets
from jrobust._src.config import ModelConfig
from jrobust._src.settings import RaceSettings
from jrobust._src.space.distributions import TABLE_FORMS, Distribution
from jrobust._src.space.fields import (
    CONFIG_FIELDS,
    SHORT_NAMES,
    architecture_fields,
    format_value,
    get_field,
)
from jrobust._src.space.product import SearchSpace
from jrobust._src.specs import did_you_mean

__all__ = [
    "DATA_KEYS",
    "RACE_KEYS",
    "ZOO_MODELS",
    "SpaceError",
    "build_model",
    "build_space",
    "load_space_file",
    "parse_space_text",
    "to_toml",
    "with_overrides",
]

ZOO_MODELS = (
    "paper1",
    "paper2",
    "paper3",
    "paper4",
    "nas1",
    "nas2",
    "cnn",
    "mlp",
    "resnet18",
    "default",
)
RACE_KEYS = RaceSettings.field_names()
DATA_KEYS = ("source", "events", "data_dir", "rotation", "scale", "shift")
_TOP_KEYS = ("base", "choices", "when", "space", "race", "data", "jrobust")


class SpaceError(ValueError):
    """A space file or table that cannot be turned into models; the message names file and line."""


# ------------------------------------------------------------------------------ tables -> models
def _convert(value: Any) -> Any:
    """TOML to Python: lists become tuples (hashable config fields), ``"none"`` becomes None."""
    if isinstance(value, list):
        return tuple(_convert(v) for v in value)
    if isinstance(value, str) and value.lower() == "none":
        return None
    if isinstance(value, dict):
        hint = " (ranges belong in [choices])" if Distribution.is_table(value) else ""
        raise SpaceError(f"a table is not a valid field value: {value!r}{hint}")
    return value


def _zoo_base(name: Any) -> ModelConfig:
    if not isinstance(name, str) or name.lower() not in ZOO_MODELS:
        raise SpaceError(f"unknown model {name!r}; choose one of {', '.join(ZOO_MODELS)}")
    name = name.lower()
    if name.startswith("paper"):
        return presets.paper_config(int(name[5:]))
    if name.startswith("nas"):
        return presets.nas_config(int(name[3:]))
    return {
        "cnn": presets.cnn_config,
        "mlp": presets.mlp_config,
        "resnet18": presets.resnet18_config,
        "default": ModelConfig,
    }[name]()


def _check_field(config: ModelConfig, field: str) -> None:
    if field in CONFIG_FIELDS or field in architecture_fields(config):
        return
    arch = sorted(architecture_fields(config))
    hint = did_you_mean(field, [*CONFIG_FIELDS, *arch])
    raise SpaceError(
        f"unknown field {field!r}{hint}; use a ModelConfig field "
        f"({', '.join(sorted(CONFIG_FIELDS))})"
        + (
            f" or a field of {type(config.architecture).__name__} ({', '.join(arch)})"
            if arch
            else ""
        )
    )


def build_model(base: Mapping[str, Any]) -> ModelConfig:
    """The ``ModelConfig`` of a ``[base]`` table: a zoo model plus field overrides.

    Example:
      >>> build_model({"model": "paper1", "epochs": 3}).epochs
      3
    """
    table = dict(base)
    config = _zoo_base(table.pop("model", "cnn"))
    arch_fields = architecture_fields(config)
    for field in table:
        _check_field(config, field)
    values = {}
    for field, raw in table.items():
        try:
            values[field] = _convert(raw)
        except SpaceError as err:
            raise SpaceError(f"[base] {field}: {err}") from None
    arch = {f: v for f, v in values.items() if f in arch_fields and f not in CONFIG_FIELDS}
    rest = {f: v for f, v in values.items() if f not in arch}
    try:  # architecture fields together: conv and pool must agree only once both are set
        if arch:
            config = dataclasses.replace(
                config, architecture=dataclasses.replace(config.architecture, **arch)
            )
        return dataclasses.replace(config, **rest)
    except (ValueError, TypeError) as err:
        shown = ", ".join(f"{f} = {table[f]!r}" for f in values)
        raise SpaceError(f"bad [base] values ({shown}): {err}") from None


def _condition(field: str, table: Any) -> Callable[[ModelConfig], bool]:
    if not isinstance(table, Mapping) or not table:
        raise SpaceError(
            f"[when] {field} must be a table of field values, "
            f'e.g. {field} = {{ optimizer = "sgd" }}'
        )
    wanted = {k: v for k, v in table.items()}

    def holds(config: ModelConfig) -> bool:
        for f, v in wanted.items():
            have = (
                get_field(config, f) if f in CONFIG_FIELDS | architecture_fields(config) else None
            )
            allowed = [_convert(x) for x in v] if isinstance(v, list) else [_convert(v)]
            if have not in allowed:
                return False
        return True

    return holds


def _one_space(table: Mapping[str, Any]) -> SearchSpace:
    unknown = set(table) - {"base", "choices", "when"}
    if unknown:
        raise SpaceError(
            f"unknown key(s) {sorted(unknown)} in a space table; use base, choices, when"
        )
    base_table = table.get("base", {})
    if not isinstance(base_table, Mapping):
        raise SpaceError('[base] must be a table, e.g. [base] model = "paper1"')
    base = build_model(base_table)
    choices_table = table.get("choices", {})
    if not isinstance(choices_table, Mapping):
        raise SpaceError("[choices] must be a table of lists, e.g. learning_rate = [1e-4, 1e-3]")
    choices: dict[str, Any] = {}
    for field, values in choices_table.items():
        if field == "model":
            raise SpaceError("choices cannot vary the zoo model; use one [[space]] table per model")
        _check_field(base, field)
        if isinstance(values, Mapping | Distribution):
            choices[field] = _range(field, values)
            continue
        if not isinstance(values, list) or not values:
            raise SpaceError(
                f"[choices] {field} must be a non-empty list or a range ({TABLE_FORMS}), "
                f"got {values!r}"
            )
        choices[field] = [_convert(v) for v in values]
    when_table = table.get("when", {})
    if not isinstance(when_table, Mapping):
        raise SpaceError('[when] must be a table, e.g. momentum = { optimizer = "sgd" }')
    missing = set(when_table) - set(choices_table)
    if missing:
        raise SpaceError(f"[when] names fields without choices: {sorted(missing)}")
    when = {field: _condition(field, cond) for field, cond in when_table.items()}
    try:
        return SearchSpace(base, when=when or None, **choices)
    except (ValueError, TypeError) as err:
        raise SpaceError(str(err)) from None


def _range(field: str, table: Mapping[str, Any] | Distribution) -> Distribution:
    """The range of a ``[choices]`` table such as ``{ loguniform = [1e-5, 1.0] }``."""
    if isinstance(table, Distribution):
        return table
    try:
        return Distribution.from_table(table)
    except (ValueError, TypeError) as err:
        raise SpaceError(f"[choices] {field}: {err}") from None


def _has_ranges(table: Mapping[str, Any]) -> bool:
    choices = table.get("choices", {})
    return isinstance(choices, Mapping) and any(_is_range(v) for v in choices.values())


def _is_range(value: Any) -> bool:
    return isinstance(value, Distribution) or Distribution.is_table(value)


def with_overrides(spec: Sequence[Mapping[str, Any]], **overrides: Any) -> list[dict[str, Any]]:
    """Space tables with fields fixed on every model (e.g. ``epochs=2``, ``target="x"``).

    Each override is set in every ``base`` and removes that field's choices (and conditions);
    ``None`` values are ignored. The tables are copied, never changed in place.

    Example:
      >>> with_overrides([{"base": {"model": "paper1"}, "choices": {"epochs": [1, 2]}}], epochs=5)
      [{'base': {'model': 'paper1', 'epochs': 5}, 'choices': {}}]
    """
    overrides = {k: v for k, v in overrides.items() if v is not None}
    out = []
    for table in spec:
        table = {k: dict(v) if isinstance(v, Mapping) else v for k, v in table.items()}
        table.setdefault("base", {})
        for field, value in overrides.items():
            table["base"][field] = list(value) if isinstance(value, tuple) else value
            table.get("choices", {}).pop(field, None)
            table.get("when", {}).pop(field, None)
        out.append(table)
    return out


def build_space(
    spec: Sequence[Mapping[str, Any]] | Mapping[str, Any], **overrides: Any
) -> SearchSpace:
    """The ``SearchSpace`` of space tables (``[{"base": ..., "choices": ..., "when": ...}, ...]``).

    Args:
      spec: one space table or a list of them (they add up).
      **overrides: fields fixed on every model, see :func:`with_overrides`.

    Returns:
      A ``SearchSpace``; models repeated across tables appear once; names read
      ``<zoo model> <field>=<value> ...`` over the fields each table varies. A table with
      ranges gives its space as it is (it has no list of models; see ``SearchSpace.sample``);
      ranges need a single table.

    Example:
      >>> from jrobust.space import default_spec
      >>> space = build_space(default_spec())
      >>> len(space), space.n_cohorts
      (16, 2)
    """
    tables = [spec] if isinstance(spec, Mapping) else list(spec)
    if not tables:
        raise SpaceError("the space is empty: give a [base] table or [[space]] tables")
    tables = with_overrides(tables, **overrides)
    ranged = [j for j, table in enumerate(tables) if _has_ranges(table)]
    if ranged and len(tables) > 1:
        raise SpaceError(_SEVERAL_WITH_RANGES.format(j=ranged[0] + 1, n=len(tables)))
    if ranged:
        return _one_space(tables[0])
    names: dict[ModelConfig, str] = {}
    labels = _labels(tables)
    for j, table in enumerate(tables):
        try:
            space = _one_space(table)
        except SpaceError as err:
            raise SpaceError(f"space {j + 1}: {err}" if len(tables) > 1 else str(err)) from None
        label = labels[j]
        varied = [f for f in space.choices if len({repr(get_field(m, f)) for m in space}) > 1]
        for model in space:
            parts = [f"{SHORT_NAMES.get(f, f)}={format_value(get_field(model, f))}" for f in varied]
            names.setdefault(model, " ".join([label, *parts]))
    return SearchSpace.from_models(list(names), list(names.values()))


_SEVERAL_WITH_RANGES = (
    "space {j} of {n} has ranges, and spaces with ranges do not add up: search one space at a "
    "time (one [base]/[choices]), or make the alternatives a list in [choices]"
)


def _labels(tables: Sequence[Mapping[str, Any]]) -> list[str]:
    """A label per table: its zoo model plus the base fields telling apart tables of one model."""
    models = [str(t.get("base", {}).get("model", "cnn")) for t in tables]
    labels = []
    for j, table in enumerate(tables):
        twins = [t for t, m in zip(tables, models, strict=True) if m == models[j]]
        base = table.get("base", {})
        keys = [
            k
            for k in base
            if k != "model" and len({repr(t.get("base", {}).get(k)) for t in twins}) > 1
        ]
        labels.append(
            " ".join(
                [
                    models[j],
                    *(f"{SHORT_NAMES.get(k, k)}={format_value(_convert(base[k]))}" for k in keys),
                ]
            )
        )
    return labels


# ------------------------------------------------------------------------------ files
def _line_of(text: str, key: str, section: str | None = None, nth: int = 0) -> int | None:
    """The 1-based line where ``key`` is set (inside the ``nth`` ``[section]`` when given), if
    found."""
    lines = text.splitlines()
    start = 0
    if section is not None:
        header = re.compile(rf"^\s*\[\[?\s*{re.escape(section)}\s*\]\]?\s*(#.*)?$")
        starts = [i for i, line in enumerate(lines) if header.match(line)]
        if starts:
            start = starts[min(nth, len(starts) - 1)]
    k = re.escape(key)
    pattern = re.compile(rf"^\s*(\"?{k}\"?)\s*=|[{{,]\s*{k}\s*=|^\s*\[\[?\s*{k}\s*[\].]")
    for i in range(start, len(lines)):
        if pattern.search(lines[i]):
            return i + 1
    return None


def parse_space_text(text: str, source: str = "<space>") -> dict[str, Any]:
    """Parse the text of a space file into ``{"space": [...], "race": {...}, "data": {...}}``.

    The models are built (and so validated) here; errors name ``source`` and the line.
    """
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        line = re.search(r"at line (\d+)", str(err))
        where = f"{source}:{line.group(1)}" if line else source
        raise SpaceError(f"{where}: malformed TOML: {err}") from None

    def fail(
        message: str, key: str | None = None, section: str | None = None, nth: int = 0
    ) -> SpaceError:
        line = _line_of(text, key, section, nth) if key else None
        return SpaceError(f"{source}{f':{line}' if line else ''}: {message}")

    tables = _space_tables(doc, fail)
    race = doc.get("race", {})
    data = doc.get("data", {})
    _check_settings(race, data, fail)
    _check_tables(doc, tables, fail)
    return {"space": tables, "race": dict(race), "data": dict(data)}


def _space_tables(doc: Mapping[str, Any], fail: Callable[..., SpaceError]) -> list[dict]:
    """The file's space tables: its [[space]] tables, or one from [base]/[choices]/[when]."""
    unknown = set(doc) - set(_TOP_KEYS)
    if unknown:
        key = sorted(unknown)[0]
        raise fail(
            f"unknown table or key {key!r}; a space file holds {', '.join(_TOP_KEYS[:-1])}", key
        )
    if "space" in doc and ("base" in doc or "choices" in doc):
        raise fail("use either [base]/[choices] or [[space]] tables, not both", "base")
    if "space" in doc:
        tables = doc["space"]
        if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
            raise fail("space must be an array of tables: [[space]]", "space")
    elif "base" in doc or "choices" in doc:
        tables = [{k: doc[k] for k in ("base", "choices", "when") if k in doc}]
    else:
        tables = []
    return tables


def _check_settings(race: Any, data: Any, fail: Callable[..., SpaceError]) -> None:
    """Refuse a [race] or [data] that is no table, names an unknown setting, or an invalid race."""
    for name, table, allowed in (("race", race, RACE_KEYS), ("data", data, DATA_KEYS)):
        if not isinstance(table, dict):
            raise fail(f"[{name}] must be a table", name)
        for key in table:
            if key not in allowed:
                raise fail(
                    f"[{name}] unknown setting {key!r}; use one of {', '.join(allowed)}", key, name
                )
    try:
        RaceSettings.from_table(race)
    except (ValueError, TypeError) as err:
        key = next((k for k in race if re.search(rf"\b{re.escape(k)}\b", str(err))), None)
        raise fail(f"[race] {err}", key, "race") from None


def _check_tables(
    doc: Mapping[str, Any], tables: list[dict], fail: Callable[..., SpaceError]
) -> None:
    """Refuse a file without models, an empty table, ranges in one of several tables, and a
    table whose models cannot be built."""
    if not tables:
        raise fail(
            "the file defines no models: add a [base] table (a zoo model and its fields) and "
            "[choices], or [[space]] tables; `jrobust space --example` prints a commented one "
            "(to race the built-in space, give no --space)"
        )
    for j, table in enumerate(tables):
        if not table.get("base") and not table.get("choices"):
            raise fail(
                f"space table {j + 1} is empty: give it a base with a zoo model, e.g. "
                '[space.base] model = "paper1", and its choices',
                "space",
            )
    ranged = [j for j, table in enumerate(tables) if _has_ranges(table)]
    if ranged and len(tables) > 1:
        first = next(f for f, v in tables[ranged[0]]["choices"].items() if _is_range(v))
        message = _SEVERAL_WITH_RANGES.format(j=ranged[0] + 1, n=len(tables))
        raise fail(message, first, "space", ranged[0])
    for j, table in enumerate(tables):
        try:
            _one_space(table)
        except SpaceError as err:
            key = _offending_key(str(err), table)
            section = "space" if "space" in doc else _section_of(key, table)
            prefix = f"space {j + 1}: " if len(tables) > 1 else ""
            raise fail(prefix + str(err), key, section) from None


def _offending_key(message: str, table: Mapping[str, Any]) -> str | None:
    keys = [k for part in ("base", "choices", "when") for k in table.get(part, {})] + ["model"]
    message = message.replace("invalid model", "")  # names no key: the base's "model" is not meant
    for key in keys:
        if re.search(rf"(?<![\w.]){re.escape(key)}(?![\w])", message):
            return key
    return None


def _section_of(key: str | None, table: Mapping[str, Any]) -> str | None:
    for part in ("choices", "base", "when"):
        if key in table.get(part, {}):
            return part
    return None


def load_space_file(path: str | Path) -> dict[str, Any]:
    """Read and validate a space file; see :func:`parse_space_text`.

    Raises:
      SpaceError: naming the file and line of the problem.
      FileNotFoundError: when the file does not exist.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"no such space file: {p}")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise SpaceError(f"{p}: cannot read it: {err}") from None
    return parse_space_text(text, str(p))


# ------------------------------------------------------------------------------ writing TOML
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(k: str) -> str:
    return k if _BARE_KEY.match(k) else _string(k)


def _string(s: str) -> str:
    out = s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{out}"'


def _value(v: Any) -> str:
    if v is None:
        return '"none"'
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return _string(v)
    if isinstance(v, Distribution):
        return _value(v.to_table())
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{_key(str(k))} = {_value(x)}" for k, x in v.items()) + " }"
    if hasattr(v, "item"):  # numpy scalars
        return _value(v.item())
    raise TypeError(f"cannot write {type(v).__name__} {v!r} as TOML")


def _table_lines(prefix: str, table: Mapping[str, Any], array: bool = False) -> list[str]:
    # a range stays on its field's line: learning_rate = { loguniform = [1e-05, 1.0] }
    plain = {k: v for k, v in table.items() if _inline(v)}
    nested = {k: v for k, v in table.items() if not _inline(v)}
    lines = [f"[[{prefix}]]" if array else f"[{prefix}]"]
    lines += [f"{_key(str(k))} = {_value(v)}" for k, v in plain.items()]
    for k, v in nested.items():
        lines += [""] + _table_lines(f"{prefix}.{_key(str(k))}", v)
    return lines


def _inline(v: Any) -> bool:
    return not isinstance(v, Mapping) or Distribution.is_table(v)


def to_toml(doc: Mapping[str, Any], header: str | None = None) -> str:
    """Write a document of tables (and arrays of tables) as TOML; ``None`` becomes ``"none"``.

    Top-level plain values come first, then each table; a list of tables becomes ``[[name]]``.
    A range (a ``Distribution`` or its table) is written inline:
    ``learning_rate = { loguniform = [1e-05, 1.0] }``.

    Example:
      >>> print(to_toml({"race": {"rule": "halving", "warmup": 3}}))
      [race]
      rule = "halving"
      warmup = 3
      <BLANKLINE>
    """
    lines: list[str] = [f"# {h}" for h in header.splitlines()] if header else []
    plain = {k: v for k, v in doc.items() if not isinstance(v, Mapping) and not _is_table_array(v)}
    for k, v in plain.items():
        lines.append(f"{_key(str(k))} = {_value(v)}")
    for k, v in doc.items():
        if isinstance(v, Mapping):
            lines += ["", *_table_lines(_key(str(k)), v)]
        elif _is_table_array(v):
            for item in v:
                lines += ["", *_table_lines(_key(str(k)), item, array=True)]
    while lines and lines[0] == "":
        lines.pop(0)
    return "\n".join(lines) + "\n"


def _is_table_array(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, Mapping) for x in v)
