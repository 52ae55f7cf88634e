"""The command answers at once: --help, --version and bad options import no JAX, Flax, optax,
matplotlib or data modules; the examples of every --help work from any folder."""

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from jrobust._src.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("jax", "jaxlib", "flax", "optax", "matplotlib", "jrobust._src.data", "jrobust._src.train")


def imported_by(argv, cwd, console_script=False):
    """Run the command in a fresh interpreter; returns (exit status, its stderr without the
    import-time lines, its stdout, the modules it imported)."""
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    script = Path(sys.executable).with_name("jrobust")
    command = [str(script)] if console_script else [sys.executable, "-m", "jrobust"]
    done = subprocess.run(
        [*command, *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    modules, rest = set(), []
    for line in done.stderr.splitlines():
        if line.startswith("import time:"):
            modules.add(line.rsplit("|", 1)[1].strip())
        else:
            rest.append(line)
    return done.returncode, "\n".join(rest), done.stdout, modules


def heavy(modules, also=()):
    return sorted(m for m in modules if m.split(".")[0] in (*HEAVY, *also) or m.startswith(HEAVY))


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["--version"],
        ["run", "--help"],
        ["report", "--help"],
        ["bench", "--help"],
        ["space", "--help"],
        ["space", "--example"],
    ],
)
def test_help_and_version_import_neither_jax_nor_numpy(argv, tmp_path):
    code, err, out, modules = imported_by(argv, tmp_path)
    assert code == 0 and err == "" and out, (argv, err)
    assert "jrobust._src.cli" in modules  # the probe works: it sees the command's own modules
    assert not heavy(modules, also=("numpy", "pandas", "scipy", "rich")), heavy(modules)


def test_the_console_script_answers_help_without_jax(tmp_path):
    if not Path(sys.executable).with_name("jrobust").is_file():
        pytest.skip("no jrobust console script beside this interpreter")
    code, err, out, modules = imported_by(["--help"], tmp_path, console_script=True)
    assert code == 0 and "examples:" in out and err == ""
    assert "jrobust._src.cli" in modules and not heavy(modules, also=("numpy",))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--nonsense"], "unrecognized arguments: --nonsense"),
        (["run", "--statistic", "maks"], "unknown statistic 'maks' (did you mean 'max'?)"),
        (["run", "--rule", "halvng"], "unknown rule 'halvng' (did you mean 'halving'?)"),
        (["run", "--rule", "quantile:3"], "keep must be a fraction in (0, 1]"),
        (["run", "--data", "digts"], "unknown data set 'digts' (did you mean 'digits'?)"),
        (["run", "--fidelity", "500,100"], "must increase strictly"),
        (["run", "--warmup", "0"], "expected a positive integer, got '0'"),
        (["run", "--warmup", "1", "--rule", "wilcoxon"], "needs at least 5 instances"),
        (["run", "--over", "transforms"], "give them with --rotation"),
        (["space", "--example", "--json"], "give it alone"),
        (["report"], "the following arguments are required: DIR"),
    ],
)
def test_usage_errors_answer_before_jax(argv, message, tmp_path):
    code, err, out, modules = imported_by(argv, tmp_path)
    assert code == 2 and out == "", (argv, err)
    assert err.startswith("jrobust: error: ") and err.count("\n") == 0 and message in err, err
    assert not heavy(modules), heavy(modules)


def test_import_jrobust_loads_no_numpy_and_names_load_on_use():
    code = (
        "import sys, json, jrobust; before = sorted(m for m in sys.modules if m.split('.')[0] "
        "in ('numpy', 'jax', 'matplotlib')); race = jrobust.race; import jrobust.zoo as z; "
        "print(json.dumps([before, race.__module__, z is jrobust.zoo, 'jax' in sys.modules, "
        "sorted(set(jrobust.__all__) - set(dir(jrobust)))]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    before, module, same_zoo, jax_now, missing = json.loads(done.stdout)
    assert before == [] and module == "jrobust._src.select" and same_zoo and jax_now
    assert missing == []


# ------------------------------------------------------------------------ jrobust space --example
def test_space_example_is_the_packaged_commented_file(capsys, tmp_path):
    from jrobust._src.space.files import load_space_file

    assert main(["space", "--example"]) == 0
    text = capsys.readouterr().out
    packaged = (ROOT / "jrobust" / "_src" / "space" / "example.toml").read_text()
    assert text == packaged == (ROOT / "examples" / "space.toml").read_text()
    assert text.count("#") > 30  # commented
    # every table of a space file is there, and it is a working space
    assert {"base", "choices", "race", "data"} <= set(tomllib.loads(text))
    for commented in ("[when]", "[[space]]", "fidelity", "elites", "rotation", "rank_by"):
        assert commented in text
    (tmp_path / "space.toml").write_text(text)
    parsed = load_space_file(tmp_path / "space.toml")
    assert len(parsed["space"][0]["choices"]) == 3 and parsed["data"]["source"] == "calo-b"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "_src/space/example.toml" in project["tool"]["setuptools"]["package-data"]["jrobust"]


# ------------------------------------------------------------------------ the --help examples
def _epilogs() -> dict[str, str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {"jrobust": parser.epilog, **{k: p.epilog for k, p in sub.choices.items()}}


def _examples() -> list[str]:
    out = []
    for epilog in _epilogs().values():
        for line in epilog.splitlines():
            if line.strip().startswith("jrobust "):
                out.append(re.split(r"\s{2,}", line.strip())[0])
    return out


class _Stop(Exception):
    """Raised instead of racing: every check of ``jrobust run`` has passed by then."""


@pytest.mark.slow
def test_every_help_example_works_from_any_folder(tmp_path, monkeypatch, capsys):
    """Run from an empty folder: ``jrobust space`` examples for real, ``jrobust run`` examples
    up to the race (every check of options, files, data and space passes; the data is really
    loaded), ``report``/``bench`` parsed with the folders they name made by an earlier
    example."""
    import jrobust._src.select

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("JROBUST_CACHE_DIR", str(tmp_path / "cache"))

    def no_race(*args, **kwargs):
        raise _Stop

    monkeypatch.setattr(jrobust._src.select, "race", no_race)
    rng = np.random.default_rng(0)  # the user's own arrays of the npz example
    np.savez("mydata.npz", x=rng.random((300, 4)), y=rng.random(300), target_names=["energy"])
    examples = _examples()
    assert len(examples) >= 15
    ran = []
    for example in examples:
        argv = shlex.split(example)[1:]
        redirect = None
        if ">" in argv:
            argv, redirect = argv[: argv.index(">")], argv[argv.index(">") + 1]
        build_parser().parse_args(argv)  # every example parses
        if argv[0] == "space":
            assert main(argv) == 0, example
            out = capsys.readouterr().out
            if redirect:
                Path(redirect).write_text(out)
            ran.append(example)
        elif argv[0] == "run":
            with pytest.raises(_Stop):
                main([*argv, "--debug"])
            capsys.readouterr()
            ran.append(example)
        elif argv[0] == "report":
            assert (Path(argv[1]) / "config.toml").is_file(), example  # made by `run --out`
    assert any("--resume" in e for e in ran) and any("npz:" in e for e in ran)
    assert Path("runs/seed1/config.toml").is_file()
