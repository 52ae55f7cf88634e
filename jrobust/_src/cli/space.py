"""``jrobust space``: list the models of a search space, their cohorts and parameter counts; for
a space with ranges, its parameters and its widest shapes."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

from jrobust._src.cli import settings as cli_settings
from jrobust._src.cli.options import (
    DATA_HELP,
    DEBUG,
    DEFAULT_DATA,
    EXIT_OK,
    Help,
    UsageError,
    data_spec,
)

__all__ = ["add_parser", "command"]

EPILOG = """\
examples:
  jrobust space                        the built-in space of 'jrobust run'
  jrobust space --data digits          the built-in space for the digits data
  jrobust space --example > space.toml a complete commented space file to start from
  jrobust space space.toml             its 12 models, 2 cohorts and parameter counts
"""

#: The commented example space file, shipped inside the package (``jrobust space --example``).
EXAMPLE = "_src/space/example.toml"


def example_text() -> str:
    """The commented example space file (``jrobust/_src/space/example.toml``)."""
    from importlib.resources import files

    return files("jrobust").joinpath(EXAMPLE).read_text(encoding="utf-8")


def add_parser(sub) -> argparse.ArgumentParser:
    space = sub.add_parser(
        "space",
        help="list the models of a search space (trains nothing)",
        formatter_class=Help,
        epilog=EPILOG,
        description="Expand a search space and list its models, cohorts and parameter counts. "
        "A space with ranges (e.g. learning_rate = { loguniform = [1e-5, 1.0] }) has no list of "
        "models: its parameters are listed instead, with the static variants a search trains.",
    )
    space.add_argument(
        "file", nargs="?", metavar="FILE.toml", help="space file (default: the built-in space)"
    )
    space.add_argument(
        "--data", type=data_spec, metavar="SPEC", help=f"data set: {DATA_HELP} (default: calo-a)"
    )
    space.add_argument("--target", metavar="NAME", help="target column")
    space.add_argument(
        "--example",
        action="store_true",
        help="print a complete commented space file and exit (save it, edit it, race it)",
    )
    space.add_argument("--json", action="store_true", help="print JSON records")
    space.add_argument("--debug", **DEBUG)
    space.set_defaults(func=command)
    return space


def command(args: argparse.Namespace, argv: Sequence[str]) -> int:
    if args.example:
        if args.file or args.data or args.target or args.json:
            raise UsageError("--example prints the example space file; give it alone")
        print(example_text(), end="")
        return EXIT_OK
    import pandas as pd

    from jrobust._src.config import count_params
    from jrobust._src.space.files import SpaceError, build_space, load_space_file

    tables, file_data = None, {}
    if args.file:
        try:
            parsed = load_space_file(args.file)
        except (SpaceError, FileNotFoundError) as err:
            raise UsageError(str(err)) from None
        tables, file_data = parsed["space"], parsed["data"]
    source = args.data or file_data.get("source") or DEFAULT_DATA
    data = cli_settings.data_settings(
        argparse.Namespace(data=source, events=None, data_dir=file_data.get("data_dir")), {}
    )
    facts, _ = cli_settings.data_facts(data)
    tables = cli_settings.space_tables(tables, facts, args.target)
    target = args.target if args.file or not data["source"].startswith("calo") else None
    try:
        space = build_space(tables, target=target)
    except SpaceError as err:
        raise UsageError(f"space: {err}") from None
    if not space.is_finite:
        return _ranges(space, args, tuple(facts.input_shape))
    frame = space.to_frame()
    counts: dict[tuple, int | None] = {}
    params = []
    for config in space:
        key = config.static_key()
        if key not in counts:
            try:
                counts[key] = count_params(config, tuple(facts.input_shape))
            except (ValueError, TypeError):  # a model that does not fit this shape
                counts[key] = None
        params.append(counts[key])
    frame["params"] = pd.array(params, dtype="Int64")
    if args.json:
        print(frame.to_json(orient="records", indent=2))
    else:
        shape = "x".join(map(str, facts.input_shape))
        print(f"{len(space)} models in {space.n_cohorts} cohorts (parameters for inputs {shape})")
        print(frame.to_string(index=False))
    return EXIT_OK


ROLE_HELP = {
    "scalar": "no recompilation",
    "width": "lanes of the widest shape",
    "static": "a program per value",
}


def _ranges(space, args: argparse.Namespace, input_shape: tuple[int, ...]) -> int:
    """Print a space with ranges: its parameters, their roles and the envelope's sizes."""
    import pandas as pd

    from jrobust._src.config import count_params
    from jrobust._src.space.distributions import Distribution
    from jrobust._src.space.fields import format_value

    try:
        variants = space.envelope()
    except ValueError as err:
        raise UsageError(f"space: {err}") from None
    params = []
    for config in variants:
        try:
            params.append(count_params(config, input_shape))
        except (ValueError, TypeError):  # a variant that does not fit this shape
            params.append(None)
    rows = []
    for name, param in space.parameters.items():
        row: dict = {"parameter": name, "role": space.role(name)}
        if isinstance(param, Distribution):
            row |= {"range": repr(param), "low": param.low, "high": param.high}
            row |= {"log": param.log, "integer": param.integer}
        else:
            row |= {"range": "categorical", "choices": list(param.choices)}
        rows.append(row)
    if args.json:
        record = {"finite": False, "parameters": rows, "envelope": [{"params": p} for p in params]}
        print(json.dumps(record, indent=2, default=format_value))
        return EXIT_OK
    print(
        f"a space with ranges: {len(rows)} parameters, no list of models; a search samples it "
        f"(jrobust run --space {args.file} --budget N)"
    )
    frame = pd.DataFrame(
        {
            "parameter": [r["parameter"] for r in rows],
            "values": [
                r["range"] if "choices" not in r else ", ".join(map(format_value, r["choices"]))
                for r in rows
            ],
            "role": [f"{r['role']} ({ROLE_HELP[r['role']]})" for r in rows],
        }
    )
    print(frame.to_string(index=False))
    known = [p for p in params if p is not None]
    shape = "x".join(map(str, input_shape))
    print(
        f"widest shapes: {len(variants)} static variant{'s' if len(variants) != 1 else ''}"
        + (f", at most {max(known):,} parameters (inputs {shape})" if known else "")
    )
    return EXIT_OK
