"""Real data sets (digits, TFDS), user arrays, the load() dispatcher and preprocessing."""

from __future__ import annotations

import io
import time

import numpy as np
import pandas as pd
import pytest

from jrobust._src.data.sources import digits, from_arrays, from_dataframe, from_npz, load, tfds


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("JROBUST_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds-empty"))


# ---------------------------------------------------------------------------------------- digits
def test_digits_shapes_and_labels():
    pop = digits()
    assert pop.name == "digits"
    assert pop.x.shape == (1797, 8, 8, 1) and pop.x.dtype == np.float32
    assert pop.y.shape == (1797,) and pop.y.dtype == np.int32
    assert pop.num_classes == 10 and pop.is_classification
    assert set(np.unique(pop.y)) == set(range(10))
    assert 0.0 <= pop.x.min() and pop.x.max() == 1.0
    assert np.bincount(pop.y).min() > 170
    assert len(pop.test_index) == round(0.2 * 1797) and len(pop.val_index) == round(0.1 * 1797)
    assert digits(scale=False).x.max() == 16.0
    # fixed splits by seed
    np.testing.assert_array_equal(digits(seed=1).test_index, digits(seed=1).test_index)
    assert not np.array_equal(digits(seed=1).test_index, digits(seed=2).test_index)


# ----------------------------------------------------------------------------------- user arrays
def test_from_arrays_regression_and_classification():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    pop = from_arrays(x, x.sum(axis=1), side=x[:, :1], target_names=["s"], side_names=["x0"])
    assert pop.target_names == ("s",) and pop.side_names == ("x0",)
    assert pop.y.shape == (200, 1) and pop.pool_size == 160
    labels = (x[:, 0] > 0).astype(int)
    cls = from_arrays(x, labels, num_classes=2, test_size=20, val_size=10)
    assert cls.is_classification and cls.pool_size == 170
    assert from_arrays(np.arange(10.0), np.arange(10.0), test_size=2).input_shape == (1,)
    # float labels that are whole numbers are accepted as classes
    assert from_arrays(x, labels.astype(float), num_classes=2).y.dtype == np.int32


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((np.zeros((10, 2)), np.zeros(9)), {}, ValueError, "x has 10 events but y has 9"),
        ((np.zeros((10, 2)), np.zeros(10), np.zeros((9, 1))), {}, ValueError, "side has shape"),
        ((np.array(["a", "b"]), np.zeros(2)), {}, TypeError, "x has dtype <U1"),
        ((np.full((10, 2), np.nan), np.zeros(10)), {}, ValueError, "NaN/inf"),
        ((np.zeros((10, 2)), np.array([0, 1] * 4 + [np.inf, 0])), {}, ValueError, "NaN/inf"),
        ((np.zeros((10, 2)), np.zeros(10)), {"test_size": 20}, ValueError, "test_size=20"),
        ((np.zeros((10, 2)), np.zeros(10)), {"test_size": 1.5}, ValueError, "fraction"),
        ((np.zeros((10, 2)), np.arange(10) + 0.5), {"num_classes": 3}, TypeError, "integer"),
        ((np.zeros((10, 2)), np.arange(10)), {"num_classes": 3}, ValueError, "labels must lie"),
        ((np.zeros((1, 2)), np.zeros(1)), {}, ValueError, "at least 2 events"),
    ],
)
def test_from_arrays_bad_input(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        from_arrays(*args, **kwargs)


def test_from_dataframe():
    rng = np.random.default_rng(1)
    df = pd.DataFrame(
        {
            "a": rng.normal(size=60),
            "b": rng.normal(size=60),
            "e": rng.uniform(1, 10, 60),
            "kind": rng.choice(["gamma", "pi0"], 60),
            "note": ["x"] * 60,
        }
    )
    reg = from_dataframe(df, ["a", "b"], "e", side=["a"], test_size=10)
    assert reg.x.shape == (60, 2) and reg.target_names == ("e",) and reg.side_names == ("a",)
    np.testing.assert_allclose(reg.y[:, 0], df.e, rtol=1e-6)
    assert list(reg.truth.columns) == ["kind", "note"]
    cls = from_dataframe(df, ["a", "b", "e"], "kind")
    assert cls.num_classes == 2 and cls.meta["class_names"] == ["gamma", "pi0"]
    np.testing.assert_array_equal(cls.y, (df.kind == "pi0").to_numpy().astype(int))
    with pytest.raises(KeyError, match=r"columns \['zz'\] are not in the DataFrame"):
        from_dataframe(df, ["a", "zz"], "e")
    with pytest.raises(TypeError, match="feature column 'note' has dtype"):
        from_dataframe(df, ["a", "note"], "e")
    df.loc[3, "b"] = np.nan
    with pytest.raises(ValueError, match=r"missing values \(count\): \{'b': 1\}"):
        from_dataframe(df, ["a", "b"], "e")
    with pytest.raises(TypeError, match="pandas DataFrame"):
        from_dataframe(np.zeros((3, 3)), ["a"], "b")


def test_npz_round_trip_and_load(tmp_path):
    rng = np.random.default_rng(2)
    x, y, side = rng.normal(size=(50, 4, 4, 1)), rng.normal(size=(50, 2)), rng.normal(size=(50, 1))
    path = tmp_path / "mine.npz"
    np.savez(path, x=x, y=y, side=side, target_names=np.array(["u", "v"]), side_names=["s"])
    pop = load(f"npz:{path}", test_size=10)
    assert pop.name == "mine" and pop.target_names == ("u", "v") and pop.side_names == ("s",)
    np.testing.assert_allclose(pop.x, x.astype(np.float32))
    np.testing.assert_allclose(pop.side, side.astype(np.float32))
    assert from_npz(path).n_events == 50
    np.savez(tmp_path / "bad.npz", inputs=x)
    with pytest.raises(KeyError, match=r"must hold arrays 'x' and 'y'; it holds \['inputs'\]"):
        load(f"npz:{tmp_path / 'bad.npz'}")
    with pytest.raises(FileNotFoundError, match="no such .npz file"):
        load(f"npz:{tmp_path / 'nope.npz'}")


def test_load_dispatcher():
    assert load("digits").name == "digits"
    pop = load("calo-a", n_events=1024, cache=False, chunk_size=1024)
    assert pop.name == "calo-A" and pop.x.shape == (1024, 15, 15, 1)
    with pytest.raises(ValueError, match=r"unknown data set 'mnist'; use one of 'calo-a'"):
        load("mnist")
    with pytest.raises(ValueError, match="give a TFDS name"):
        load("tfds:")
    with pytest.raises(ValueError, match="non-empty string"):
        load("")


# ------------------------------------------------------------------------------------------ TFDS
@pytest.fixture(scope="module")
def tiny_tfds(tmp_path_factory):
    """A small data set written in TFDS array_record format by TFDS itself (no TensorFlow)."""
    tfds_lib = pytest.importorskip("tensorflow_datasets")
    data_dir = tmp_path_factory.mktemp("tfds")
    rng = np.random.default_rng(4)
    arrays = {
        "train": (rng.normal(size=(40, 4, 3)).astype(np.float32), rng.integers(0, 3, 40)),
        "test": (rng.normal(size=(12, 4, 3)).astype(np.float32), rng.integers(0, 3, 12)),
    }

    class JrobustTinyTensors(tfds_lib.core.GeneratorBasedBuilder):
        VERSION = tfds_lib.core.Version("1.0.0")

        def _info(self):
            features = tfds_lib.features.FeaturesDict(
                {
                    "features": tfds_lib.features.Tensor(shape=(4, 3), dtype=np.float32),
                    "label": tfds_lib.features.ClassLabel(names=["a", "b", "c"]),
                }
            )
            return tfds_lib.core.DatasetInfo(builder=self, features=features)

        def _split_generators(self, dl_manager):
            return {s: self._generate_examples(s) for s in arrays}

        def _generate_examples(self, split):
            x, y = arrays[split]
            for i in range(len(y)):
                yield i, {"features": x[i], "label": int(y[i])}

    builder = JrobustTinyTensors(data_dir=str(data_dir), file_format="array_record")
    builder.download_and_prepare()
    return data_dir, arrays


def _source_order(data_dir, name, split):
    """The records in TFDS's own order (it shuffles while writing), read by TFDS itself."""
    import tensorflow_datasets as tfds_lib

    builder = tfds_lib.builder_from_directory(data_dir / name / "1.0.0")
    src = builder.as_data_source(split=split)
    return np.stack([src[i]["features"] for i in range(len(src))]), np.array(
        [src[i]["label"] for i in range(len(src))]
    )


def test_tfds_round_trip(tiny_tfds):
    data_dir, arrays = tiny_tfds
    pop = tfds("jrobust_tiny_tensors", data_dir=data_dir, split="train", test_size=8, val_size=4)
    assert pop.name == "tfds:jrobust_tiny_tensors"
    assert pop.x.shape == (40, 4, 3) and pop.num_classes == 3
    assert pop.meta["class_names"] == ["a", "b", "c"]
    x_src, y_src = _source_order(data_dir, "jrobust_tiny_tensors", "train")
    np.testing.assert_array_equal(pop.x, x_src)
    np.testing.assert_array_equal(pop.y, y_src)
    # the same multiset of examples that the builder was given
    x_in, y_in = arrays["train"]
    order_in, order_out = np.lexsort(x_in.reshape(40, -1).T), np.lexsort(pop.x.reshape(40, -1).T)
    np.testing.assert_array_equal(pop.x[order_out], x_in[order_in])
    np.testing.assert_array_equal(pop.y[order_out], y_in[order_in])
    both = tfds("jrobust_tiny_tensors:1.0.0", data_dir=data_dir, split="train+test")
    assert both.n_events == 52
    # data_dir may point at the prepared version folder, and TFDS_DATA_DIR is honoured
    direct = tfds("anything", data_dir=data_dir / "jrobust_tiny_tensors" / "1.0.0")
    np.testing.assert_array_equal(direct.x, pop.x)
    assert load("tfds:jrobust_tiny_tensors", data_dir=data_dir, split="test").n_events == 12


def test_tfds_images_decoded_with_pillow(tmp_path):
    tfds_lib = pytest.importorskip("tensorflow_datasets")
    image_mod = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, (20, 6, 6, 1), dtype=np.uint8)

    class JrobustTinyImages(tfds_lib.core.GeneratorBasedBuilder):
        VERSION = tfds_lib.core.Version("1.0.0")

        def _info(self):
            features = tfds_lib.features.FeaturesDict(
                {
                    "image": tfds_lib.features.Image(shape=(6, 6, 1)),
                    "label": tfds_lib.features.ClassLabel(num_classes=2),
                }
            )
            return tfds_lib.core.DatasetInfo(builder=self, features=features)

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples()}

        def _generate_examples(self):
            for i, img in enumerate(images):
                buf = io.BytesIO()
                image_mod.fromarray(img[..., 0]).save(buf, format="PNG")  # MNIST-like PNGs
                yield i, {"image": buf.getvalue(), "label": i % 2}

    JrobustTinyImages(data_dir=str(tmp_path), file_format="array_record").download_and_prepare()
    pop = tfds("jrobust_tiny_images", data_dir=tmp_path, test_size=4)
    assert pop.x.shape == (20, 6, 6, 1) and pop.x.dtype == np.float32
    assert pop.x.max() <= 1.0
    got = np.round(pop.x * 255).astype(np.uint8)
    key = lambda a: np.lexsort(a.reshape(len(a), -1).T)  # noqa: E731
    np.testing.assert_array_equal(got[key(got)], images[key(images)])
    raw = tfds("jrobust_tiny_images", data_dir=tmp_path, scale=False)
    assert raw.x.max() > 1.0


def test_tfds_missing_data_fails_fast_with_instructions(tmp_path):
    start = time.perf_counter()
    with pytest.raises(FileNotFoundError) as err:
        tfds("mnist", data_dir=tmp_path)
    assert time.perf_counter() - start < 5.0
    msg = str(err.value)
    assert "not prepared under" in msg and "tfds build mnist" in msg and "data_dir" in msg
    # the default folder ($TFDS_DATA_DIR, here empty) gives the same quick answer
    start = time.perf_counter()
    with pytest.raises(FileNotFoundError, match="tfds-empty"):
        load("tfds:cifar10")
    assert time.perf_counter() - start < 5.0
    with pytest.raises(ValueError, match="is not a TFDS name"):
        tfds("bad name!", data_dir=tmp_path)


def test_tfds_wrong_split_version_or_name(tiny_tfds):
    data_dir, _ = tiny_tfds
    with pytest.raises(ValueError, match=r"has no split 'validation'; it has \['test', 'train'\]"):
        tfds("jrobust_tiny_tensors", data_dir=data_dir, split="validation")
    with pytest.raises(FileNotFoundError, match="no prepared version 9.9.9"):
        tfds("jrobust_tiny_tensors:9.9.9", data_dir=data_dir)
    with pytest.raises(FileNotFoundError, match=r"holds \['jrobust_tiny_tensors'"):
        tfds("mnist", data_dir=data_dir)
    with pytest.raises(KeyError, match="no feature 'target'"):
        tfds("jrobust_tiny_tensors", data_dir=data_dir, y_key="target")


def test_splits_partition_the_events():
    pop = digits(seed=3)
    parts = [pop.test_index, pop.val_index, pop.pool_index]
    assert sum(map(len, parts)) == pop.n_events
    assert np.unique(np.concatenate(parts)).size == pop.n_events  # disjoint and complete
    again = digits(seed=3)
    np.testing.assert_array_equal(again.test_index, pop.test_index)  # the seed fixes the splits
    assert not np.array_equal(digits(seed=4).test_index, pop.test_index)
