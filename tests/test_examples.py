"""The examples of examples/ run end to end in their --smoke settings and write their run folders.

Each example is imported by path and its ``main(argv)`` called in this process, so the programs
the suite has compiled are reused where shapes agree. The numbers of a smoke run are meaningless
(a few tiny instances); these tests check the plumbing: exit codes, files, tables, and the
invariants each example relies on.
"""

import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import jrobust

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
RUN_FILES = (
    "config.toml",
    "result.json",
    "ledger.parquet",
    "summary.md",
    "report.html",
    "path.png",
    "distributions.png",
)


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(
        f"jrobust_example_{name}", EXAMPLES / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module", autouse=True)
def isolated_cache(tmp_path_factory):
    """Generated calorimeter events go to a fresh cache folder (shared by the examples here)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("JROBUST_CACHE_DIR", str(tmp_path_factory.mktemp("jrobust-cache")))
    yield
    mp.undo()


def run(name: str, out: Path, *more: str) -> dict:
    code = load_example(name).main(["--smoke", "--out", str(out), "-q", *more])
    assert code == 0
    return json.loads((out / "example.json").read_text())


def assert_run_folder(folder: Path, *extra: str) -> None:
    for f in (*RUN_FILES, *extra):
        assert (folder / f).is_file(), f"{folder} lacks {f}"
        if f.endswith(".png"):
            assert (folder / f).read_bytes()[:8] == PNG_MAGIC
    assert "<img" in (folder / "report.html").read_text()


@pytest.mark.parametrize("name", ["energy", "position"])
def test_calorimeter_examples(name, tmp_path):
    measured = run(name, tmp_path)
    assert_run_folder(tmp_path, f"{name}_models.png", "example.md")
    assert measured["mode"] == "smoke"
    models = measured["models"]
    assert len(models) == 2 and {m["family"] for m in models} == set(
        load_example(name).LABELS.values()
    )
    for m in models:
        assert m["instances"] == 4 and np.isfinite(m["median"]) and m["std"] >= 0
    parametric = [v for k, v in measured["baselines"].items() if k.startswith("parametric")][0]
    # the baselines on 1500 events of data set B are physical numbers even in a smoke run
    assert 0.01 < parametric < (0.1 if name == "energy" else 1.0)
    # the extra instances continue the race's ledger: the first ones are the race's own
    ledger = pd.read_parquet(tmp_path / "ledger.parquet")
    assert set(ledger.status) == {"ok"}
    for m in models:
        raced = ledger[ledger.model_id == m["model_id"]].sort_values("instance").loss.to_numpy()
        compared = np.asarray(measured["losses"][m["family"]])
        assert 2 <= raced.size < compared.size
        np.testing.assert_array_equal(compared[: raced.size], raced)
        assert np.unique(compared).size == compared.size  # new instances, not copies
    assert "jrobust run --space" in (tmp_path / "summary.md").read_text()


def test_sample_size_example(tmp_path):
    measured = run("sample_size", tmp_path)
    assert_run_folder(tmp_path, "sample_size.png", "sample_size_stats.png", "sample_size.parquet")
    frame = pd.read_parquet(tmp_path / "sample_size.parquet")
    assert sorted(frame.train_size.unique()) == [64, 128]
    assert frame.groupby(["model", "train_size"]).size().eq(3).all()
    table = pd.DataFrame(measured["table"])
    assert len(table) == 4 and {"mean", "std", "pd"} <= set(table.columns)
    # a fixed step budget: every size of a model trains about the same number of steps
    for _, g in table.groupby("model"):
        assert g.steps.max() - g.steps.min() <= g.steps.max() // 2


def test_init_vs_sampling_example(tmp_path):
    measured = run("init_vs_sampling", tmp_path)
    assert_run_folder(tmp_path, "init_vs_sampling.png")
    ledger = pd.read_parquet(tmp_path / "ledger.parquet")
    losses = {m: g.sort_values("instance").loss.to_numpy() for m, g in ledger.groupby("model_id")}
    assert [v["variant"] for v in measured["variants"]] == ["init only", "sample only", "both"]
    # lane 0 of every variant is the same training (model hash h, instance 0, subset 0)
    np.testing.assert_allclose(losses[0][0], losses[1][0], rtol=1e-6)
    np.testing.assert_allclose(losses[0][0], losses[2][0], rtol=1e-6)
    # and the other lanes differ: each variant varies something
    for m in range(3):
        assert np.unique(np.round(losses[m], 7)).size > 1


def test_digits_example(tmp_path):
    measured = run("digits", tmp_path)
    assert_run_folder(tmp_path)
    ledger = pd.read_parquet(tmp_path / "ledger.parquet")
    assert measured["n_trainings"] == len(ledger) <= measured["exhaustive_trainings"]
    # the reported winner and its error are the ledger's: its mean over its own instances
    winner = ledger[ledger.model_id == measured["winner_id"]]
    assert len(winner) == measured["winner_instances"]
    np.testing.assert_allclose(winner.loss.mean(), measured["winner_mean_error"], rtol=1e-6)
    assert (
        set(ledger.status) == {"ok"}
        and measured["winner_instances"] == ledger.groupby("model_id").size().max()
    )  # the winner is the model that lasted longest


def test_transformations_example(tmp_path):
    measured = run("transformations", tmp_path)
    assert_run_folder(tmp_path, "transforms.png", "transformations.png", "example.md")
    module = load_example("transformations")
    smoke = module.MODES["smoke"]
    n_sets = len(smoke["angles"]) + len(smoke["factors"])
    assert [tuple(p) for p in measured["transforms"]] == [
        *(("rotation", float(a)) for a in smoke["angles"]),
        *(("scale", float(f)) for f in smoke["factors"]),
    ]
    ledger = pd.read_parquet(tmp_path / "ledger.parquet")
    base = ledger[ledger["transform"] == "none"]
    assert len(base) == measured["race"]["n_trainings"] and len(ledger) == len(base) * (1 + n_sets)
    # the race judged each model by its worst transformed test set (mean over its instances):
    # recomputed from the ledger, the winner has the smallest such value among the survivors
    sets = ledger[ledger["transform"] != "none"]
    worst = sets.groupby(["model_id", "transform", "param"]).loss.mean().groupby("model_id").max()
    result = jrobust.load_run(tmp_path)
    assert result.over == "transforms" and result.winner_id == measured["race"]["winner_id"]
    summary = result.summary(top=None).set_index("model_id")
    np.testing.assert_allclose(summary.statistic.to_numpy(), worst[summary.index].to_numpy())
    alive = summary.index[summary.alive]
    assert worst[alive].idxmin() == result.winner_id
    # the study's measures, per family, from its comparison grid
    fams = {r["family"]: r for r in measured["families"]}
    assert set(fams) == set(module.FAMILIES)
    for r in fams.values():
        assert r["instances"] == smoke["compare"]
        assert set(r["error_by_angle"]) == {f"{a:g}" for a in smoke["angles"]}
        assert r["angle_spread_median"] >= 0 and np.isfinite(r["scale_ratio_mean"])
        # rotation by 0 and scale 1 are the untransformed test set
        assert r["error_by_angle"]["0"] == pytest.approx(r["error_by_factor"]["1"])
    f = measured["findings"]
    assert f["rotation_augmentation_narrows_angle_spread"] == (
        fams["cnn+rotate"]["angle_spread_median"] < fams["cnn"]["angle_spread_median"]
    )


def test_transformations_on_mnist_without_data_fails_fast_with_instructions(tmp_path, capsys):
    start = time.perf_counter()
    code = load_example("transformations").main(
        [
            "--data",
            "tfds:mnist",
            "--data-dir",
            str(tmp_path / "nothing"),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and time.perf_counter() - start < 10
    assert "tfds build mnist" in err and not (tmp_path / "o").exists()


def test_cifar10_smoke_on_a_local_tfds_stand_in(tmp_path):
    pytest.importorskip("tensorflow_datasets")
    pytest.importorskip("PIL")
    measured = run("cifar10", tmp_path)
    (race,) = measured["races"]
    assert race["train_size"] == 48 and race["n_trainings"] <= race["exhaustive"]
    assert_run_folder(tmp_path / "train_48")
    assert (tmp_path / "example.json").is_file()
    assert (tmp_path / "cifar10_winners.png").read_bytes()[:8] == PNG_MAGIC


def test_cifar10_without_data_fails_fast_with_instructions(tmp_path, capsys):
    start = time.perf_counter()
    code = load_example("cifar10").main(
        ["--data-dir", str(tmp_path / "nothing"), "--out", str(tmp_path / "out")]
    )
    err = capsys.readouterr().err
    assert code == 2 and time.perf_counter() - start < 10
    assert "tfds build cifar10" in err and "--smoke" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "name",
    [
        "energy",
        "position",
        "sample_size",
        "init_vs_sampling",
        "cifar10",
        "digits",
        "transformations",
    ],
)
def test_every_example_has_main_smoke_and_full(name):
    module = load_example(name)
    assert callable(module.main) and module.__doc__
    assert set(module.MODES) == {"smoke", "default", "full"}
    smoke, full = module.MODES["smoke"], module.MODES["full"]
    common = set(smoke) & set(full)
    assert any(smoke[k] != full[k] for k in common)  # the same knobs, other values
    assert module.parse_args(["--smoke"]).smoke and module.parse_args(["--full"]).full
    with pytest.raises(SystemExit) as exc:
        module.main(["--help"])
    assert exc.value.code == 0
