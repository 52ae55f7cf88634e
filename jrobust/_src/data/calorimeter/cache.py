"""The disk cache of generated calorimeter populations (``jrobust._src.cache.cache_dir("data")``).

A generated population is stored as one ``.npz`` (no pickle) keyed by every parameter that changes
the events; a file that does not match or cannot be read is regenerated and overwritten.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from jrobust._src.cache import cache_dir
from jrobust._src.data.calorimeter.simulation import GENERATOR_VERSION

__all__ = ["cache_path", "default_cache_dir", "generation_params", "load_cached", "save_cached"]


def default_cache_dir() -> Path:
    """The cache folder of generated populations: ``jrobust._src.cache.cache_dir("data")``
    (``$JROBUST_CACHE_DIR/data``, else ``$XDG_CACHE_HOME/jrobust/data``, else
    ``~/.cache/jrobust/data``)."""
    return cache_dir("data")


def generation_params(n_events, dataset, seed, cfg, spec, max_angle, reference_depth, dtype):
    d = dataclasses.asdict(cfg)
    d["tau_edges"] = [str(v) for v in cfg.tau_edges]
    return {
        "generator_version": GENERATOR_VERSION,
        "n_events": int(n_events),
        "dataset": dataset,
        "seed": int(seed),
        "config": d,
        "spectrum": list(spec),
        "max_angle": float(max_angle),
        "reference_depth": reference_depth,
        "dtype": str(np.dtype(dtype)),
    }


def cache_path(cache_dir: Path, params: dict) -> Path:
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:20]
    return cache_dir / f"calorimeter-{params['dataset']}-{params['n_events']}-{digest}.npz"


def load_cached(path: Path, params: dict) -> dict[str, np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as f:
            if json.loads(str(f["params"])) != params:
                return None
            return {k: f[k] for k in ("cells", "side", "truth")}
    except (OSError, ValueError, KeyError, json.JSONDecodeError):
        return None  # unreadable or partial: regenerate and overwrite


def save_cached(path: Path, params: dict, arrays: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, params=np.asarray(json.dumps(params, sort_keys=True)), **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
