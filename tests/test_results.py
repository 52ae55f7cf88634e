"""Run folders, figures and space files: no JAX training here (races use a synthetic evaluator)."""

import json
import re
import tomllib

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

import jrobust
from jrobust import plots, results
from jrobust.select import CHECKPOINT_FILE
from jrobust.spaces import (
    SpaceError,
    build_space,
    default_spec,
    parse_space_text,
    to_toml,
    with_overrides,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SPREAD = np.linspace(0.05, 0.5, 8)


def evaluator(models, instances):
    """Model m: mean 1 + 0.1 m, spread SPREAD[m]; deterministic in (model, instance)."""
    return 1.0 + 0.1 * models + SPREAD[models] * np.sin(12.9898 * instances + 78.233 * models)


@pytest.fixture(scope="module")
def raced():
    return jrobust.race(8, evaluator=evaluator, statistic="q3+iqr", rule="halving", warmup=3)


def _is_png(path):
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC), path
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    return image


def test_save_and_load_round_trip(raced, tmp_path):
    config = {"race": {"statistic": "q3+iqr", "rule": "halving", "warmup": 3}}
    folder = results.save_run(raced, tmp_path / "run", config, csv=True, info={"data": "synthetic"})
    for name in (
        "config.toml",
        "result.json",
        "summary.md",
        "report.html",
        "path.png",
        "distributions.png",
    ):
        assert (folder / name).is_file(), name
    for table in results.TABLES:
        frame = pd.read_parquet(folder / f"{table}.parquet")
        assert len(frame) == len(getattr(raced, table))
        assert (folder / f"{table}.csv").is_file()
    _is_png(folder / "path.png")
    _is_png(folder / "distributions.png")
    back = results.load_run(folder)
    assert back.winner_id == raced.winner_id and back.winners == raced.winners
    assert back.n_trainings == raced.n_trainings
    pd.testing.assert_frame_equal(back.ledger, raced.ledger, check_dtype=False)
    assert [list(e) for e in back.history.eliminated] == [list(e) for e in raced.history.eliminated]
    assert tomllib.loads((folder / "config.toml").read_text())["race"]["rule"] == "halving"
    payload = json.loads((folder / "result.json").read_text())
    assert payload["winner_id"] == raced.winner_id and payload["info"]["data"] == "synthetic"
    pd.testing.assert_frame_equal(back.summary(), raced.summary(), check_dtype=False)


def test_report_is_self_contained(raced, tmp_path):
    folder = results.save_run(raced, tmp_path, None)
    page = (folder / "report.html").read_text()
    winner_name = raced.models.name[raced.winner_id]
    assert winner_name in page and "Winner" in page
    assert page.count("data:image/png;base64,") == 2
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page), (
        "the report must not load anything"
    )
    summary = (folder / "summary.md").read_text()
    assert f"model {raced.winner_id}" in summary and "![path](path.png)" in summary


def test_summary_table_puts_the_winner_first(raced):
    table = results.summary_table(raced, top=None)
    assert table.model_id.iloc[0] == raced.winner_id
    assert list(table["rank"]) == list(range(1, len(table) + 1))
    assert {"q3+iqr", "mean", "std", "pd", "instances"} <= set(table.columns)


def test_unfinished_run_loads_from_its_checkpoint(tmp_path):
    config = {"race": {"statistic": "std", "rule": "halving", "warmup": 3}}
    results.write_config(tmp_path, config)
    partial = jrobust.race(
        8,
        evaluator=evaluator,
        statistic="std",
        warmup=3,
        checkpoint_dir=tmp_path,
        _stop_after_rounds=2,
    )
    assert (tmp_path / CHECKPOINT_FILE).is_file()
    back = results.load_run(tmp_path)
    assert back.timing["finished"] is False
    assert back.n_trainings == partial.n_trainings
    pd.testing.assert_frame_equal(back.ledger, partial.ledger, check_dtype=False)
    results.write_figures(back, tmp_path)
    page = results.write_report(back, tmp_path, {"finished": False}).read_text()
    assert "Unfinished run" in page


def test_load_run_of_an_empty_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="holds no jrobust results"):
        results.load_run(tmp_path)


def test_plots(raced, tmp_path):
    fig = plots.plot_distributions(raced, kind="violin", path=tmp_path / "v.png")
    assert len(fig.axes) == 1
    _is_png(tmp_path / "v.png")
    with pytest.raises(ValueError, match="kind"):
        plots.plot_distributions(raced, kind="pie")
    rng = np.random.default_rng(0)
    sizes = np.repeat([100, 300, 1000, 3000], 20)
    frame = pd.DataFrame(
        {
            "train_size": np.tile(sizes, 2),
            "loss": rng.gamma(2.0, 1.0, 160) / np.tile(sizes, 2),
            "model": np.repeat(["a", "b"], 80),
        }
    )
    plots.plot_sample_size(frame, path=tmp_path / "s.png")
    _is_png(tmp_path / "s.png")
    with pytest.raises(ValueError, match="columns"):
        plots.plot_sample_size(frame.drop(columns="loss"))


def test_sample_size_study_is_saved_and_plotted(raced, tmp_path):
    study = pd.DataFrame({"train_size": [100, 100, 1000, 1000], "loss": [0.3, 0.5, 0.2, 0.25]})
    folder = results.save_run(raced, tmp_path, None, sample_size=study)
    _is_png(folder / "sample_size.png")
    assert pd.read_parquet(folder / "sample_size.parquet").shape == (4, 2)
    assert (folder / "report.html").read_text().count("data:image/png;base64,") == 3


# ------------------------------------------------------------------------------ space files
GOOD = """
[base]
model = "mlp"
hidden = [8]
epochs = 2
early_stopping = "none"

[choices]
learning_rate = [1e-3, 1e-2]
optimizer = ["adam", "sgd"]
momentum = [0.0, 0.9]

[when]
momentum = { optimizer = "sgd" }

[race]
rule = "welch"
alpha = 0.1
"""


def test_parse_space_text():
    parsed = parse_space_text(GOOD, "good.toml")
    assert parsed["race"] == {"rule": "welch", "alpha": 0.1}
    space = build_space(parsed["space"])
    # adam models keep the base momentum (0.9), so momentum only varies for sgd: 2 + 4 models
    assert len(space) == 6
    assert all(m.early_stopping is None for m in space)
    assert space[0].architecture.hidden == (8,)
    assert len(set(space.names())) == 6


@pytest.mark.parametrize(
    "text, message",
    [
        ('[base]\nmodel = "mlp"\nepochs = \n', r"bad.toml:3: malformed TOML"),
        (
            '[base]\nmodel = "mlp"\n\n[choices]\nlerning_rate = [1, 2]\n',
            r"bad.toml:5: unknown field 'lerning_rate'",
        ),
        ('[base]\nmodel = "mlpx"\n', r"bad.toml:2: unknown model 'mlpx'"),
        (
            '[base]\nmodel = "mlp"\nepochs = -1\n',
            r"bad.toml:3: .*epochs must be a positive integer",
        ),
        ("[choices]\nepochs = 3\n", r"bad.toml:2: .*must be a non-empty list"),
        ('[race]\nstatistik = "std"\n', r"bad.toml:2: \[race\] unknown setting 'statistik'"),
        ("[bogus]\nx = 1\n", r"bad.toml:1: unknown table or key 'bogus'"),
    ],
)
def test_space_errors_name_file_and_line(text, message):
    with pytest.raises(SpaceError, match=message):
        parse_space_text(text, "bad.toml")


def test_several_spaces_and_overrides():
    spec = default_spec()
    space = build_space(spec)
    assert (len(space), space.n_cohorts) == (16, 2)
    assert space.names()[0].startswith("paper1 lr=")
    fixed = with_overrides(spec, epochs=1, learning_rate=1e-3)
    assert fixed[0]["base"]["epochs"] == 1 and "learning_rate" not in fixed[0]["choices"]
    assert spec[0]["choices"]["learning_rate"], "with_overrides must not change its input"
    assert len(build_space(fixed)) == 4
    position = build_space(default_spec(target="x"))
    assert {m.target for m in position} == {"x"} and {m.name for m in position} == {
        "paper3",
        "paper4",
    }


def test_toml_writer_round_trips():
    doc = {
        "jrobust": {"version": "0.1.0"},
        "race": {"rule": "halving", "alpha": 0.05, "flag": True},
        "space": default_spec()
        + [
            {
                "base": {"model": "cnn", "pool": [2, "global"], "name": 'a "q"'},
                "choices": {"conv": [[16], [16, 32]]},
            }
        ],
    }
    text = to_toml(doc, header="resolved\nconfiguration")
    assert text.startswith("# resolved\n# configuration\n")
    assert tomllib.loads(text) == doc
    assert tomllib.loads(to_toml({"x": {"none": None}})) == {"x": {"none": "none"}}
