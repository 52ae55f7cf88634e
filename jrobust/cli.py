"""The ``jrobust`` command: run a robust model selection, rebuild its report, benchmark the trainer.

``jrobust run`` races the models of a search space (Boldyrev, Ratnikov, Shevelev, IEEE Access 2025:
train instances of every model, eliminate models whose instance losses are poor or spread
widely) and saves a run folder (``jrobust.results``); ``jrobust report`` rebuilds a folder's
summary and figures; ``jrobust bench`` measures instance-steps per second; ``jrobust space`` lists
the models of a space without training anything.

Bad input (an unknown option value, a malformed space file, an output folder that holds another
run, a missing data folder) gives one line on stderr and exit status 2, checked before anything
is trained; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["main", "build_parser", "UsageError", "DEFAULT_RACE", "DEFAULT_EVENTS"]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
DEFAULT_RACE: dict[str, Any] = {
    "statistic": "q3+iqr",
    "rule": "halving",
    "warmup": 3,
    "max_instances": 10,
    "seed": 0,
    "n_winners": 1,
    "instances_per_round": "auto",
}
DEFAULT_DATA = "calo-a"
DEFAULT_EVENTS = 10_000
_DATA_HELP = "calo-a | calo-b | digits | tfds:NAME | npz:PATH"
_EXECUTION_KEYS = ("max_bucket",)  # race settings that change how, not what, is computed


class UsageError(Exception):
    """Bad input: reported as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line instead of usage + message
        raise UsageError(f"{message} (see: {self.prog} --help)")


class _Help(argparse.HelpFormatter):
    """Wraps one-paragraph texts; keeps texts with line breaks (the examples) as written."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=30, width=100)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


# ------------------------------------------------------------------------------ option types
def _checked(convert, ok, what: str):
    """An argparse type: ``convert(text)`` that must satisfy ``ok``, else says it expected ``what``."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not ok(value):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


_positive_int = _checked(int, lambda v: v >= 1, "a positive integer")
_nonnegative_int = _checked(int, lambda v: v >= 0, "an integer >= 0")
_fraction = _checked(float, lambda v: 0.0 < v < 1.0, "a number in (0, 1)")


def _statistic(text: str) -> str:
    from jrobust.stats import get_statistic

    try:
        return get_statistic(text.strip()).name
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _rule(text: str) -> str:
    try:
        _make_rule(text, None, None)
    except (ValueError, TypeError) as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text.strip()


def _ipr(text: str) -> int | str:
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer or 'auto', got {text!r}"
        ) from None


_DATA_RE = re.compile(r"^(calo-a|calo-b|digits|tfds:.+|npz:.+|.+\.npz)$", re.IGNORECASE)


def _data_spec(text: str) -> str:
    text = text.strip()
    if not _DATA_RE.match(text):
        raise argparse.ArgumentTypeError(f"unknown data set {text!r}; use {_DATA_HELP}")
    low = text.lower()
    return low if low in ("calo-a", "calo-b", "digits") else text


def _stacks(text: str) -> list[int]:
    try:
        values = [int(v) for v in re.split(r"[,\s]+", text.strip()) if v]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected stack sizes like 1,8,64, got {text!r}"
        ) from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive stack sizes like 1,8,64, got {text!r}")
    return values


def _make_rule(spec: str, alpha: float | None, patience: int | None):
    """A ``Rule`` from ``name`` or ``name:value`` (``quantile:0.25`` keeps a quarter,
    ``threshold:0.03`` keeps statistics <= 0.03); ``alpha``/``patience`` for the test rules."""
    from jrobust.rules import RULES, TESTS, get_rule

    name, _, value = spec.strip().partition(":")
    name = name.strip().lower()
    if name not in RULES:
        raise ValueError(
            f"unknown rule {spec!r}; use one of {', '.join(RULES)} (quantile:KEEP, threshold:VALUE)"
        )
    kwargs: dict[str, Any] = {}
    if value:
        if name not in ("quantile", "threshold"):
            raise ValueError(
                f"rule {name!r} takes no value ({spec!r}); "
                "only quantile:KEEP and threshold:VALUE do"
            )
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"rule {spec!r}: {value!r} is not a number") from None
        kwargs["keep" if name == "quantile" else "value"] = number
    elif name == "threshold":
        raise ValueError("rule 'threshold' needs its value: threshold:VALUE, e.g. threshold:0.03")
    if alpha is not None or patience is not None:
        if name not in TESTS:
            raise ValueError(
                f"--alpha and --patience apply to the test rules ({', '.join(TESTS)}), "
                f"not to {name!r}"
            )
        if alpha is not None:
            kwargs["alpha"] = alpha
        if patience is not None:
            kwargs["patience"] = patience
    return get_rule(name, **kwargs)


# ------------------------------------------------------------------------------ the parser
_MAIN_EPILOG = """\
examples:
  jrobust run                                  the main job: a robust selection on the synthetic
                                               calorimeter with the built-in space (a few minutes)
  jrobust run --space examples/space.toml --data calo-b --out runs/mine
  jrobust run --resume runs/mine               continue a killed run where it stopped
  jrobust report runs/mine                     rebuild summary.md, report.html and the figures
  jrobust space examples/space.toml            list the models of a space, train nothing
  jrobust bench                                instance-steps/s of paper model 1 vs stack size

Every command takes --help. Bad input gives one line and exit status 2 (--debug: traceback).
"""

_RUN_EPILOG = """\
examples:
  jrobust run
      16 models around the paper's energy models 1 and 2 on 10,000 synthetic calorimeter
      events (data set A), halving on Q3+IQR after 3 warm-up instances, at most 10 instances
  jrobust run --data calo-b --statistic std --rank-by mean --rule welch --alpha 0.05
  jrobust run --space examples/space.toml --seed 1 --out runs/seed1 --csv
  jrobust run --data digits --max-instances 20
  jrobust run --data npz:mydata.npz --target energy --epochs 10
  jrobust run --resume runs/seed1              continue a killed run (same result as uninterrupted)
  jrobust run --space runs/seed1/config.toml   rerun a run from its resolved configuration

run folder (runs/<time>-<data> unless --out): config.toml, checkpoint.pkl, result.json,
ledger/history/path/models.parquet, summary.md, report.html, path.png, distributions.png.
A checkpoint is written after every round. Running again with the same --out and the same
settings continues that run; an --out folder holding a different run is an error.
Options given on the command line override the [race] and [data] tables of --space.
"""

_REPORT_EPILOG = """\
examples:
  jrobust report runs/20250101-120000-calo-a
  jrobust report runs/mine --csv       also write ledger.csv, history.csv, path.csv, models.csv
A killed run is reported from its last checkpoint.
"""

_BENCH_EPILOG = """\
examples:
  jrobust bench                        stacks of 1, 8, 64 instances, 50 steps each
  jrobust bench --stacks 1,16,128,512 --steps 200 --csv bench.csv
Compilation is excluded from the timings (each stack size is run once before it is timed).
"""

_SPACE_EPILOG = """\
examples:
  jrobust space                        the built-in space of 'jrobust run'
  jrobust space examples/space.toml
  jrobust space --data digits          the built-in space for the digits data
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``jrobust`` argument parser (subcommands ``run``, ``report``, ``bench``, ``space``)."""
    from jrobust import __version__

    parser = _Parser(
        prog="jrobust",
        formatter_class=_Help,
        epilog=_MAIN_EPILOG,
        description="Robust model selection on JAX: train many instances of every candidate model "
        "as one "
        "compiled computation, and race the models until the robust winner is left.",
    )
    parser.add_argument("--version", action="version", version=f"jrobust {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show tracebacks instead of one-line errors"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    debug = dict(
        action="store_true",
        default=argparse.SUPPRESS,
        help="show tracebacks instead of one-line errors",
    )

    run = sub.add_parser(
        "run",
        help="race the models of a search space (the main job)",
        formatter_class=_Help,
        description="Race the models of a search space on a data set and save a run folder.",
        epilog=_RUN_EPILOG,
    )
    g = run.add_argument_group("what to race")
    g.add_argument(
        "--space",
        metavar="FILE.toml",
        help="search space file (default: the built-in space; see examples/space.toml)",
    )
    g.add_argument(
        "--data", type=_data_spec, metavar="SPEC", help=f"data set: {_DATA_HELP} (default: calo-a)"
    )
    g.add_argument(
        "--events",
        type=_positive_int,
        metavar="N",
        help=f"calorimeter events to generate (default: {DEFAULT_EVENTS})",
    )
    g.add_argument(
        "--data-dir", metavar="DIR", help="folder of prepared TFDS data sets (tfds:NAME)"
    )
    g.add_argument(
        "--target",
        metavar="NAME",
        help="target column, e.g. energy, x, y (the built-in space "
        "uses the paper's position models 3 and 4 for x and y)",
    )
    g.add_argument(
        "--epochs", type=_positive_int, metavar="N", help="set the epochs of every model"
    )
    g.add_argument(
        "--train-size",
        type=_positive_int,
        metavar="N",
        help="set the training-sample size of every model",
    )
    g = run.add_argument_group("the race")
    g.add_argument(
        "--statistic",
        type=_statistic,
        metavar="NAME",
        help="eliminates: mean, median, std, min, max, q1, q3, q3+iqr, iqr, pd, q<P> "
        "(default: q3+iqr)",
    )
    g.add_argument(
        "--rank-by",
        type=_statistic,
        metavar="NAME",
        help="ranks the survivors (default: --statistic)",
    )
    g.add_argument(
        "--rule",
        type=_rule,
        metavar="NAME",
        help="halving, quantile[:KEEP], threshold:VALUE, welch, mannwhitney, ks, bartlett, levene, "
        "fligner (default: halving)",
    )
    g.add_argument(
        "--warmup",
        type=_positive_int,
        metavar="K",
        help="instances per model before eliminating (default: 3)",
    )
    g.add_argument(
        "--alpha",
        type=_fraction,
        metavar="A",
        help="significance level of a test rule (default: 0.05)",
    )
    g.add_argument(
        "--patience",
        type=_positive_int,
        metavar="P",
        help="test rules: stop after P rounds that eliminate nothing",
    )
    g.add_argument(
        "--max-instances",
        type=_positive_int,
        metavar="N",
        help="instances per model at most (default: 10)",
    )
    g.add_argument(
        "--instances-per-round",
        type=_ipr,
        metavar="N|auto",
        help="new instances per survivor per round (default: auto, keeps the stacks full)",
    )
    g.add_argument("--budget", type=_positive_int, metavar="N", help="trainings in all at most")
    g.add_argument(
        "--winners",
        type=_positive_int,
        metavar="N",
        help="stop when N models are left (default: 1)",
    )
    g.add_argument("--seed", type=_nonnegative_int, metavar="S", help="root seed (default: 0)")
    g = run.add_argument_group("where and how")
    g.add_argument("--out", metavar="DIR", help="run folder (default: runs/<time>-<data>)")
    g.add_argument(
        "--resume", metavar="DIR", help="continue the run in DIR with its own configuration"
    )
    g.add_argument(
        "--devices",
        type=_positive_int,
        metavar="N",
        help="shard over the first N devices (default: all)",
    )
    g.add_argument(
        "--max-bucket",
        type=_positive_int,
        metavar="N",
        help="at most N instances per compiled call",
    )
    g.add_argument("--csv", action="store_true", help="also write the tables as CSV")
    out = g.add_mutually_exclusive_group()
    out.add_argument("-q", "--quiet", action="store_true", help="print the final line only")
    out.add_argument("--json", action="store_true", help="print a JSON summary only")
    out.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="one line per round and the winners table, also when output is not a terminal",
    )
    g.add_argument("--debug", **debug)
    try:
        from jrobust import distributed

        distributed.add_cli_arguments(run)
    except (ImportError, AttributeError):
        pass
    run.set_defaults(func=_cmd_run)

    report = sub.add_parser(
        "report",
        help="rebuild the summary, report and figures of a run folder",
        formatter_class=_Help,
        epilog=_REPORT_EPILOG,
        description="Rebuild summary.md, report.html and the PNG figures of a run folder.",
    )
    report.add_argument("folder", metavar="DIR", help="the run folder")
    report.add_argument("--csv", action="store_true", help="also write the tables as CSV")
    report.add_argument(
        "-q", "--quiet", action="store_true", help="print nothing but the report's path"
    )
    report.add_argument("--json", action="store_true", help="print a JSON summary")
    report.add_argument("--debug", **debug)
    report.set_defaults(func=_cmd_report)

    bench = sub.add_parser(
        "bench",
        help="instance-steps/s of paper model 1 against the stack size",
        formatter_class=_Help,
        epilog=_BENCH_EPILOG,
        description="Throughput of the vectorised trainer: the paper's energy model 1 "
        "(15x15 inputs, NAdam) on random data, one compiled call per stack.",
    )
    bench.add_argument(
        "--stacks",
        type=_stacks,
        default=[1, 8, 64],
        metavar="N,N,...",
        help="stack sizes (default: 1,8,64)",
    )
    bench.add_argument(
        "--steps",
        type=_positive_int,
        default=50,
        metavar="N",
        help="steps per instance (default: 50)",
    )
    bench.add_argument(
        "--batch-size", type=_positive_int, default=64, metavar="B", help="batch size (default: 64)"
    )
    bench.add_argument(
        "--repeats",
        type=_positive_int,
        default=1,
        metavar="R",
        help="timed calls per stack size, the fastest counts (default: 1)",
    )
    bench.add_argument(
        "--model", type=int, choices=(1, 2, 3, 4), default=1, help="paper model (default: 1)"
    )
    bench.add_argument(
        "--conv-impl",
        choices=("auto", "im2col", "xla"),
        default="auto",
        help="convolution implementation (default: the backend's choice)",
    )
    bench.add_argument("--csv", metavar="FILE", help="also write the table to FILE")
    bench.add_argument("--json", action="store_true", help="print JSON records")
    bench.add_argument("--debug", **debug)
    bench.set_defaults(func=_cmd_bench)

    space = sub.add_parser(
        "space",
        help="list the models of a search space (trains nothing)",
        formatter_class=_Help,
        epilog=_SPACE_EPILOG,
        description="Expand a search space and list its models, cohorts and parameter counts.",
    )
    space.add_argument(
        "file", nargs="?", metavar="FILE.toml", help="space file (default: the built-in space)"
    )
    space.add_argument(
        "--data", type=_data_spec, metavar="SPEC", help=f"data set: {_DATA_HELP} (default: calo-a)"
    )
    space.add_argument("--target", metavar="NAME", help="target column")
    space.add_argument("--json", action="store_true", help="print JSON records")
    space.add_argument("--debug", **debug)
    space.set_defaults(func=_cmd_space)
    return parser


# ------------------------------------------------------------------------------ output
class _Output:
    """Where messages go: rich on a terminal, plain lines, the final line only, or JSON only."""

    def __init__(self, args: argparse.Namespace, main_process: bool = True) -> None:
        from rich.console import Console

        self.console = Console(file=sys.stdout, highlight=False)
        self.main = main_process
        if not main_process:
            self.mode = "silent"
        elif getattr(args, "json", False):
            self.mode = "json"
        elif getattr(args, "quiet", False):
            self.mode = "quiet"
        elif self.console.is_terminal:
            self.mode = "rich"
        elif getattr(args, "verbose", False):
            self.mode = "plain"
        else:
            self.mode = "quiet"

    @property
    def chatty(self) -> bool:
        return self.mode in ("rich", "plain")

    def info(self, text: str) -> None:
        if self.mode == "rich":
            self.console.print(text)
        elif self.mode == "plain":
            print(_strip_markup(text), flush=True)

    def final(self, text: str) -> None:
        if self.mode == "rich":
            self.console.print(text, markup=False)
        elif self.mode in ("plain", "quiet"):
            print(text, flush=True)

    def json(self, payload: Any) -> None:
        if self.mode == "json":
            print(json.dumps(payload, indent=2, default=str), flush=True)


def _strip_markup(text: str) -> str:
    return re.sub(r"\[/?[a-z #0-9_.]*\]", "", text)


def _duration(seconds: float) -> str:
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.0f}s" if seconds >= 10 else f"{seconds:.1f}s"
    m, s = divmod(int(round(seconds)), 60)
    return f"{m}m{s:02d}s" if m < 60 else f"{m // 60}h{m % 60:02d}m"


# ------------------------------------------------------------------------------ progress
def _forecast(alive: int, count: int, n_models: int, race: dict[str, Any]) -> tuple[int, bool]:
    """Trainings still to come (and whether that is exact for the rule or an upper bound)."""
    warmup, cap = int(race["warmup"]), int(race["max_instances"])
    ipr, n_winners = race.get("instances_per_round", "auto"), int(race.get("n_winners", 1))
    rule = str(race.get("rule", "halving"))
    name, _, value = rule.partition(":")
    exact = name in ("halving", "quantile")
    total = 0
    while alive > n_winners:
        per = warmup if count == 0 else (max(1, n_models // alive) if ipr == "auto" else int(ipr))
        new = min(count + per, cap)
        if new <= count:
            break
        total += alive * (new - count)
        count = new
        if count > warmup:
            if name == "halving":
                alive = -(-alive // 2)
            elif name == "quantile":
                alive = max(1, math.ceil(alive * float(value or 0.5)))
    return total, exact


class _Progress:
    """The race's progress callback: a live rich bar, plain lines, or nothing."""

    def __init__(
        self,
        out: _Output,
        n_models: int,
        race: dict[str, Any],
        start_round: int = 0,
        start_trainings: int = 0,
    ) -> None:
        self.out = out
        self.n_models = n_models
        self.race = race
        self.train_seconds = 0.0
        self.trained = 0
        self.steps = 0
        self.t0 = time.perf_counter()
        self.progress = None
        self.task = None
        remaining, self.exact = _forecast(n_models, 0, n_models, race)
        self.total = min(remaining, int(race["budget"])) if race.get("budget") else remaining
        self.start_round = start_round
        self.start_trainings = start_trainings

    def __enter__(self) -> _Progress:
        if self.out.mode == "rich":
            from rich.progress import (
                BarColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            self.progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(bar_width=24),
                TextColumn("{task.completed}/{task.total} instances"),
                TextColumn("{task.fields[rate]}"),
                TextColumn("elapsed"),
                TimeElapsedColumn(),
                TextColumn("{task.fields[eta]}"),
                console=self.out.console,
                transient=True,
            )
            self.progress.__enter__()
            first = "resuming" if self.start_round else "round 1 (warm-up): compiling and training"
            total = None if self.start_round else self.total  # unknown until a round is done
            self.task = self.progress.add_task(first, total=total, completed=0, rate="", eta="")
        return self

    def __exit__(self, *exc) -> None:
        if self.progress is not None:
            self.progress.__exit__(*exc)

    def __call__(self, info: dict[str, Any]) -> None:
        self.train_seconds += float(info["seconds"])
        self.trained += int(info["trained"])
        self.steps += int(info.get("instance_steps", 0))
        rate = self.steps / self.train_seconds if self.train_seconds > 0 else 0.0
        remaining, exact = (
            (0, True)
            if info["done"]
            else _forecast(
                int(info["survivors"]), int(info["instances_per_model"]), self.n_models, self.race
            )
        )
        if self.race.get("budget"):
            remaining = max(0, min(remaining, int(self.race["budget"]) - int(info["n_trainings"])))
        per_training = self.train_seconds / max(self.trained, 1)
        eta = remaining * per_training
        eta_text = "" if info["done"] else f"ETA {'~' if exact else '<'}{_duration(eta)}"
        line = (
            f"round {info['round']}: {info['survivors'] + info['eliminated']} -> "
            f"{info['survivors']} models, "
            f"trained {info['trained']} instances in {_duration(info['seconds'])}"
            + (
                f" (+{_duration(info['compile_seconds'])} compiling)"
                if info["compile_seconds"] > 0.05
                else ""
            )
            + f", {info['n_trainings']} in all, {rate:.0f} instance-steps/s"
        )
        if self.progress is not None:
            self.progress.console.print(line, markup=False, highlight=False)
            done = int(info["n_trainings"]) - self.start_trainings
            self.progress.update(
                self.task,
                completed=done,
                total=done + remaining,
                rate=f"{rate:.0f} inst-steps/s",
                eta=eta_text,
                description=f"round {info['round'] + 1}: "
                f"{info['survivors']}/{self.n_models} models racing",
            )
        elif self.out.mode == "plain":
            print(line + (f", {eta_text}" if eta_text else ""), flush=True)


# ------------------------------------------------------------------------------ run: configuration
_DEFINING = (
    "space",
    "data",
    "events",
    "data_dir",
    "target",
    "epochs",
    "train_size",
    "statistic",
    "rank_by",
    "rule",
    "warmup",
    "alpha",
    "patience",
    "max_instances",
    "instances_per_round",
    "budget",
    "winners",
    "seed",
)


def _race_settings(args: argparse.Namespace, file_race: dict[str, Any]) -> dict[str, Any]:
    """Command line over the space file's [race] over the defaults; validated, no training."""
    cli = {
        "statistic": args.statistic,
        "rank_by": args.rank_by,
        "rule": args.rule,
        "warmup": args.warmup,
        "alpha": args.alpha,
        "patience": args.patience,
        "max_instances": args.max_instances,
        "instances_per_round": args.instances_per_round,
        "budget": args.budget,
        "n_winners": args.winners,
        "seed": args.seed,
        "max_bucket": args.max_bucket,
    }
    race = {
        **DEFAULT_RACE,
        **{k: v for k, v in file_race.items() if v != "none"},
        **{k: v for k, v in cli.items() if v is not None},
    }
    return _validate_race(race)


def _validate_race(race: dict[str, Any]) -> dict[str, Any]:
    from jrobust.stats import get_statistic

    race = {k: v for k, v in race.items() if v is not None and v != "none"}
    for key in ("statistic", "rank_by"):
        if key in race:
            try:
                race[key] = get_statistic(str(race[key])).name
            except ValueError as err:
                raise UsageError(f"{key}: {err}") from None
    for key in ("warmup", "max_instances", "budget", "n_winners", "patience", "max_bucket"):
        if key in race and (
            isinstance(race[key], bool) or not isinstance(race[key], int) or race[key] < 1
        ):
            raise UsageError(f"{key} must be a positive integer, got {race[key]!r}")
    if "seed" in race and (
        isinstance(race["seed"], bool) or not isinstance(race["seed"], int) or race["seed"] < 0
    ):
        raise UsageError(f"seed must be an integer >= 0, got {race['seed']!r}")
    ipr = race.get("instances_per_round", "auto")
    if ipr != "auto" and (isinstance(ipr, bool) or not isinstance(ipr, int) or ipr < 1):
        raise UsageError(f"instances_per_round must be a positive integer or 'auto', got {ipr!r}")
    if "alpha" in race and not (isinstance(race["alpha"], int | float) and 0 < race["alpha"] < 1):
        raise UsageError(f"alpha must be a number in (0, 1), got {race['alpha']!r}")
    try:
        rule = _make_rule(str(race["rule"]), race.get("alpha"), race.get("patience"))
    except (ValueError, TypeError) as err:
        raise UsageError(str(err)) from None
    if race["warmup"] < rule.min_warmup:
        raise UsageError(
            f"warmup {race['warmup']} is too small for rule {rule.name!r}: it needs at least "
            f"{rule.min_warmup} instances per model"
        )
    if race["max_instances"] < race["warmup"]:
        raise UsageError(
            f"max_instances {race['max_instances']} is smaller than warmup {race['warmup']}"
        )
    return race


def _data_settings(args: argparse.Namespace, file_data: dict[str, Any]) -> dict[str, Any]:
    source = args.data or file_data.get("source") or DEFAULT_DATA
    try:
        source = _data_spec(str(source))
    except argparse.ArgumentTypeError as err:
        raise UsageError(f"data: {err}") from None
    data: dict[str, Any] = {"source": source}
    events = args.events if args.events is not None else file_data.get("events")
    data_dir = args.data_dir if args.data_dir is not None else file_data.get("data_dir")
    if source.startswith("calo"):
        data["events"] = int(events) if events is not None else DEFAULT_EVENTS
        if isinstance(data["events"], bool) or data["events"] < 100:
            raise UsageError(f"events must be at least 100, got {events!r}")
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
    return data


def _load_population(data: dict[str, Any]):
    from jrobust.data import load

    kwargs: dict[str, Any] = {}
    if "events" in data:
        kwargs["n_events"] = int(data["events"])
    if "data_dir" in data:
        kwargs["data_dir"] = data["data_dir"]
    try:
        return load(data["source"], **kwargs)
    except (FileNotFoundError, ValueError, KeyError, TypeError, ImportError, OSError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        raise UsageError(
            f"cannot load data {data['source']!r}: {message.splitlines()[0]}"
        ) from None


def _describe(pop) -> str:
    kind = (
        f"{pop.num_classes} classes"
        if pop.is_classification
        else f"targets {', '.join(pop.target_names)}"
    )
    shape = "x".join(str(s) for s in pop.input_shape)
    return (
        f"{pop.name}: {pop.n_events} events, inputs {shape}, {kind}, "
        f"pool {pop.pool_size}, test {len(pop.test_index)}"
    )


def _space_tables(file_tables, pop, target: str | None) -> list[dict[str, Any]]:
    from jrobust.spaces import default_spec

    if file_tables:
        return file_tables
    return default_spec(
        classification=pop.is_classification,
        input_shape=pop.input_shape,
        num_classes=pop.num_classes,
        target=target,
        calorimeter=pop.name.lower().startswith("calo"),
        pool_size=pop.pool_size,
    )


def _build_space(tables, pop, overrides: dict[str, Any]):
    from jrobust.spaces import SpaceError, build_space, with_overrides
    from jrobust.train import check_compatible

    tables = with_overrides(tables, **overrides)
    try:
        space = build_space(tables)
    except SpaceError as err:
        raise UsageError(f"space: {err}") from None
    seen: set = set()
    names = space.names()
    for i, config in enumerate(space):
        key = config.static_key()
        if key in seen:
            continue
        seen.add(key)
        try:
            check_compatible(config, pop)
        except (ValueError, TypeError) as err:
            raise UsageError(f"model {i} ({names[i]}) does not fit the data: {err}") from None
    return space, tables


def _differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    keys = sorted(set(old) | set(new))
    out = []
    for k in keys:
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append(f"{prefix}{k}")
    return out


def _comparable(config: dict[str, Any]) -> dict[str, Any]:
    import tomllib

    from jrobust.spaces import to_toml

    doc = tomllib.loads(to_toml(config))
    for key in _EXECUTION_KEYS:
        doc.get("race", {}).pop(key, None)
    return doc


def _slug(source: str) -> str:
    low = source.lower()
    if low.startswith("npz:") or low.endswith(".npz"):
        low = "npz-" + Path(source[4:] if low.startswith("npz:") else source).stem
    return re.sub(r"[^a-z0-9]+", "-", low).strip("-") or "data"


def _new_folder(source: str) -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path("runs") / f"{stamp}-{_slug(source)}"
    folder, n = base, 1
    while folder.exists():
        n += 1
        folder = base.with_name(f"{base.name}-{n}")
    return folder


def _check_folder(folder: Path, config: dict[str, Any], parts: Sequence[str] | None = None) -> bool:
    """Whether ``folder`` already holds this run (to be continued); errors if it holds another.

    ``parts``: compare only these tables of the configuration (an early check, before the data
    is loaded and the space resolved).
    """
    from jrobust.results import is_run_folder, read_config

    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--out {folder} is a file, not a folder")
    if not folder.exists() or not any(folder.iterdir()):
        return False
    if not is_run_folder(folder):
        raise UsageError(
            f"--out {folder} exists and holds something else than a jrobust run; "
            "choose a new folder"
        )
    try:
        old = read_config(folder)
    except ValueError as err:
        raise UsageError(str(err)) from None
    if old is None:
        raise UsageError(
            f"--out {folder} holds a jrobust run without its config.toml; choose a new folder"
        )
    old, new = _comparable(old), _comparable(config)
    if parts is not None:
        old = {k: v for k, v in old.items() if k in parts}
        new = {k: v for k, v in new.items() if k in parts}
    diff = _differences(old, new)
    if diff:
        shown = ", ".join(diff[:6]) + (", ..." if len(diff) > 6 else "")
        raise UsageError(
            f"--out {folder} holds a different run (it differs in {shown}); choose another --out, "
            f"or continue that run with: jrobust run --resume {folder}"
        )
    return True


def _resolved(
    data: dict[str, Any], race: dict[str, Any], tables: list[dict[str, Any]]
) -> dict[str, Any]:
    from jrobust import __version__

    race_out = {
        k: race[k]
        for k in (
            "statistic",
            "rank_by",
            "rule",
            "warmup",
            "alpha",
            "patience",
            "max_instances",
            "instances_per_round",
            "budget",
            "n_winners",
            "seed",
        )
        if k in race
    }
    return {
        "jrobust": {"version": __version__},
        "data": dict(data),
        "race": race_out,
        "space": tables,
    }


def _race_kwargs(race: dict[str, Any]) -> dict[str, Any]:
    from jrobust.rules import TESTS

    name = str(race["rule"]).partition(":")[0].lower()
    kwargs: dict[str, Any] = dict(
        statistic=race["statistic"],
        rank_by=race.get("rank_by"),
        warmup=race["warmup"],
        seed=race["seed"],
        max_instances=race["max_instances"],
        budget=race.get("budget"),
        n_winners=race.get("n_winners", 1),
        instances_per_round=race.get("instances_per_round", "auto"),
        max_bucket=race.get("max_bucket"),
    )
    if name in TESTS:
        kwargs.update(rule=name, alpha=race.get("alpha"), patience=race.get("patience"))
    else:
        kwargs["rule"] = _make_rule(str(race["rule"]), None, None)
    return kwargs


# ------------------------------------------------------------------------------ run
def _cmd_run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from jrobust.results import CONFIG_FILE, read_config
    from jrobust.spaces import SpaceError, load_space_file

    # 1. everything that needs no data: options, the space file, the race settings
    if args.resume:
        given = [
            f"--{k.replace('_', '-')}" for k in _DEFINING if getattr(args, k, None) is not None
        ]
        if given:
            raise UsageError(
                f"--resume takes every setting from {args.resume}/{CONFIG_FILE}; "
                f"drop {', '.join(given)}"
            )
        if args.out and Path(args.out).resolve() != Path(args.resume).resolve():
            raise UsageError("--resume DIR continues the run in DIR; drop --out")
        folder = Path(args.resume)
        if not folder.is_dir():
            raise UsageError(f"--resume {folder}: no such folder")
        try:
            saved = read_config(folder)
        except ValueError as err:
            raise UsageError(str(err)) from None
        if saved is None:
            raise UsageError(
                f"--resume {folder}: no {CONFIG_FILE} there, so no jrobust run to continue"
            )
        _check_version(saved, folder)
        try:
            from jrobust.spaces import parse_space_text

            parsed = parse_space_text(
                (folder / CONFIG_FILE).read_text(encoding="utf-8"), str(folder / CONFIG_FILE)
            )
        except SpaceError as err:
            raise UsageError(str(err)) from None
        file_tables, file_race, file_data = parsed["space"], parsed["race"], parsed["data"]
    else:
        folder = Path(args.out) if args.out else None
        file_tables, file_race, file_data = None, {}, {}
        if args.space:
            try:
                parsed = load_space_file(args.space)
            except (SpaceError, FileNotFoundError) as err:
                raise UsageError(str(err)) from None
            file_tables, file_race, file_data = (
                parsed["space"] or None,
                parsed["race"],
                parsed["data"],
            )
    race = _race_settings(args, file_race)
    data = _data_settings(args, file_data)
    if folder is not None and not args.resume:  # fail early, before generating data
        _check_folder(folder, _resolved(data, race, []), parts=("jrobust", "data", "race"))

    # 2. the multi-host runtime must start before JAX does anything
    main_process = True
    try:
        from jrobust import distributed

        distributed.initialize_from_args(args)
        main_process = distributed.is_main_process()
    except ImportError:
        pass
    out = _Output(args, main_process)

    # 3. the data, the space, the run folder
    if out.mode == "rich":
        with out.console.status(f"loading data {data['source']} ..."):
            pop = _load_population(data)
    else:
        pop = _load_population(data)
    if args.target is not None and not pop.is_classification:
        try:
            pop.target_column(args.target)
        except ValueError as err:
            raise UsageError(f"--target: {err}") from None
    tables = _space_tables(file_tables, pop, args.target)
    overrides = {"epochs": args.epochs, "train_size": args.train_size}
    if args.target is not None and (file_tables or not pop.name.lower().startswith("calo")):
        overrides["target"] = args.target  # the built-in calorimeter space already chose its models
    space, tables = _build_space(tables, pop, overrides)
    config = _resolved(data, race, tables)
    if folder is None:
        folder = _new_folder(data["source"])
    resuming = bool(args.resume) or _check_folder(folder, config)
    if main_process:
        from jrobust.results import write_config

        write_config(
            folder,
            config,
            header=(
                "jrobust run configuration (resolved). Rerun: jrobust run --space THIS_FILE; "
                f"continue: jrobust run --resume {folder}"
            ),
        )

    # 4. the race
    import jrobust

    resumed_from = _checkpoint_round(folder) if resuming else 0
    out.info(
        f"[bold]jrobust run[/bold]: {len(space)} models in {space.n_cohorts} cohorts "
        f"on {_describe(pop)}"
    )
    out.info(
        f"rule {race['rule']} on {race['statistic']}, warm-up {race['warmup']}, at most "
        f"{race['max_instances']} instances, seed {race['seed']}; run folder {folder}"
        + (f"; resuming after round {resumed_from}" if resumed_from else "")
    )
    t0 = time.perf_counter()
    progress = _Progress(
        out,
        len(space),
        race,
        start_round=resumed_from,
        start_trainings=_checkpoint_trainings(folder) if resumed_from else 0,
    )
    try:
        with progress:
            result = jrobust.race(
                space,
                pop,
                devices=args.devices,
                checkpoint_dir=folder,
                progress=progress,
                **_race_kwargs(race),
            )
    except KeyboardInterrupt:
        if main_process:
            print(f"interrupted; continue with: jrobust run --resume {folder}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except ValueError as err:
        if "checkpoint" in str(err):
            raise UsageError(str(err)) from None
        raise
    wall = time.perf_counter() - t0

    # 5. the run folder and the answer
    if not main_process:
        return EXIT_OK
    from jrobust.results import save_run, summary_table

    info = {
        "data": _describe(pop),
        "command": "jrobust " + " ".join(argv),
        "finished": True,
        "session_seconds": wall,
    }
    if out.mode == "rich":
        with out.console.status("writing the run folder ..."):
            save_run(result, folder, config, csv=args.csv, info=info)
    else:
        save_run(result, folder, config, csv=args.csv, info=info)
    table = summary_table(result, top=6)
    stat = result.settings["statistic"]
    if out.mode == "json":
        out.json(_json_summary(result, table, folder, wall))
        return EXIT_OK
    if out.chatty:
        _print_table(out, table, stat, result)
    out.final(_final_line(result, table, folder, wall))
    return EXIT_OK


def _check_version(config: dict[str, Any], folder: Path) -> None:
    from jrobust import __version__

    made = config.get("jrobust", {}).get("version")
    if made is not None and made != __version__:
        raise UsageError(
            f"the run in {folder} was made by jrobust {made}, this is {__version__}; "
            "a checkpoint does "
            "not carry over between versions: start a new run with "
            f"jrobust run --space {folder}/config.toml"
        )


def _checkpoint_state(folder: Path) -> dict[str, Any] | None:
    import pickle

    from jrobust.select import CHECKPOINT_FILE

    try:
        with open(folder / CHECKPOINT_FILE, "rb") as fh:
            return pickle.load(fh).get("state")
    except Exception:  # noqa: BLE001 - no or unreadable checkpoint: the race itself reports it
        return None


def _checkpoint_round(folder: Path) -> int:
    state = _checkpoint_state(folder)
    return int(state["round"]) if state else 0


def _checkpoint_trainings(folder: Path) -> int:
    state = _checkpoint_state(folder)
    return int(state["n_trainings"]) if state else 0


def _row_facts(row, stat: str) -> str:
    return (
        f"{stat} {row[stat]:.4g} (mean {row['mean']:.4g}, std {row['std']:.4g}, "
        f"PD {row['pd']:.4g}, "
        f"{int(row['instances'])} instances)"
    )


def _final_line(result, table, folder: Path, wall: float) -> str:
    stat = result.settings["statistic"]
    row = table.iloc[0]
    return (
        f"winner: model {result.winner_id} '{row['name']}': {_row_facts(row, stat)}; "
        f"{result.n_trainings} trainings in {_duration(wall)}; run folder: {folder}"
    )


def _print_table(out: _Output, table, stat: str, result) -> None:
    winners = set(result.winners)
    if out.mode == "rich":
        from rich import box
        from rich.table import Table

        t = Table(
            title="winner and runners-up",
            title_justify="left",
            header_style="bold",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
        )
        t.add_column("#", justify="right", no_wrap=True, min_width=2)
        t.add_column("model", justify="right", no_wrap=True, min_width=5)
        t.add_column("name", overflow="fold", min_width=12)
        for col in (stat, "mean", "std", "PD", "n"):
            t.add_column(col, justify="right", no_wrap=True)
        for _, r in table.iterrows():
            winner = int(r.model_id) in winners
            t.add_row(
                str(r["rank"]),
                str(r.model_id),
                str(r["name"]),
                f"{r[stat]:.4g}",
                f"{r['mean']:.4g}",
                f"{r['std']:.3g}",
                f"{r['pd']:.3g}",
                str(int(r.instances)),
                style="bold red" if winner else None if r.alive else "dim",
            )
        out.console.print(t)
    else:
        view = table[["rank", "model_id", "name", stat, "mean", "std", "pd", "instances", "alive"]]
        text = view.to_string(index=False, float_format=lambda v: f"{v:.4g}")
        print("winner and runners-up:\n" + text, flush=True)


def _json_summary(result, table, folder: Path, wall: float) -> dict[str, Any]:
    stat = result.settings["statistic"]

    def record(r) -> dict[str, Any]:
        return {
            "model_id": int(r.model_id),
            "name": str(r["name"]),
            "statistic": float(r[stat]),
            "mean": float(r["mean"]),
            "std": float(r["std"]),
            "pd": float(r["pd"]),
            "instances": int(r.instances),
            "alive": bool(r.alive),
        }

    rows = [record(r) for _, r in table.iterrows()]
    return {
        "run_folder": str(folder),
        "winner": rows[0],
        "winners": [int(w) for w in result.winners],
        "runners_up": rows[1:],
        "statistic": stat,
        "rank_by": result.settings["rank_by"],
        "rule": result.settings["rule"],
        "n_models": len(result.models),
        "n_trainings": int(result.n_trainings),
        "rounds": len(result.history),
        "seconds": wall,
        "compile_seconds": float(result.timing.get("compile_seconds", 0.0)),
        "stop_reason": result.timing.get("stop_reason"),
        "settings": result.settings,
    }


# ---------------------------------------------------------------------- report, bench, space
def _cmd_report(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from jrobust.results import (
        RESULT_FILE,
        TABLES,
        _write_table,
        load_run,
        read_config,
        write_figures,
        write_report,
        write_summary,
    )

    folder = Path(args.folder)
    if not folder.is_dir():
        raise UsageError(f"no such run folder: {folder}")
    try:
        result = load_run(folder)
    except FileNotFoundError as err:
        raise UsageError(str(err)) from None
    info: dict[str, Any] = {}
    if (folder / RESULT_FILE).is_file():
        info = dict(json.loads((folder / RESULT_FILE).read_text(encoding="utf-8")).get("info", {}))
    else:
        config = read_config(folder) or {}
        info["data"] = ", ".join(f"{k} {v}" for k, v in config.get("data", {}).items())
        info["finished"] = bool(result.timing.get("finished", False))
    if args.csv:
        for name in TABLES:
            _write_table(getattr(result, name), folder, name, csv=True)
    written = write_figures(result, folder)
    write_summary(result, folder, info)
    report = write_report(result, folder, info, figures=written)
    if args.json:
        print(
            json.dumps(
                {
                    "report": str(report),
                    "summary": str(folder / "summary.md"),
                    "figures": {k: str(v) for k, v in written.items()},
                    "winner_id": result.winner_id,
                    "finished": bool(info.get("finished", True)),
                },
                indent=2,
            )
        )
    elif args.quiet:
        print(report)
    else:
        state = (
            ""
            if info.get("finished", True)
            else " (unfinished run: state after the last checkpoint)"
        )
        print(
            f"report: {report}{state}\nsummary: {folder / 'summary.md'}\nfigures: "
            + ", ".join(str(p) for p in written.values())
        )
    return EXIT_OK


def _cmd_bench(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from jrobust.bench import throughput

    out = _Output(args)
    if out.mode == "quiet" and not args.json:
        out.mode = "plain"  # the table is the answer
    rows = []

    def shown(row: dict[str, Any]) -> None:
        rows.append(row)
        if out.mode == "rich":
            out.console.print(
                f"stack {row['stack']:>5}: {row['instance_steps_per_s']:10.1f} instance-steps/s "
                f"({row['seconds']:.2f} s timed, {row['compile_seconds']:.1f} s compiling)"
            )

    conv = None if args.conv_impl == "auto" else args.conv_impl
    if out.mode == "rich":
        out.console.print(
            f"paper model {args.model}, batch {args.batch_size}, {args.steps} steps per instance; "
            f"stacks {', '.join(map(str, args.stacks))}"
        )
    frame = throughput(
        args.stacks,
        steps=args.steps,
        batch_size=args.batch_size,
        repeats=args.repeats,
        model=args.model,
        conv_impl=conv,
        progress=shown,
    )
    if args.csv:
        frame.to_csv(args.csv, index=False)
    if args.json:
        print(json.dumps(frame.to_dict(orient="records"), indent=2))
    elif out.mode != "rich":
        print(frame.to_string(index=False, float_format=lambda v: f"{v:.2f}"), flush=True)
    return EXIT_OK


def _cmd_space(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from jrobust.config import count_params
    from jrobust.spaces import SpaceError, build_space, load_space_file

    tables, file_data = None, {}
    if args.file:
        try:
            parsed = load_space_file(args.file)
        except (SpaceError, FileNotFoundError) as err:
            raise UsageError(str(err)) from None
        tables, file_data = parsed["space"] or None, parsed["data"]
    source = args.data or file_data.get("source") or DEFAULT_DATA
    data = _data_settings(
        argparse.Namespace(data=source, events=None, data_dir=file_data.get("data_dir")), {}
    )
    if data["source"].startswith("calo"):
        facts = argparse.Namespace(
            is_classification=False,
            input_shape=(15, 15, 1),
            num_classes=None,
            pool_size=None,
            name="calo",
        )
    else:  # the built-in space and the parameter counts depend on the data's shape
        facts = _load_population(data)
    tables = _space_tables(tables, facts, args.target)
    target = args.target if args.file or not data["source"].startswith("calo") else None
    try:
        space = build_space(tables, target=target)
    except SpaceError as err:
        raise UsageError(f"space: {err}") from None
    frame = space.to_frame()
    counts: dict[tuple, int | None] = {}
    params = []
    for config in space:
        key = config.static_key()
        if key not in counts:
            try:
                counts[key] = count_params(config, tuple(facts.input_shape))
            except Exception:  # noqa: BLE001 - a model that does not fit this shape
                counts[key] = None
        params.append(counts[key])
    frame["params"] = _int_column(params)
    if args.json:
        print(frame.to_json(orient="records", indent=2))
    else:
        print(
            f"{len(space)} models in {space.n_cohorts} cohorts (parameters for inputs "
            f"{'x'.join(map(str, facts.input_shape))})"
        )
        print(frame.to_string(index=False))
    return EXIT_OK


def _int_column(values: list[int | None]):
    import pandas as pd

    return pd.array(values, dtype="Int64")


# ------------------------------------------------------------------------------ entry point
def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``jrobust`` command with ``argv`` (default: ``sys.argv[1:]``).

    Returns:
      The exit status: 0 on success, 2 for bad input, 1 for an internal error, 130 when
      interrupted.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as exit_:  # --help and --version
            return int(exit_.code or 0)
        debug = debug or bool(getattr(args, "debug", False))
        if not getattr(args, "command", None):
            parser.print_help()
            return EXIT_USAGE
        return args.func(args, argv)
    except KeyboardInterrupt:
        if debug:
            raise
        print("jrobust: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `jrobust space | head`: the reader left, nothing to report
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return EXIT_OK
    except UsageError as err:
        if debug:
            raise
        print(f"jrobust: error: {_one_line(str(err))}", file=sys.stderr)
        return EXIT_USAGE
    except (ValueError, TypeError, KeyError, OSError, ImportError) as err:
        if debug:
            raise
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        print(
            f"jrobust: error: {_one_line(str(message))} (--debug shows the traceback)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    except Exception as err:  # noqa: BLE001 - the command's last resort: one line, not a traceback
        if debug:
            raise
        print(
            f"jrobust: internal error: {type(err).__name__}: {_one_line(str(err))} "
            "(--debug shows the traceback)",
            file=sys.stderr,
        )
        return EXIT_FAILURE


def _one_line(text: str) -> str:
    return " ".join(text.split())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
