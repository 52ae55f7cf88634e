"""``jrobust run``: race the models of a search space and save a run folder (the main job).

Everything is checked before a run folder is created or data is generated: the options, the
space file, the race settings against each other and against the space (a budget that cannot
cover the warm-up round, a rule that needs a longer warm-up), the devices, and an existing
``--out`` folder. Ctrl-C (or SIGTERM) stops the race after the current stack: the checkpoint of
the last complete round stays, the folder is consistent, and the exit status is 130 (143);
``jrobust run --resume DIR`` continues it to the result an uninterrupted run gives.

A space file with ranges (``learning_rate = { loguniform = [1e-5, 1.0] }``) has no list of models
to race: ``jrobust run --space FILE --budget N`` searches it (``jrobust.search``, iterated racing
within ``N`` trainings); the run folder gains ``iterations.parquet`` and ``iterations.png``, and
``--resume`` continues the search. See docs/search.md.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jrobust._src import distributed
from jrobust._src import signals as _signals
from jrobust._src.cli import settings as cli_settings
from jrobust._src.cli.options import (
    DATA_HELP,
    DEBUG,
    DEFAULT_EVENTS,
    EXIT_OK,
    Help,
    UsageError,
    data_spec,
    fidelity_sizes,
    fraction,
    instances_per_round,
    nonnegative_float,
    nonnegative_int,
    number_list,
    positive_int,
    rule_spec,
    statistic,
)
from jrobust._src.cli.settings import CONFIG_FILE
from jrobust._src.specs import EXECUTION_FIELDS, OVER

# This module defines the options and imports no JAX, NumPy or data modules at its top: the
# race's machinery is imported inside the steps that use it, after the options are parsed.

__all__ = ["add_parser", "command"]

EPILOG = """\
examples:
  jrobust run
      16 models around the paper's energy models 1 and 2 on 10,000 synthetic calorimeter
      events (data set A), halving after 3 warm-up instances, at most 10 instances per model
  jrobust run --data calo-b --statistic std --rank-by mean --rule welch --alpha 0.05
  jrobust run --fidelity 500,1000,2000 --winners 3 --final-instances 10 --elites 1
  jrobust space --example > space.toml        a commented space file to edit, then:
  jrobust run --space space.toml --seed 1 --out runs/seed1 --csv
  jrobust run --data digits --max-instances 20
  jrobust run --data npz:mydata.npz --target energy --epochs 10
      your own arrays: x, y (and side) saved with numpy.savez in mydata.npz
  jrobust run --resume runs/seed1              continue a stopped run (same result as uninterrupted)
  jrobust run --space runs/seed1/config.toml   rerun a run from its resolved configuration
A space file with ranges, e.g. learning_rate = { loguniform = [1e-5, 1.0] }, is searched
(iterated racing, docs/search.md) within --budget trainings: jrobust run --space FILE --budget N

run folder (runs/<time>-<data> unless --out): config.toml, checkpoint.npz, result.json,
ledger/history/path/models.parquet, summary.md, report.html, path.png, distributions.png
(and for a search iterations.parquet, iterations.png).
A checkpoint is written after every round. Running again with the same --out and the same
settings continues that run; an --out folder holding a different run is an error.
Options given on the command line override the [race] and [data] tables of --space; the defaults
are those of jrobust.RaceSettings (the built-in space races at most 10 instances per model).
Ctrl-C stops after the current stack with exit status 130; --resume continues.
"""

# Options that define the race; --resume takes them all from the folder (the execution options,
# such as --max-bucket and --merge, may change).
_DEFINING = (
    "space", "data", "events", "data_dir", "rotation", "scale", "shift", "target", "epochs",
    "train_size",
    *(o for o, s in cli_settings.RACE_OPTIONS.items() if s not in EXECUTION_FIELDS),
)  # fmt: skip


def add_parser(sub) -> argparse.ArgumentParser:
    run = sub.add_parser(
        "run",
        help="race the models of a search space (the main job)",
        formatter_class=Help,
        description="Race the models of a search space on a data set and save a run folder.",
        epilog=EPILOG,
    )
    _what_to_race(run.add_argument_group("what to race"))
    _the_race(run.add_argument_group("the race (defaults: jrobust.RaceSettings)"))
    _where_and_how(run.add_argument_group("where and how"))
    distributed.add_cli_arguments(run)
    run.set_defaults(func=command)
    return run


def _what_to_race(g) -> None:
    g.add_argument(
        "--space",
        metavar="FILE.toml",
        help="search space file (default: the built-in space; jrobust space --example prints "
        "a commented one)",
    )
    g.add_argument(
        "--data", type=data_spec, metavar="SPEC", help=f"data set: {DATA_HELP} (default: calo-a)"
    )
    g.add_argument(
        "--events",
        type=positive_int,
        metavar="N",
        help=f"calorimeter events to generate (default: {DEFAULT_EVENTS})",
    )
    g.add_argument(
        "--data-dir", metavar="DIR", help="folder of prepared TFDS data sets (tfds:NAME)"
    )
    for name, what in (
        ("rotation", "angles in degrees, e.g. 0,15,30,45"),
        ("scale", "factors, e.g. 0.8,1,1.25"),
        ("shift", "pixels, e.g. 0,1,2"),
    ):
        g.add_argument(
            f"--{name}",
            type=number_list,
            metavar="LIST",
            help=f"also evaluate every instance on its test set transformed by each of these "
            f"{what} (images only; race on them with --over)",
        )
    g.add_argument(
        "--target",
        metavar="NAME",
        help="target column, e.g. energy, x, y (the built-in space uses the paper's "
        "position models 3 and 4 for x and y)",
    )
    g.add_argument("--epochs", type=positive_int, metavar="N", help="set the epochs of every model")
    g.add_argument(
        "--train-size",
        type=positive_int,
        metavar="N",
        help="set the training-sample size of every model",
    )


def _the_race(g) -> None:
    """The race's options: how models are eliminated, then how long and how wide it runs."""
    _elimination(g)
    _extent(g)


def _elimination(g) -> None:
    """Which statistic and rule eliminate models, and when they may start to."""
    g.add_argument(
        "--statistic",
        type=statistic,
        metavar="NAME",
        help="eliminates: mean, median, std, min, max, q1, q3, q3+iqr, iqr, pd, q<P> "
        "(default: max, the worst instance)",
    )
    g.add_argument(
        "--rank-by",
        type=statistic,
        metavar="NAME",
        help="ranks the survivors (default: --statistic)",
    )
    g.add_argument(
        "--rule",
        type=rule_spec,
        metavar="NAME",
        help="halving, quantile[:KEEP], threshold:VALUE; unpaired tests: welch, mannwhitney, ks, "
        "bartlett, levene, fligner; paired: wilcoxon, ttest_paired, friedman, bootstrap "
        "(default: halving)",
    )
    g.add_argument(
        "--warmup",
        type=positive_int,
        metavar="K",
        help="instances per model before eliminating (default: 3)",
    )
    g.add_argument(
        "--alpha",
        type=fraction,
        metavar="A",
        help="significance level of a test rule (default: 0.05)",
    )
    g.add_argument(
        "--correction",
        choices=("holm", "bonferroni"),
        help="test rules: correct for the comparisons of a round with the best model",
    )
    g.add_argument(
        "--patience",
        type=positive_int,
        metavar="P",
        help="test rules: stop after P rounds that eliminate nothing",
    )


def _extent(g) -> None:
    """How many instances and trainings, winners and stages, over what, from which seed."""
    g.add_argument(
        "--max-instances",
        type=positive_int,
        metavar="N",
        help="instances per model at most (default: 50; the built-in space: 10)",
    )
    g.add_argument(
        "--instances-per-round",
        type=instances_per_round,
        metavar="N|auto",
        help="new instances per survivor per round (default: auto, keeps the stacks full)",
    )
    g.add_argument(
        "--budget",
        type=positive_int,
        metavar="N",
        help="trainings in all at most (required to search a space file with ranges)",
    )
    g.add_argument(
        "--winners", type=positive_int, metavar="N", help="stop when N models are left (default: 1)"
    )
    g.add_argument(
        "--final-instances",
        type=nonnegative_int,
        metavar="N",
        help="with --winners > 1: train the finalists on N fresh instances each and order them "
        "on those alone (default: 0, no final race)",
    )
    g.add_argument(
        "--elites",
        type=nonnegative_int,
        metavar="E",
        help="the E best models at the start of a round cannot be eliminated in it (default: 0)",
    )
    g.add_argument(
        "--fidelity",
        type=fidelity_sizes,
        metavar="SIZES",
        help="race in stages of growing training sizes, e.g. 500,2000,8000 (default: one stage "
        "at each model's own train_size)",
    )
    g.add_argument(
        "--over",
        choices=OVER,
        help="the statistics are taken over instances (default), over the transformed test sets "
        "of --rotation/--scale/--shift (the mean over instances per parameter), or both",
    )
    g.add_argument("--seed", type=nonnegative_int, metavar="S", help="root seed (default: 0)")


def _where_and_how(g) -> None:
    g.add_argument("--out", metavar="DIR", help="run folder (default: runs/<time>-<data>)")
    g.add_argument(
        "--resume", metavar="DIR", help="continue the run in DIR with its own configuration"
    )
    g.add_argument(
        "--devices",
        type=positive_int,
        metavar="N",
        help="shard over the first N devices (default: all)",
    )
    g.add_argument(
        "--merge",
        choices=("auto", "none", "max"),
        help="which models share one compiled program: auto (default: while the padded work "
        "stays within --waste), none (one per cohort), max",
    )
    g.add_argument(
        "--waste",
        type=nonnegative_float,
        metavar="W",
        help="merge=auto: the most padded work, as a fraction over the models' own (default 0.5)",
    )
    g.add_argument(
        "--max-bucket", type=positive_int, metavar="N", help="at most N instances per compiled call"
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
    g.add_argument("--debug", **DEBUG)


# ------------------------------------------------------------------------------ the steps
def _sources(args: argparse.Namespace) -> tuple[Path | None, Any, dict, dict]:
    """The run folder (if known) and the space file's tables, [race] and [data] (or the
    folder's own configuration with --resume)."""
    if not args.resume:
        if not args.space:
            return (Path(args.out) if args.out else None), None, {}, {}
        from jrobust._src.space.files import SpaceError, load_space_file

        try:
            parsed = load_space_file(args.space)
        except (SpaceError, FileNotFoundError) as err:
            raise UsageError(str(err)) from None
        return (
            (Path(args.out) if args.out else None),
            parsed["space"],
            parsed["race"],
            parsed["data"],
        )
    given = [f"--{k.replace('_', '-')}" for k in _DEFINING if getattr(args, k, None) is not None]
    if given:
        raise UsageError(
            f"--resume takes every setting from {args.resume}/{CONFIG_FILE}; drop {', '.join(given)}"
        )
    if args.out and Path(args.out).resolve() != Path(args.resume).resolve():
        raise UsageError("--resume DIR continues the run in DIR; drop --out")
    folder = Path(args.resume)
    if not folder.is_dir():
        raise UsageError(f"--resume {folder}: no such folder")
    from jrobust._src.race.checkpoint import CheckpointMismatch, refuse_legacy
    from jrobust._src.space.files import SpaceError, parse_space_text

    try:
        refuse_legacy(folder)
        saved = cli_settings.read_config(folder)
    except (ValueError, CheckpointMismatch) as err:
        raise UsageError(str(err)) from None
    if saved is None:
        cli_settings.check_free(folder)  # a run that has not written its configuration yet
        raise UsageError(
            f"--resume {folder}: no {CONFIG_FILE} there, so no jrobust run to continue"
        )
    cli_settings.check_version(saved, folder)
    try:
        text = (folder / CONFIG_FILE).read_text(encoding="utf-8")
        parsed = parse_space_text(text, str(folder / CONFIG_FILE))
    except (SpaceError, OSError, UnicodeDecodeError) as err:
        raise UsageError(str(err)) from None
    return folder, parsed["space"], parsed["race"], parsed["data"]


def _check_devices(devices: int | None) -> None:
    import jax

    if devices is not None and devices > jax.device_count():
        raise UsageError(
            f"--devices {devices}, but this machine has {jax.device_count()} device(s) "
            f"({jax.default_backend()}); use --devices {jax.device_count()} or fewer"
        )


def _checked_settings(args: argparse.Namespace) -> tuple[Path | None, Any, Any, bool, dict]:
    """Step 1, everything that needs no data: the options, the space file, the race and data
    settings; returns the folder (if known), the file's tables, the race settings, whether the
    space is searched, and the data settings."""
    if args.out or args.resume:  # a folder that cannot be written is refused before the data
        cli_settings.check_writable(
            Path(args.resume or args.out), "--resume" if args.resume else "--out"
        )
    folder, file_tables, file_race, file_data = _sources(args)
    settings = cli_settings.race_settings(args, file_race, builtin=not file_tables)
    searched = cli_settings.has_ranges(file_tables)
    if searched and settings.budget is None:
        source = args.space or Path(args.resume) / CONFIG_FILE
        raise UsageError(
            f"the space file {source} has ranges, so jrobust run searches it and needs a "
            "budget of trainings: add --budget N, e.g. --budget 300"
        )
    data = cli_settings.data_settings(args, file_data)
    cli_settings.check_over(settings, data)
    if folder is not None and not args.resume:  # fail early, before generating data
        early = cli_settings.resolved_config(data, settings, [])
        cli_settings.check_folder(folder, early, parts=("jrobust", "data", "race"))
    return folder, file_tables, settings, searched, data


def _space_and_folder(
    args, argv, file_tables, settings, searched: bool, data: dict, folder, main_process: bool
) -> tuple[Any, Any, dict, Path, bool]:
    """Step 3: the space (the built-in one depends on what the data is), the budget, the folder
    (owned from here on); returns the space, the population if already built, the resolved
    configuration, the folder and whether the run resumes."""
    facts, pop = cli_settings.data_facts(data)
    tables = cli_settings.space_tables(file_tables, facts, args.target)
    overrides = {"epochs": args.epochs, "train_size": args.train_size}
    if args.target is not None and (file_tables or not facts.name.lower().startswith("calo")):
        overrides["target"] = args.target  # the built-in calorimeter space already chose its models
    space, tables = cli_settings.build_checked_space(tables, overrides)
    if searched:  # a search's models are sampled: at most one per warm-up's worth of budget
        n_models = -(-int(settings.budget) // settings.warmup_for())
    else:
        cli_settings.check_budget(settings, len(space))
        n_models = len(space)
    cli_settings.check_memory(settings, n_models, data)
    config = cli_settings.resolved_config(data, settings, tables)
    folder = folder or cli_settings.new_folder(data["source"])
    args.run_folder = folder  # for the messages of a failure (a full disk)
    if main_process:  # the folder's owner until the command ends: the first thing written there
        args.held.enter_context(cli_settings.own_folder(folder, "jrobust " + " ".join(argv), _note))
    resuming = bool(args.resume) or cli_settings.check_folder(folder, config)
    return space, pop, config, folder, resuming


def _checked_data(args, out, data: dict, pop, space, settings) -> Any:
    """Step 4: the data (loaded unless already built), and whether every model fits it."""
    if pop is None:
        with out.status(f"loading data {data['source']} ..."):
            pop = cli_settings.load_population(data)
    _signals.check()
    if args.target is not None and not pop.is_classification:
        try:
            pop.target_column(args.target)
        except ValueError as err:
            raise UsageError(f"--target: {err}") from None
    fitted = cli_settings.check_space_fits(space, pop)
    if fitted:
        out.info(fitted)
    cli_settings.check_fidelity_fits(settings, space, pop)
    _signals.check()
    return pop


def command(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """``jrobust run``: check everything, load the data, write the configuration, then race or
    search."""
    # 1. everything that needs no data: options, the space file, the race and data settings
    folder, file_tables, settings, searched, data = _checked_settings(args)
    # 2. the multi-host runtime starts before JAX does anything; then the devices are known
    distributed.initialize_from_args(args)
    main_process = distributed.is_main_process()
    _check_devices(args.devices)
    from jrobust._src.cli.console import Output
    from jrobust._src.runfolder.layout import write_config

    out = Output(args, main_process)
    # 3. the space, the budget, the folder
    space, pop, config, folder, resuming = _space_and_folder(
        args, argv, file_tables, settings, searched, data, folder, main_process
    )
    # 4. the data, and whether every model fits it; only then the folder is written
    pop = _checked_data(args, out, data, pop, space, settings)
    if main_process:
        header = (
            "jrobust run configuration (resolved). Rerun: jrobust run --space THIS_FILE; "
            f"continue: jrobust run --resume {folder}"
        )
        write_config(folder, config, header=header)
    if searched:
        return _search(args, argv, out, space, pop, settings, config, folder)
    return _race(args, argv, out, space, pop, settings, data, config, folder, resuming)


def _race(args, argv, out, space, pop, settings, data, config, folder, resuming) -> int:
    from jrobust._src.cli.console import RaceProgress
    from jrobust._src.race.checkpoint import CHECKPOINT_FILE, CheckpointMismatch
    from jrobust._src.select import race

    done = cli_settings.checkpoint_facts(folder) if resuming else {}
    if resuming and not (folder / CHECKPOINT_FILE).is_file():
        _note(f"{folder / CHECKPOINT_FILE} is missing, so the race starts again from round 1")
    resumed_from = int(done.get("round", 0))
    out.info(
        f"[bold]jrobust run[/bold]: {len(space)} models in {space.n_cohorts} cohorts "
        f"on {_describe(pop)}"
    )
    described = settings.describe()
    out.info(
        f"rule {described['rule']} on {described['statistic']}, warm-up {settings.warmup}, at most "
        f"{settings.max_instances} instances, seed {settings.seed}; run folder {folder}"
        + (f"; resuming after round {resumed_from}" if resumed_from else "")
    )
    t0 = time.perf_counter()
    progress = RaceProgress(
        out,
        len(space),
        settings.to_table(),
        start_round=resumed_from,
        start_trainings=int(done.get("n_trainings", 0)),
    )
    try:
        with progress, warnings.catch_warnings():
            # the command reports a race whose every instance failed itself, in one line
            warnings.filterwarnings("ignore", "every instance of every model failed")
            warnings.filterwarnings("ignore", "the population .* is a classification set")
            result = race(
                space, pop, settings, devices=args.devices, checkpoint_dir=folder, progress=progress
            )
    except _signals.Interrupted as err:
        err.folder = folder  # for the one-line message: how to continue
        raise
    except CheckpointMismatch as err:
        raise UsageError(str(err)) from None
    return _finish(args, argv, out, result, pop, config, folder, time.perf_counter() - t0)


def _finish(args, argv, out, result, pop, config, folder, wall) -> int:
    """Save the run folder of a race or a search, print its winner (or JSON), and fail (exit
    status 1) when every instance failed."""
    from jrobust._src.cli.console import final_line, json_summary, print_table
    from jrobust._src.runfolder.files import save_run
    from jrobust._src.runfolder.summary import statistic_label, summary_table

    if not out.main:
        return EXIT_OK
    info = {
        "data": _describe(pop),
        "command": "jrobust " + " ".join(argv),
        "finished": True,
        "session_seconds": wall,
    }
    with out.status("writing the run folder ..."):
        save_run(result, folder, config, csv=args.csv, info=info)
    try:
        _signals.check()  # the folder is complete; a Ctrl-C that came meanwhile still counts
    except _signals.Interrupted as err:
        err.folder = folder
        raise
    table = summary_table(result, top=6)
    if out.mode == "json":
        out.json(json_summary(result, table, folder, wall))
    else:
        if out.chatty:
            print_table(
                out, table, statistic_label(result.settings["statistic"], result.over), result
            )
        out.final(final_line(result, table, folder, wall))
    if result.all_failed:
        raise _AllFailed(
            f"every instance of every model failed (non-finite losses), so the race has no "
            f"winner; see {folder / 'summary.md'} and check the learning rates and the data"
        )
    return EXIT_OK


def _search(args, argv, out, space, pop, settings, config, folder) -> int:
    """Search a space with ranges (``jrobust.search``: iterated racing within the budget) and
    save its run folder; a folder with the search's checkpoint continues it."""
    import jrobust  # the search and its machinery load here, once every check has passed
    from jrobust._src import checks
    from jrobust._src.race.checkpoint import CheckpointMismatch

    budget = int(settings.budget)
    described = settings.describe()
    out.info(
        f"[bold]jrobust run[/bold]: a search of {len(space.parameters)} parameters "
        f"({', '.join(space.parameters)}) within {budget} trainings on {_describe(pop)}"
    )
    out.info(
        f"each iteration races its candidates: rule {described['rule']} on "
        f"{described['statistic']}, warm-up {settings.warmup}, at most {settings.max_instances} "
        f"instances, seed {settings.seed}; run folder {folder}"
    )
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings(), checks.as_usage(UsageError):
            warnings.filterwarnings("ignore", "every instance of every model failed")
            warnings.filterwarnings("ignore", "the population .* is a classification set")
            result = jrobust.search(
                space,
                pop,
                budget=budget,
                seed=settings.seed,
                checkpoint_dir=folder,
                progress=_SearchProgress(out, budget),
                # the budget is the search's; each iteration's race gets its share of it
                settings=settings.replace(budget=None),
            )
    except _signals.Interrupted as err:
        err.folder = folder  # for the one-line message: how to continue
        raise
    except CheckpointMismatch as err:
        raise UsageError(str(err)) from None
    return _finish(args, argv, out, result, pop, config, folder, time.perf_counter() - t0)


class _SearchProgress:
    """A search's progress: one line per round of its races (terminal or plain output), with
    the iteration, the models racing and the trainings spent of the budget."""

    def __init__(self, out, budget: int) -> None:
        self.out = out
        self.budget = budget

    def __call__(self, info: dict[str, Any]) -> None:
        if not self.out.chatty:
            return
        where = ""
        if "iteration" in info:
            of = f"/{info['iterations']}" if "iterations" in info else ""
            where = f"iteration {info['iteration']}{of}, "
        models = (
            f": {info['survivors']} of {info['models']} models left"
            if {"survivors", "models"} <= set(info)
            else ""
        )
        trained = f", trained {info['trained']} instances" if "trained" in info else ""
        spent = info.get("n_trainings")
        budget = info.get("budget", self.budget)
        self.out.info(
            f"{where}round {info.get('round', '?')}{models}{trained}"
            + (f", {spent} of {budget} trainings" if spent is not None else "")
        )


def _note(text: str) -> None:
    """One line on stderr that the run goes on after (whatever --quiet or --json say)."""
    print(f"jrobust: note: {text}", file=sys.stderr, flush=True)


class _AllFailed(RuntimeError):
    """A race whose every instance failed: a failure while running (exit status 1)."""


def _describe(pop) -> str:
    from jrobust._src.cli.console import describe_population

    return describe_population(pop)
