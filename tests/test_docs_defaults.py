"""Docs that cannot drift: every default the docs and the --help texts quote is the one of
``jrobust.RaceSettings``, and the sample outputs in the docs have the form (and the statistic)
the command prints today."""

import argparse
import re
from pathlib import Path

import pytest

from jrobust._src.cli import build_parser
from jrobust._src.cli.settings import RACE_OPTIONS
from jrobust._src.programs import DEFAULT_WASTE
from jrobust._src.rules import get_rule
from jrobust._src.settings import RaceSettings
from jrobust._src.specs import BUILTIN_RACE

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
DEFAULT = RaceSettings().resolved()


def expected() -> dict[str, str]:
    """The default of every race setting the command line has an option for, as text."""
    return {
        "statistic": DEFAULT.statistic,
        "rank_by": "--statistic",  # None: the statistic
        "rule": DEFAULT.rule,
        "warmup": str(DEFAULT.warmup),
        "alpha": f"{get_rule('welch').alpha:g}",
        "max_instances": str(DEFAULT.max_instances),
        "instances_per_round": str(DEFAULT.instances_per_round),
        "n_winners": str(DEFAULT.n_winners),
        "final_instances": str(DEFAULT.final_instances),
        "elites": str(DEFAULT.elites),
        "seed": str(DEFAULT.seed),
        "merge": DEFAULT.merge,
        "waste": f"{DEFAULT_WASTE:g}",
        "over": DEFAULT.over,
    }


def states_default(text: str, value: str) -> bool:
    """Whether ``text`` says that ``value`` is the default, in one of the docs' phrasings."""
    forms = (
        f"default `{value}`", f"default {value}", f"default: {value}", f"`{value}` (default",
        f"{value} (default", f"default: `{value}`", f"default ``{value}``",
    )  # fmt: skip
    return any(re.search(re.escape(f) + r"(?![\w.])", text) for f in forms)


def run_parser() -> argparse.ArgumentParser:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["run"]


def test_every_race_default_in_run_help_is_race_settings():
    want, seen = expected(), set()
    for action in run_parser()._actions:
        setting = RACE_OPTIONS.get(action.dest)
        if setting is None or not action.help or "default" not in action.help:
            continue
        if setting == "fidelity":  # "default: one stage at each model's own train_size"
            assert DEFAULT.fidelity is None and "own train_size" in action.help
            continue
        assert states_default(action.help, want[setting]), (action.dest, action.help)
        seen.add(setting)
    assert {"statistic", "rule", "warmup", "max_instances", "alpha", "seed", "merge"} <= seen
    help_text = run_parser().format_help()
    assert f"the built-in space: {BUILTIN_RACE['max_instances']}" in help_text
    assert f"at most {BUILTIN_RACE['max_instances']} instances per model" in help_text


def test_every_default_in_the_cli_options_table_is_race_settings():
    want, seen = expected(), set()
    text = (ROOT / "docs" / "cli.md").read_text()
    for row in (line for line in text.splitlines() if line.startswith("| `--")):
        cells = re.split(r"(?<!\\)\|", row)  # "auto\|none" is one cell
        options = re.findall(r"`--([a-z-]+)", cells[1])
        meaning = "|".join(cells[2:])
        for option in options:
            setting = RACE_OPTIONS.get(option.replace("-", "_"))
            if setting not in want or "default" not in meaning:
                continue
            if setting == "rank_by":
                assert "default: the statistic" in meaning, row
            else:
                assert states_default(meaning, want[setting]), (option, row, want[setting])
            seen.add(setting)
        if "--fidelity" in row:
            assert DEFAULT.fidelity is None and "one stage at each model's own" in row
    assert {"statistic", "rule", "warmup", "max_instances", "elites", "seed", "merge"} <= seen
    assert {"waste", "instances_per_round", "final_instances", "rank_by"} <= seen
    assert f"the built-in space: {BUILTIN_RACE['max_instances']}" in text


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_statements_of_the_default_statistic(doc):
    text = doc.read_text()
    for m in re.finditer(r"default statistic is `?\"?([\w+<>]+)", text):
        assert m.group(1) == DEFAULT.statistic, (doc.name, m.group(0))
    for m in re.finditer(r"halves the models on \*?`?([\w+]+)", text):
        assert m.group(1) == DEFAULT.statistic, (doc.name, m.group(0))
    for m in re.finditer(r"Default ``\"(\w+)\"``, the worst instance", text):
        assert m.group(1) == DEFAULT.statistic


_ROUND = re.compile(
    r"^round \d+( \(warm-up\)| \(n=\d+\)| \(final race\))?: \d+ -> \d+ models, trained \d+ "
    r"instances in [\dms.]+(, compiling [\dms.]+ alongside)?, \d+ in all, \d+ instance-steps/s"
    r"(, ETA [~<][\dms.]+)?$"
)


def sample_outputs():
    """Every fenced block of the docs that shows what ``jrobust run`` printed."""
    for doc in DOCS:
        block, inside = [], False
        for line in doc.read_text().splitlines():
            if line.startswith("```"):
                if inside and (
                    "winner: model" in "\n".join(block)
                    or any("instance-steps/s" in b for b in block)
                ):
                    yield doc.name, "\n".join(block)
                block, inside = [], not inside
            elif inside:
                block.append(line)


def test_the_docs_show_sample_outputs():
    names = {name for name, _ in sample_outputs()}
    assert {"tutorial.md", "cli.md"} <= names


@pytest.mark.parametrize("doc_block", list(sample_outputs()), ids=lambda d: d[0])
def test_sample_outputs_have_todays_form_and_statistic(doc_block):
    name, block = doc_block
    command = next((ln for ln in block.splitlines() if ln.startswith("$ jrobust run")), "")
    statistic = DEFAULT.statistic
    if "--statistic" in command:
        statistic = command.split("--statistic", 1)[1].split()[0]
    for line in block.splitlines():
        if line.startswith("round "):
            assert _ROUND.match(line), (name, line)
        if line.startswith("winner: model"):
            facts = line.split("': ", 1)[1]
            assert facts.split()[0] == statistic, (name, line)
            assert "report: " in line and line.rstrip().endswith("report.html"), (name, line)
        if line.startswith("rule "):
            assert f" on {statistic}," in line, (name, line)
            if command.strip() == "$ jrobust run":
                assert f"at most {BUILTIN_RACE['max_instances']} instances" in line
