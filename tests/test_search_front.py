"""A search's front: ``SelectionResult.iterations`` in the run folder (iterations.parquet, the
cross-checks on read), the iterations figure, the report and summary, and ``jrobust run`` on a
space file with ranges. No JAX training: the search results are races of an evaluator given a
planted iterations table (the search itself is tested in tests/test_search.py)."""

import dataclasses
import re
import tomllib
from pathlib import Path

import matplotlib.colors
import matplotlib.image
import numpy as np
import pandas as pd
import pytest

import jrobust
from jrobust import runfolder
from jrobust._src import plots
from jrobust._src.cli import main
from jrobust._src.result import ITERATION_COLUMNS
from jrobust._src.space.files import build_space

ROOT = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# Two iterations of a search over three parameters: four candidates sampled in the first
# (ids 0-3; elites 2 and 0 kept), two in the second (ids 4, 5; elites 5 and 2 kept).
SAMPLED = [
    {"learning_rate": 1e-3, "hidden": 6, "optimizer": "adam"},
    {"learning_rate": 5e-2, "hidden": 16, "optimizer": "sgd"},
    {"learning_rate": 3e-3, "hidden": 8, "optimizer": "adam"},
    {"learning_rate": 2e-4, "hidden": 12, "optimizer": "sgd"},
    {"learning_rate": 2e-3, "hidden": 9, "optimizer": "adam"},
    {"learning_rate": 4e-3, "hidden": 10, "optimizer": "adam"},
]
WINNER = 5

SPACE_FILE = """
[base]
model = "mlp"
hidden = [8]
epochs = 1
train_size = 200
batch_size = 50
loss = "mse"
metric = "rmse"
target = "energy"

[choices]
learning_rate = { loguniform = [1e-4, 1e-1] }
hidden = { intrange = [4, 16] }
optimizer = ["adam", "sgd"]

[race]
warmup = 2
max_instances = 4
"""


def space_tables():
    return tomllib.loads(SPACE_FILE)


def ranged_space():
    doc = space_tables()
    return build_space([{"base": doc["base"], "choices": doc["choices"]}])


def evaluator(models, instances):
    """Model m: mean 1 + 0.1 |m - WINNER| and a small spread; deterministic per instance."""
    return 1.0 + 0.1 * np.abs(models - WINNER) + 0.01 * np.sin(12.9898 * instances + models)


def planted_iterations():
    rows = []
    for iteration, candidates, elites, restarted in (
        (1, "0,1,2,3", "2,0", False),
        (2, "4,5", "5,2", True),
    ):
        best = SAMPLED[int(elites.split(",")[0])]
        for parameter, kind, log, width in (
            ("learning_rate", "float", True, 0.5 if iteration == 1 else 0.3),
            ("hidden", "int", False, 0.5 if iteration == 1 else 0.35),
            ("optimizer", "categorical", False, float("nan")),
        ):
            centre = repr(best[parameter]) if kind == "categorical" else best[parameter]
            rows.append(
                {
                    "iteration": iteration,
                    "parameter": parameter,
                    "kind": kind,
                    "log": log,
                    "centre": centre,
                    "width": width,
                    "candidates": candidates,
                    "elites": elites,
                    "restarted": restarted,
                }
            )
    frame = pd.DataFrame(rows)
    frame["centre"] = frame["centre"].astype(object)
    return frame


def search_like(space=None, **race_settings):
    """A result as ``jrobust.search`` returns it: a race of the sampled models (by an
    evaluator) with the planted iterations table."""
    space = space if space is not None else ranged_space()
    configs = [space.config_of(values) for values in SAMPLED]
    raced = jrobust.race(configs, evaluator=evaluator, warmup=2, max_instances=4, **race_settings)
    assert raced.winner_id == WINNER  # the planted table keeps the winner among its elites
    return dataclasses.replace(raced, iterations=planted_iterations(), configs=configs)


@pytest.fixture(scope="module")
def searched():
    return search_like()


def config_dict():
    doc = space_tables()
    return {
        "race": doc["race"],
        "space": [{"base": doc["base"], "choices": doc["choices"]}],
    }


def is_png(path):
    assert path.read_bytes().startswith(PNG_MAGIC), path
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


# ------------------------------------------------------------------------------ the run folder
def test_iterations_round_trip_through_the_run_folder(searched, tmp_path):
    folder = jrobust.save_run(searched, tmp_path / "run", config_dict())
    stored = pd.read_parquet(folder / "iterations.parquet")
    assert tuple(stored.columns) == ITERATION_COLUMNS
    loaded = jrobust.load_run(folder)
    pd.testing.assert_frame_equal(loaded.iterations, searched.iterations)
    assert loaded.iterations["centre"].tolist()[:3] == [3e-3, 8, "'adam'"]  # types restored
    # a search's sampled models come back from result.json (the space cannot list them)
    assert loaded.configs == searched.configs and loaded.winner == searched.configs[WINNER]
    assert "loguniform" in (folder / "config.toml").read_text()
    is_png(folder / "iterations.png")


def test_a_width_centre_given_as_a_tuple_round_trips(searched, tmp_path):
    frame = planted_iterations()
    frame["centre"] = pd.Series(
        [(c,) if p == "hidden" else c for c, p in zip(frame.centre, frame.parameter, strict=True)],
        dtype=object,
    )
    folder = jrobust.save_run(
        dataclasses.replace(searched, iterations=frame), tmp_path / "run", config_dict()
    )
    loaded = jrobust.load_run(folder).iterations
    pd.testing.assert_frame_equal(loaded, frame)
    assert loaded.centre[1] == (8,)


def test_a_race_folder_has_no_iterations(tmp_path):
    raced = jrobust.race(6, evaluator=evaluator, warmup=2, max_instances=4)
    assert raced.iterations is None
    folder = jrobust.save_run(raced, tmp_path / "race")
    assert not (folder / "iterations.parquet").exists()
    assert not (folder / "iterations.png").exists()
    assert jrobust.load_run(folder).iterations is None
    html = (folder / "report.html").read_text()
    summary = (folder / "summary.md").read_text()
    assert 'alt="iterations"' not in html and "<h2>Iterations</h2>" not in html
    assert "iterations.png" not in summary and "## Iterations" not in summary


def test_a_race_saved_over_a_search_folder_drops_its_iterations(searched, tmp_path):
    folder = jrobust.save_run(searched, tmp_path / "run", config_dict())
    raced = jrobust.race(6, evaluator=evaluator, warmup=2, max_instances=4)
    jrobust.save_run(raced, folder, {})
    assert not (folder / "iterations.parquet").exists()
    assert not (folder / "iterations.png").exists()
    assert jrobust.load_run(folder).iterations is None


def _tampered(searched, tmp_path, change):
    folder = jrobust.save_run(searched, tmp_path / "run", config_dict())
    frame = pd.read_parquet(folder / "iterations.parquet")
    change(frame)
    frame.to_parquet(folder / "iterations.parquet", index=False)
    return folder


def _winner_not_elite(frame):
    frame["elites"] = frame["elites"].replace("5,2", "2,0")


def _unknown_model(frame):
    frame["candidates"] = frame["candidates"].replace("4,5", "4,5,9")


def _model_not_sampled(frame):
    frame["candidates"] = frame["candidates"].replace("4,5", "4")


def _parameters_disagree(frame):
    frame.loc[frame.index[-1], "elites"] = "5,4"  # the optimizer's row of iteration 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_winner_not_elite, "names model 5 as the winner, but the last iteration"),
        (_unknown_model, "names models [9] in iteration 2"),
        (_model_not_sampled, "samples 5 models"),
        (_parameters_disagree, "different models per parameter"),
    ],
)
def test_iterations_that_disagree_with_the_folder_are_refused(searched, tmp_path, change, message):
    folder = _tampered(searched, tmp_path, change)
    with pytest.raises(runfolder.RunFolderMismatch, match="disagree") as caught:
        jrobust.load_run(folder)
    assert message in str(caught.value)


def test_iterations_of_other_parameters_than_the_space_are_refused(searched, tmp_path):
    folder = jrobust.save_run(searched, tmp_path / "run", config_dict())
    config = config_dict()
    config["space"][0]["choices"]["l2"] = {"uniform": [0.0, 0.1]}
    runfolder.write_config(folder, config)
    with pytest.raises(runfolder.RunFolderMismatch, match="l2"):
        jrobust.load_run(folder)


def test_a_damaged_iterations_file_is_named(searched, tmp_path):
    folder = _tampered(searched, tmp_path, lambda f: f.pop("width"))
    with pytest.raises(runfolder.RunFolderError, match="iterations.parquet is damaged"):
        jrobust.load_run(folder)
    (folder / "iterations.parquet").write_bytes(b"not parquet")
    with pytest.raises(runfolder.RunFolderError, match="iterations.parquet is damaged"):
        jrobust.load_run(folder)


def test_an_unfinished_search_folder_says_how_to_continue(tmp_path, capsys):
    folder = tmp_path / "run"
    runfolder.write_config(folder, config_dict())  # a search stopped before its result
    with pytest.raises(FileNotFoundError, match="search that has not finished"):
        jrobust.load_run(folder)
    assert main(["report", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"jrobust run --resume {folder}" in err


# ------------------------------------------------------------------------------ the figure
def _winner_points(ax):
    red = matplotlib.colors.to_rgba(plots.WINNER_COLOR)
    out = []
    for artist in ax.collections:
        colours = artist.get_facecolors()
        if len(colours) and all(np.allclose(c, red) for c in colours):
            out.append(artist.get_offsets())
    return out


def test_the_iterations_figure(searched, tmp_path):
    fig = plots.plot_iterations(searched, path=tmp_path / "it.png")
    is_png(tmp_path / "it.png")
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["learning_rate", "hidden", "optimizer"]
    assert [ax.get_yscale() for ax in axes] == ["log", "linear", "linear"]
    # the winner (sampled in iteration 2, an elite after it) is red, at its own value
    for ax, value in zip(axes, (4e-3, 10, 0), strict=True):
        (points,) = _winner_points(ax)
        assert np.allclose(points, [[2, value], [2, value]])
    # nothing else is red: the other sampled models are grey
    grey = matplotlib.colors.to_rgba(plots.OTHER_COLOR)
    sampled = [a for a in axes[0].collections if a.get_label() == "sampled"][0]
    assert all(np.allclose(c[:3], grey[:3]) for c in sampled.get_facecolors())
    assert np.allclose(
        sampled.get_offsets(), [[1, 1e-3], [1, 5e-2], [1, 3e-3], [1, 2e-4], [2, 2e-3], [2, 4e-3]]
    )
    elites = [a for a in axes[1].collections if a.get_label() == "elites"][0]
    assert np.allclose(elites.get_offsets(), [[1, 8], [1, 6], [2, 10], [2, 8]])
    # a categorical is drawn as the index of its choices, named on the axis
    assert [t.get_text() for t in axes[2].get_yticklabels()] == ["'adam'", "'sgd'"]
    assert len(searched.plot_iterations().axes) == 3


def test_the_iterations_figure_of_a_race_is_a_clear_error():
    raced = jrobust.race(4, evaluator=evaluator, warmup=2, max_instances=4)
    with pytest.raises(ValueError, match="no iterations"):
        raced.plot_iterations()


def test_report_and_summary_show_the_iterations(searched, tmp_path):
    folder = jrobust.save_run(searched, tmp_path / "run", config_dict())
    html = (folder / "report.html").read_text()
    summary = (folder / "summary.md").read_text()
    # the figure beside the elimination path, then the iterations table
    assert html.index('alt="path"') < html.index('alt="iterations"') < html.index("<h2>Models")
    assert "<h2>Iterations</h2>" in html and "Search iterations" in html
    figures = summary[summary.index("## Figures") :]
    assert figures.index("![path](path.png)") < figures.index("![iterations](iterations.png)")
    assert "## Iterations" in summary and "- search: 6 models sampled in 2 iterations" in summary
    assert "exhaustive" not in summary and "fewer than exhaustive" not in html  # no grid
    table = summary[summary.index("## Iterations") : summary.index("## Rounds")]
    assert "| 2 | 2 | 4, 5 | 5, 2 | yes |" in table  # iteration, sampled, ids, elites, restarted
    assert "0.004 (width 0.3)" in table and "'adam'" in table
    # a categorical's centre is a repr: escaped as everything else in the HTML
    assert "&#x27;adam&#x27;" in html


def test_report_command_rebuilds_a_search_folder(searched, tmp_path, capsys):
    folder = jrobust.save_run(searched, tmp_path / "run", config_dict())
    (folder / "iterations.png").unlink()
    assert main(["report", str(folder)]) == 0
    capsys.readouterr()
    is_png(folder / "iterations.png")


# ------------------------------------------------------------------------------ the command
@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("search-cli")
    rng = np.random.default_rng(0)
    x = rng.random((400, 6, 6, 1)).astype(np.float32)
    y = 1.0 + x.mean(axis=(1, 2, 3)) + 0.01 * rng.standard_normal(400)
    np.savez(folder / "tiny.npz", x=x, y=y.astype(np.float32), target_names=np.array(["energy"]))
    (folder / "ranged.toml").write_text(SPACE_FILE)
    return folder


def test_a_ranged_space_needs_a_budget_before_any_data_is_loaded(data, capsys):
    code = main(["run", "--space", str(data / "ranged.toml"), "--data", "npz:/no/such.npz"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert "has ranges" in err and "--budget N, e.g. --budget 300" in err  # not the data's


class FakeSearch:
    """Stands in for ``jrobust.search``: records its arguments and returns a search-like
    result of the space it is given."""

    def __init__(self):
        self.calls = []

    def __call__(self, space, population=None, **kwargs):
        self.calls.append({"space": space, "population": population, **kwargs})
        kwargs["progress"]({"iteration": 1, "iterations": 2, "round": 1, "models": 4,
                            "survivors": 4, "trained": 8, "n_trainings": 8,
                            "budget": kwargs["budget"]})  # fmt: skip
        return search_like(space)


def test_run_searches_a_space_file_with_ranges(data, tmp_path, monkeypatch, capsys):
    fake = FakeSearch()
    monkeypatch.setattr(jrobust, "search", fake, raising=False)
    out = tmp_path / "search"
    argv = ["run", "--space", str(data / "ranged.toml"), "--data", f"npz:{data / 'tiny.npz'}"]
    code = main([*argv, "--budget", "40", "--seed", "3", "--out", str(out)])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    (call,) = fake.calls
    assert call["budget"] == 40 and call["seed"] == 3 and call["checkpoint_dir"] == out
    assert not call["space"].is_finite and list(call["space"].parameters) == [
        "learning_rate",
        "hidden",
        "optimizer",
    ]
    assert call["population"].input_shape == (6, 6, 1)
    # the budget is the search's: the races inside it get their shares
    assert call["settings"].budget is None and call["settings"].warmup == 2
    line = "iteration 1/2, round 1: 4 of 4 models left, trained 8 instances, 8 of 40 trainings"
    assert line in printed.out
    assert f"winner: model {WINNER}" in printed.out
    # config.toml keeps the ranges and the budget: --resume and --space rerun the search
    config = tomllib.loads((out / "config.toml").read_text())
    assert config["space"][0]["choices"]["learning_rate"] == {"loguniform": [1e-4, 1e-1]}
    assert config["space"][0]["choices"]["hidden"] == {"intrange": [4, 16]}
    assert config["race"]["budget"] == 40
    is_png(out / "iterations.png")
    loaded = jrobust.load_run(out)
    pd.testing.assert_frame_equal(loaded.iterations, planted_iterations())
    # --resume continues the search in its folder, with the folder's own budget
    assert main(["run", "--resume", str(out)]) == 0, capsys.readouterr().err
    assert fake.calls[1]["checkpoint_dir"] == out and fake.calls[1]["budget"] == 40
    capsys.readouterr()


def test_bad_input_found_by_the_search_is_a_usage_error(data, tmp_path, monkeypatch, capsys):
    from jrobust._src.checks import CheckError

    def refuse(space, population=None, **kwargs):
        raise CheckError("budget=3 trainings cannot cover one iteration: raise it to at least 8")

    monkeypatch.setattr(jrobust, "search", refuse, raising=False)
    argv = ["run", "--space", str(data / "ranged.toml"), "--data", f"npz:{data / 'tiny.npz'}"]
    assert main([*argv, "--budget", "3", "--out", str(tmp_path / "s"), "--json"]) == 2
    printed = capsys.readouterr()
    assert printed.err.count("\n") == 1 and "at least 8" in printed.err and printed.out == ""


def test_space_command_says_how_to_search(data, capsys):
    path = data / "ranged.toml"
    assert main(["space", str(path), "--data", f"npz:{data / 'tiny.npz'}"]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith(f"search it: jrobust run --space {path} --budget N")


# ------------------------------------------------------------------------------ docs/search.md
def _blocks(text, language):
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def test_the_search_page_shows_real_code_and_links():
    text = (ROOT / "docs" / "search.md").read_text()
    headings = [line for line in text.splitlines() if re.match(r"##? ", line)]
    assert headings == [
        "# Search",
        "## Concepts",
        "## The sampling model",
        "## Ranges in a space",
        "## From the command line",
        "## Optuna as a front end",
        "## When to use a grid race, a search, or Optuna",
    ]
    python = _blocks(text, "python")[0]  # the search's example (the Optuna section has its own)
    compile(python, "docs/search.md", "exec")
    before, _ = python.split("population = ", 1)  # the space, without loading data or searching
    scope: dict = {}
    exec(before, scope)
    space = scope["space"]
    assert not space.is_finite
    (toml,) = _blocks(text, "toml")
    doc = tomllib.loads(toml)
    from_file = build_space([{"base": doc["base"], "choices": doc["choices"]}])
    assert list(from_file.parameters) == list(space.parameters)
    for target, anchor in re.findall(r"\]\(([\w./-]+\.md)(?:#([\w-]+))?\)", text):
        page = (ROOT / "docs" / target).read_text()
        assert target and page, target
        if anchor:
            slugs = {
                re.sub(r"[^\w\- ]", "", h.lstrip("#").strip().lower()).replace(" ", "-")
                for h in page.splitlines()
                if h.startswith("#")
            }
            assert anchor in slugs, (target, anchor)
    assert "docs/search.md" in (ROOT / "README.md").read_text()
    assert "(search.md)" in (ROOT / "docs" / "concepts.md").read_text()


def test_run_searches_for_real_and_the_folder_reads_back(data, tmp_path, capsys):
    """The command with the real search (no stand-in): the budget holds, the run folder has the
    iterations, and they name the models the ledger trained."""
    space_file = tmp_path / "lr.toml"
    space_file.write_text(
        SPACE_FILE.replace("hidden = { intrange = [4, 16] }\n", "").replace(
            'optimizer = ["adam", "sgd"]', 'optimizer = ["adam"]'
        )
    )
    out = tmp_path / "real"
    argv = ["run", "--space", str(space_file), "--data", f"npz:{data / 'tiny.npz'}"]
    code = main([*argv, "--budget", "24", "--seed", "1", "--out", str(out)])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    loaded = jrobust.load_run(out)
    assert 0 < loaded.n_trainings <= 24
    assert len(loaded.ledger) == loaded.n_trainings
    iterations = loaded.iterations
    assert iterations is not None and set(iterations["parameter"]) == {"learning_rate", "optimizer"}
    sampled = sorted({m for ids in iterations["candidates"] for m in map(int, ids.split(","))})
    assert sampled == list(range(len(loaded.configs)))
    assert set(loaded.ledger["model_id"]) <= set(sampled)
    assert all(1e-4 <= c.learning_rate <= 1e-1 for c in loaded.configs)
    assert loaded.winner == loaded.configs[loaded.winner_id]
    is_png(out / "iterations.png")
    html = (out / "report.html").read_text()
    assert 'alt="iterations"' in html and "<h2>Iterations</h2>" in html
    assert "## Iterations" in (out / "summary.md").read_text()
