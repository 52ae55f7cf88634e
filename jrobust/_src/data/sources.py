"""Real data sets as populations: scikit-learn's digits, TensorFlow Datasets, user arrays.

All loaders are offline. :func:`tfds` reads a data set that was prepared beforehand (by
``tfds build`` or ``tfds.data_source`` on a machine with internet) from ``data_dir``; it never
downloads, and fails at once with instructions when the data set is not there. :func:`load`
turns the short names used on the command line ("calo-a", "calo-b", "digits", "tfds:NAME",
"npz:PATH") into populations.

The populations feed the robust model selection of Boldyrev, Ratnikov, Shevelev (IEEE Access
2025), whose follow-up extends the method from the calorimeter to CIFAR-10.

Example:
  >>> pop = load("digits")
  >>> pop.x.shape, pop.num_classes
  ((1797, 8, 8, 1), 10)
"""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jrobust._src.data.calorimeter import calorimeter
from jrobust._src.data.population import Population
from jrobust._src.specs import data_spec

__all__ = ["digits", "from_arrays", "from_dataframe", "from_npz", "load", "tfds", "tfds_data_dir"]


# ------------------------------------------------------------------------------------ user arrays
def _as_numeric(name: str, a: Any) -> np.ndarray:
    try:
        arr = np.asarray(a)
    except ValueError as err:  # ragged lists
        raise ValueError(f"{name} is ragged ({err}); give a rectangular array") from None
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
    ):
        raise TypeError(
            f"{name} has dtype {arr.dtype}; give numbers (encode strings or categories first, e.g. "
            "with pandas.factorize or pandas.get_dummies)"
        )
    return arr.astype(np.float32) if np.issubdtype(arr.dtype, np.bool_) else arr


def from_arrays(
    x: Any,
    y: Any,
    side: Any = None,
    *,
    target_names: Sequence[str] | None = None,
    side_names: Sequence[str] | None = None,
    num_classes: int | None = None,
    test_size: int | float = 0.2,
    val_size: int | float = 0.0,
    seed: int = 0,
    name: str = "arrays",
    truth: Any = None,
) -> Population:
    """A population from arrays.

    Args:
      x: inputs, ``(n_events, *input_shape)``; a 1-D array is read as one feature ``(n, 1)``.
      y: targets, ``(n,)`` or ``(n, n_targets)``; integer class labels when ``num_classes`` is set.
      side: optional side features ``(n, n_side)`` (inductive biases fed next to the network).
      target_names, side_names: column names.
      num_classes: number of classes for classification (``None``: regression).
      test_size, val_size: fixed split sizes (count or fraction), chosen by ``seed``.
      seed: seed of the splits.
      name: a label for reports.
      truth: optional per-event table kept alongside (not used in training).

    Returns:
      A :class:`Population`.

    Example:
      >>> import numpy as np
      >>> pop = from_arrays(np.zeros((100, 3)), np.arange(100.0), test_size=0.1)
      >>> pop.pool_size
      90
    """
    x = _as_numeric("x", x)
    y = _as_numeric("y", y)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim == 0 or y.ndim == 0:
        raise ValueError("x and y must hold one entry per event, got scalars")
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"x has {x.shape[0]} events but y has {y.shape[0]}; give one target row per event"
        )
    if x.shape[0] < 2:
        raise ValueError(f"need at least 2 events, got {x.shape[0]}")
    if side is not None:
        side = _as_numeric("side", side)
        if side.ndim == 0 or side.shape[0] != x.shape[0]:
            raise ValueError(
                f"side has shape {side.shape} but x has {x.shape[0]} events; "
                "give (n_events, n_side)"
            )
    if num_classes is not None:
        if not np.issubdtype(y.dtype, np.integer):
            if np.all(np.mod(y, 1) == 0):
                y = y.astype(np.int64)
            else:
                raise TypeError(f"with num_classes={num_classes}, y must be integer labels")
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
    return Population(
        x=x, y=y, side=side, target_names=target_names, side_names=side_names,
        test_size=test_size, val_size=val_size, seed=seed, name=name,
        num_classes=num_classes, truth=truth,
    )  # fmt: skip


def from_dataframe(
    df: Any,
    features: str | Sequence[str],
    target: str | Sequence[str],
    *,
    side: Sequence[str] | None = None,
    classification: bool | None = None,
    test_size: int | float = 0.2,
    val_size: int | float = 0.0,
    seed: int = 0,
    name: str = "dataframe",
) -> Population:
    """A population from columns of a pandas DataFrame.

    A non-numeric (string, categorical, boolean) target is a classification target: its values
    are numbered in sorted order and the names kept in ``meta["class_names"]``.

    Args:
      df: the table.
      features: input columns.
      target: target column(s).
      side: optional side-feature columns.
      classification: force (``True``) or forbid (``False``) class labels; default: by dtype.
      test_size, val_size, seed: fixed splits.
      name: a label for reports.

    Returns:
      A :class:`Population` whose ``truth`` is the remaining columns of ``df``.

    Example:
      >>> import pandas as pd
      >>> df = pd.DataFrame({"a": [1.0, 2, 3, 4], "b": [0.0, 1, 0, 1], "t": ["u", "v", "u", "v"]})
      >>> pop = from_dataframe(df, ["a", "b"], "t", test_size=1)
      >>> pop.num_classes, pop.meta["class_names"]
      (2, ['u', 'v'])
    """
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    features = [features] if isinstance(features, str) else list(features)
    targets = [target] if isinstance(target, str) else list(target)
    side_cols = list(side or [])
    if not features or not targets:
        raise ValueError("give at least one feature column and one target column")
    wanted = features + targets + side_cols
    _check_columns(df, wanted, features + side_cols)
    x = df[features].to_numpy(dtype=np.float32)
    sd = df[side_cols].to_numpy(dtype=np.float32) if side_cols else None
    numeric_target = all(
        pd.api.types.is_numeric_dtype(df[t]) and not pd.api.types.is_bool_dtype(df[t])
        for t in targets
    )
    is_cls = (not numeric_target) if classification is None else classification
    rest = df[[c for c in df.columns if c not in wanted]]
    if is_cls:
        if len(targets) != 1:
            raise ValueError(f"classification takes one target column, got {targets}")
        codes, uniques = pd.factorize(df[targets[0]], sort=True)
        names = [u.item() if hasattr(u, "item") else u for u in uniques]
        pop = from_arrays(
            x, codes.astype(np.int64), sd, side_names=side_cols or None,
            target_names=targets, num_classes=len(names), test_size=test_size,
            val_size=val_size, seed=seed, name=name, truth=rest.reset_index(drop=True),
        )  # fmt: skip
        pop.meta["class_names"] = names
    else:
        if not numeric_target:
            raise TypeError(f"target columns {targets} are not numeric; drop classification=False")
        y = df[targets].to_numpy(dtype=np.float32)
        pop = from_arrays(
            x, y, sd, target_names=targets, side_names=side_cols or None, test_size=test_size,
            val_size=val_size, seed=seed, name=name, truth=rest.reset_index(drop=True),
        )  # fmt: skip
    pop.meta["features"] = features
    return pop


def _check_columns(df: Any, wanted: list[str], numeric: list[str]) -> None:
    """Every wanted column present, none with missing values, the ``numeric`` ones numeric."""
    import pandas as pd

    missing = [c for c in wanted if c not in df.columns]
    if missing:
        raise KeyError(f"columns {missing} are not in the DataFrame; it has {list(df.columns)}")
    bad_na = {c: int(df[c].isna().sum()) for c in wanted if df[c].isna().any()}
    if bad_na:
        raise ValueError(
            f"columns with missing values (count): {bad_na}; drop or impute them first, e.g. "
            f"df.dropna(subset={list(bad_na)})"
        )
    for c in numeric:
        if not (pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c])):
            raise TypeError(
                f"feature column {c!r} has dtype {df[c].dtype}; encode it first "
                "(e.g. pandas.get_dummies or .cat.codes)"
            )


def from_npz(
    path: str | os.PathLike,
    *,
    test_size: int | float = 0.2,
    val_size: int | float = 0.0,
    seed: int = 0,
    num_classes: int | None = None,
) -> Population:
    """A population from an ``.npz`` file with arrays ``x``, ``y`` and optionally ``side``.

    Optional entries ``target_names``, ``side_names`` (string arrays) and ``num_classes`` (an
    integer) are used when present.

    Example:
      >>> import numpy as np, tempfile, os
      >>> p = os.path.join(tempfile.mkdtemp(), "d.npz")
      >>> np.savez(p, x=np.zeros((10, 2)), y=np.arange(10.0))
      >>> from_npz(p, test_size=2).n_events
      10
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(
            f"no such .npz file: {p}; save one with np.savez(path, x=..., y=...)"
        )
    with open(p, "rb") as fh:
        magic = fh.read(6)
    if not magic.startswith(b"PK\x03\x04"):
        what = "a single .npy array" if magic == b"\x93NUMPY" else "not a zip archive"
        raise ValueError(
            f"{p} is not an .npz file ({what}); write x and y with np.savez(path, x=..., y=...)"
        )
    try:
        with np.load(p, allow_pickle=False) as f:
            keys = set(f.files)
            if not {"x", "y"} <= keys:
                raise KeyError(f"{p} must hold arrays 'x' and 'y'; it holds {sorted(keys)}")
            x, y = f["x"], f["y"]
            side = f["side"] if "side" in keys else None
            tn = [str(v) for v in f["target_names"]] if "target_names" in keys else None
            sn = [str(v) for v in f["side_names"]] if "side_names" in keys else None
            if num_classes is None and "num_classes" in keys:
                num_classes = int(f["num_classes"])
    except (OSError, zipfile.BadZipFile) as err:
        raise ValueError(
            f"{p} is a damaged .npz file ({err}); write it again with np.savez"
        ) from None
    except ValueError as err:
        if "allow_pickle" not in str(err):
            raise
        raise ValueError(
            f"{p} holds object (pickled) arrays, which jrobust never loads (unpickling can run "
            "code); save plain numeric arrays with np.savez"
        ) from None
    return from_arrays(
        x, y, side, target_names=tn, side_names=sn, num_classes=num_classes,
        test_size=test_size, val_size=val_size, seed=seed, name=p.stem,
    )  # fmt: skip


# ----------------------------------------------------------------------------------- scikit-learn
def digits(
    *,
    scale: bool = True,
    test_size: int | float = 0.2,
    val_size: int | float = 0.1,
    seed: int = 0,
) -> Population:
    """scikit-learn's bundled 8x8 handwritten digits (1797 images, 10 classes; offline).

    Args:
      scale: divide the pixel values (0-16) by 16, to [0, 1].
      test_size, val_size, seed: fixed splits.

    Returns:
      A :class:`Population` named ``"digits"`` with ``x`` of shape ``(1797, 8, 8, 1)`` and
      integer labels ``y`` in ``0..9``.

    Example:
      >>> pop = digits()
      >>> pop.x.shape, int(pop.y.max())
      ((1797, 8, 8, 1), 9)
    """
    from sklearn.datasets import load_digits

    d = load_digits()
    x = d.images.astype(np.float32)[..., None]
    if scale:
        x = x / 16.0
    return Population(
        x=x, y=d.target.astype(np.int64), num_classes=10, test_size=test_size,
        val_size=val_size, seed=seed, name="digits", target_names=("label",),
        meta={"class_names": [str(int(c)) for c in d.target_names]},
    )  # fmt: skip


# ------------------------------------------------------------------------- TensorFlow Datasets
_FIX = (
    "prepare it on a machine with internet (tfds build {name} --data_dir=DIR "
    "--file_format=array_record), copy DIR here and pass data_dir=DIR"
)
_PREPARE_HELP = (
    "This machine cannot download it (jrobust never downloads). Prepare it where there is "
    "internet access:\n"
    "    pip install tensorflow tensorflow-datasets\n"
    "    tfds build {name} --data_dir=/some/dir --file_format=array_record\n"
    "(or in Python: tfds.builder('{name}', data_dir='/some/dir', "
    "file_format='array_record').download_and_prepare()), copy /some/dir here, and call "
    "jrobust.data.tfds('{name}', data_dir='/some/dir') or set TFDS_DATA_DIR. Data in "
    "array_record format is read without TensorFlow (pip install 'jrobust[tfds]')."
)


def tfds_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The TFDS data folder: ``data_dir``, else ``$TFDS_DATA_DIR``, else ``~/tensorflow_datasets``.

    Example:
      >>> tfds_data_dir("/data/tfds").as_posix()
      '/data/tfds'
    """
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get("TFDS_DATA_DIR")
    return Path(env).expanduser() if env else Path.home() / "tensorflow_datasets"


_NAME_RE = re.compile(
    r"^(?P<name>[A-Za-z0-9_.\-]+)(/(?P<config>[A-Za-z0-9_.\-]+))?(:(?P<ver>[0-9.*]+))?$"
)


def _version_key(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in v.split(".") if p.isdigit())


def _version_dirs(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(
        (d for d in folder.iterdir() if re.fullmatch(r"\d+\.\d+\.\d+", d.name)
         and (d / "dataset_info.json").is_file()),
        key=lambda d: _version_key(d.name),
    )  # fmt: skip


def _find_prepared(name: str, data_dir: Path) -> Path:
    """The version folder of a prepared TFDS data set, checked on disk before anything else."""
    if (data_dir / "dataset_info.json").is_file():  # data_dir points at the version folder
        return data_dir
    m = _NAME_RE.match(name)
    if not m:
        raise ValueError(
            f"{name!r} is not a TFDS name; use 'name', 'name:version' or 'name/config:version' "
            "(e.g. 'mnist', 'cifar10:3.0.2')"
        )
    base = data_dir / m["name"]
    if m["config"]:
        base = base / m["config"]
    if not base.is_dir():
        present = (
            sorted(d.name for d in data_dir.iterdir() if d.is_dir() and d.name != "downloads")
            if data_dir.is_dir()
            else []
        )
        where = f"it holds {present}" if present else "it is empty or missing"
        raise FileNotFoundError(
            f"TFDS data set {name!r} is not prepared under {data_dir} ({where}); "
            + _FIX.format(name=m["name"])
            + "\n"
            + _PREPARE_HELP.format(name=m["name"])
        )
    versions = _version_dirs(base)
    if not versions and not m["config"]:
        configs = [d for d in base.iterdir() if d.is_dir() and _version_dirs(d)]
        if len(configs) == 1:
            versions = _version_dirs(configs[0])
        elif configs:
            names = sorted(d.name for d in configs)
            raise ValueError(
                f"TFDS data set {m['name']!r} under {data_dir} has several configs {names}; "
                f"name one, e.g. '{m['name']}/{names[0]}'"
            )
    if m["ver"]:
        versions = [d for d in versions if d.name == m["ver"]]
    if not versions:
        raise FileNotFoundError(
            f"TFDS data set {name!r}: {base} holds no prepared version"
            + (f" {m['ver']}" if m["ver"] else "")
            + " (no <version>/dataset_info.json); "
            + _FIX.format(name=m["name"])
            + "\n"
            + _PREPARE_HELP.format(name=m["name"])
        )
    return versions[-1]


def _import_tfds():
    try:
        import tensorflow_datasets as tfds_lib
    except ImportError as err:
        raise ImportError(
            "reading TFDS data needs tensorflow-datasets: pip install 'jrobust[tfds]' "
            f"(tensorflow-datasets, array_record, pillow) [{err}]"
        ) from None
    return tfds_lib


def _read_all(source: Any, keys: Sequence[str], batch: int = 4096) -> dict[str, np.ndarray]:
    n = len(source)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    for start in range(0, n, batch):
        idx = list(range(start, min(start + batch, n)))
        rows = (
            source.__getitems__(idx)
            if hasattr(source, "__getitems__")
            else [source[i] for i in idx]
        )
        for k in keys:
            parts[k].append(np.stack([np.asarray(r[k]) for r in rows]))
    return {k: np.concatenate(v) if v else np.zeros((0,)) for k, v in parts.items()}


def tfds(
    name: str,
    *,
    data_dir: str | os.PathLike | None = None,
    split: str = "train",
    x_key: str | None = None,
    y_key: str = "label",
    scale: bool = True,
    test_size: int | float = 0.2,
    val_size: int | float = 0.1,
    seed: int = 0,
) -> Population:
    """A TensorFlow Datasets data set (MNIST, CIFAR-10, any TFDS name), prepared beforehand.

    The data set is looked up on disk first (``data_dir/name[/config]/version``); when it is not
    there this fails at once with instructions, without any network access. Data in
    ``array_record`` format is read through ``tfds`` data sources (no TensorFlow needed; images
    are decoded with Pillow); ``tfrecord`` data needs TensorFlow (``as_dataset``).

    Args:
      name: TFDS name, optionally with config and version: ``"mnist"``, ``"cifar10:3.0.2"``.
      data_dir: the TFDS data folder (default ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``),
        or the prepared version folder itself.
      split: TFDS split expression, e.g. ``"train"``, ``"train+test"``, ``"train[:10%]"``. The
        population draws its own test/validation splits from these events.
      x_key: the input feature (default ``"image"`` if present, else the only non-label feature).
      y_key: the label feature.
      scale: divide ``uint8`` inputs by 255.
      test_size, val_size, seed: fixed splits of the population.

    Returns:
      A :class:`Population` (classification when ``y_key`` is a ``ClassLabel``); class names in
      ``meta["class_names"]``.

    Example:
      >>> pop = tfds("mnist", data_dir="/data/tfds")  # doctest: +SKIP
      >>> pop.x.shape  # doctest: +SKIP
      (60000, 28, 28, 1)
    """
    root = tfds_data_dir(data_dir)
    version_dir = _find_prepared(name, root)  # fails fast, before importing or touching tfds
    tfds_lib = _import_tfds()
    builder = tfds_lib.builder_from_directory(version_dir)
    info = builder.info
    features = info.features
    x_key = _tfds_keys(info, x_key, y_key, split)
    arrays = _tfds_arrays(tfds_lib, builder, info, version_dir, split, [x_key, y_key])
    x, y = arrays[x_key], arrays[y_key]
    if scale and x.dtype == np.uint8:
        x = x.astype(np.float32) / 255.0
    label = features[y_key]
    num_classes = getattr(label, "num_classes", None)
    meta: dict[str, Any] = {"tfds": {"name": info.name, "version": str(info.version),
                                     "split": split, "path": str(version_dir)}}  # fmt: skip
    if num_classes is not None:
        names = list(getattr(label, "names", []) or [])
        if names:
            meta["class_names"] = names
        y = y.astype(np.int64)
    return Population(
        x=x, y=y, num_classes=num_classes, test_size=test_size, val_size=val_size, seed=seed,
        name=f"tfds:{info.name}", target_names=(y_key,), meta=meta,
    )  # fmt: skip


def _tfds_keys(info: Any, x_key: str | None, y_key: str, split: str) -> str:
    """The input feature (``x_key``, or the one that is not the label), with the label feature
    and every part of ``split`` checked against the data set's."""
    keys = list(info.features.keys())
    if y_key not in keys:
        raise KeyError(f"{info.name} has no feature {y_key!r}; it has {keys}; pass y_key=")
    if x_key is None:
        others = [k for k in keys if k != y_key]
        x_key = "image" if "image" in others else (others[0] if len(others) == 1 else None)
        if x_key is None:
            raise ValueError(f"{info.name} has several input features {others}; pass x_key=")
    elif x_key not in keys:
        raise KeyError(f"{info.name} has no feature {x_key!r}; it has {keys}; pass x_key=")
    available = sorted(info.splits.keys())
    for part in re.split(r"\+", split):
        base = part.split("[")[0].strip()
        if base not in available:
            raise ValueError(
                f"{info.name} has no split {base!r}; it has {available} (e.g. split='train')"
            )
    return x_key


def _tfds_arrays(tfds_lib, builder, info, version_dir, split: str, keys: list[str]) -> dict:
    """The split's features ``keys`` as numpy arrays: ``array_record`` data through a data
    source (no TensorFlow), ``tfrecord`` data through TensorFlow (a clear error without it)."""
    file_format = str(getattr(info.file_format, "value", info.file_format) or "tfrecord")
    try:
        if "array_record" in file_format:
            return _read_all(builder.as_data_source(split=split), keys)
        try:
            import tensorflow  # noqa: F401
        except ImportError:
            raise ImportError(
                f"{info.name} at {version_dir} is stored as {file_format}, which needs "
                "TensorFlow: pip install tensorflow, or prepare it again with "
                "--file_format=array_record"
            ) from None
        ds = builder.as_dataset(split=split, batch_size=-1)
        return {k: np.asarray(v) for k, v in tfds_lib.as_numpy(ds).items()}
    except (ValueError, KeyError, AssertionError) as err:
        raise ValueError(
            f"could not read split {split!r} of {info.name} at {version_dir}: {err}"
        ) from err


# ------------------------------------------------------------------------------------ dispatcher


def load(spec: str, **kwargs: Any) -> Population:
    """A population from a short name, as used on the command line.

    Args:
      spec: ``"calo-a"`` / ``"calo-b"`` (the synthetic calorimeter, data sets A / B),
        ``"digits"``, ``"tfds:NAME"`` (a prepared TFDS data set, e.g. ``"tfds:cifar10"``),
        or ``"npz:PATH"`` (arrays ``x``, ``y`` [, ``side``] in an ``.npz`` file).
      **kwargs: passed on to :func:`~jrobust.data.calorimeter`, :func:`digits`, :func:`tfds`
        or :func:`from_npz`.

    Returns:
      A :class:`Population`.

    Example:
      >>> load("calo-b", n_events=1_000, cache=False).name
      'calo-B'
    """
    s = data_spec(spec)  # the one grammar of data names, shared with ``jrobust run --data``
    low = s.lower()
    if low.startswith("calo-"):
        return calorimeter(dataset=low[-1].upper(), **kwargs)
    if low == "digits":
        return digits(**kwargs)
    if low.startswith("tfds:"):
        return tfds(s[5:], **kwargs)
    if low.startswith("npz:"):
        return from_npz(s[4:], **kwargs)
    return from_npz(s, **kwargs)
