"""The embedded synthetic calorimeter: photons showering in a Shashlik-type ECAL (LHCb style).

This is the default data set of jrobust, a stand-in for the GEANT4 samples of the paper that
introduced robust model selection (A. Boldyrev, F. Ratnikov, A. Shevelev, "Approach to Finding a
Robust Deep Learning Model", IEEE Access 2025, doi:10.1109/ACCESS.2025.3578926,
arXiv:2505.17254). Nothing is downloaded: the clusters are generated from a parameterised shower
model (GFlash, see ``simulation``), vectorised over events in JAX, so it runs on the CPU or an
accelerator and is seeded. Generated populations are kept in a disk cache (``cache``); the
paper's parametric baselines are in ``baselines``. :func:`calorimeter` ties them together.

Example:
  >>> from jrobust.data import calorimeter
  >>> pop = calorimeter(2_000, "B", seed=1, cache=False)
  >>> pop.x.shape, pop.target_names, pop.side_names
  ((2000, 15, 15, 1), ('energy', 'x', 'y'), ('total_energy', 'bary_x', 'bary_y'))
"""

from __future__ import annotations

import functools
import os
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from jrobust._src.data.calorimeter.baselines import (
    energy_baseline,
    fit_sshape,
    position_baseline,
    relative_rmse,
    rmse,
    sshape_correct,
)
from jrobust._src.data.calorimeter.cache import (
    cache_path,
    default_cache_dir,
    generation_params,
    load_cached,
    save_cached,
)
from jrobust._src.data.calorimeter.simulation import (
    DATASETS,
    DEFAULT_TAU_EDGES,
    INCLINED_TAU_EDGES,
    SIDE_NAMES,
    TARGET_NAMES,
    TRUTH_COLUMNS,
    CalorimeterConfig,
    _default_chunk,
    _generate_chunk,
    _run_chunks,
    mean_deposits,
    simulate,
)
from jrobust._src.data.population import Population

__all__ = [
    "TEST_SIZE",
    "VAL_SIZE",
    "DATASETS",
    "DEFAULT_TAU_EDGES",
    "INCLINED_TAU_EDGES",
    "CalorimeterConfig",
    "calorimeter",
    "default_cache_dir",
    "energy_baseline",
    "fit_sshape",
    "mean_deposits",
    "position_baseline",
    "relative_rmse",
    "rmse",
    "simulate",
    "sshape_correct",
]


#: The default test and validation splits of a calorimeter population.
TEST_SIZE, VAL_SIZE = 0.2, 0.1


def calorimeter(
    n_events: int = 50_000,
    dataset: str = "A",
    *,
    seed: int = 0,
    cluster_size: int = 15,
    cell_size: float = 4.04,
    noise: float = 0.010,
    stochastic: float = 0.10,
    constant: float = 0.01,
    test_size: int | float = TEST_SIZE,
    val_size: int | float = VAL_SIZE,
    energy_range: tuple[float, float] = (1.0, 100.0),
    max_angle: float | None = None,
    reference_depth: float | None = None,
    config: CalorimeterConfig | None = None,
    split_seed: int | None = None,
    cache: bool = True,
    cache_dir: str | os.PathLike | None = None,
    dtype: Any = jnp.float32,
    chunk_size: int | None = None,
) -> Population:
    """A population of photon clusters from the synthetic ECAL (the paper's data sets A and B).

    Data set ``"A"``: energies flat in ``energy_range``, normal incidence. Data set ``"B"``: a
    falling spectrum peaking near 8 GeV (log-normal, median 14 GeV, truncated to
    ``energy_range``), projected incidence angles uniform in ``[-0.3, 0.3]`` rad. The photon
    position is uniform over the central cell. Targets: ``energy`` (GeV), ``x``, ``y`` (cm,
    relative to the centre of the central cell, at ``reference_depth``); side features:
    ``total_energy`` (sum of all cells), ``bary_x``, ``bary_y`` (3x3 barycentre, cm).

    Inputs span 1-100 GeV: for training, consider :func:`jrobust._src.data.preprocess.standardize`
    or :func:`jrobust._src.data.preprocess.log_energy`.

    Args:
      n_events: number of clusters.
      dataset: ``"A"`` or ``"B"``.
      seed: seeds the events (event ``i`` is the same for any ``n_events > i``) and, unless
        ``split_seed`` is given, the fixed test/validation splits.
      cluster_size, cell_size, noise, stochastic, constant: detector parameters, see
        :class:`CalorimeterConfig`; ignored when ``config`` is given.
      test_size, val_size: fixed test / validation splits (count or fraction).
      energy_range: ``(e_min, e_max)`` of the photon energies in GeV.
      max_angle: largest projected incidence angle (rad); default 0 for A, 0.3 for B.
      reference_depth: depth (X0) of the plane of the target position; ``None``: the mean
        shower depth for the photon's energy (what the barycentre measures), 0: the front face.
      config: a full :class:`CalorimeterConfig` (Molière radius, X0, depth bins, ...).
      split_seed: seed of the splits if different from ``seed``.
      cache: look up / store the generated arrays on disk (keyed by every parameter above that
        changes the events; splits are not part of the key).
      cache_dir: cache folder (default :func:`default_cache_dir`).
      dtype: computation dtype, ``float32`` (default) or ``float64`` (needs ``jax_enable_x64``);
        the population always stores float32.
      chunk_size: events per compiled batch (speed/memory only; results do not depend on it).

    Returns:
      A :class:`Population` named ``"calo-A"`` / ``"calo-B"`` with ``x`` of shape
      ``(n_events, cluster_size, cluster_size, 1)`` in GeV, a ``truth`` DataFrame (energy, x, y,
      angle_x, angle_y, x_front, y_front) and ``meta`` holding the generation parameters.

    Example:
      >>> pop = calorimeter(1_000, "A", seed=3, cache=False)
      >>> pop.name, pop.x.shape, list(pop.truth.columns[:3])
      ('calo-A', (1000, 15, 15, 1), ['energy', 'x', 'y'])
    """
    ds, n_events, seed, max_angle, config, spec, reference_depth, dtype = _checked(
        n_events, dataset, seed, cluster_size, cell_size, noise, stochastic, constant,
        energy_range, max_angle, reference_depth, config, dtype,
    )  # fmt: skip
    params = generation_params(n_events, ds, seed, config, spec, max_angle, reference_depth, dtype)
    path = cache_path(Path(cache_dir).expanduser() if cache_dir else default_cache_dir(), params)
    meta: dict[str, Any] = {"generator": params, "cell_size": config.cell_size, "cache_hit": False}
    arrays = load_cached(path, params) if cache and path.exists() else None
    if arrays is not None:
        meta["cache_hit"] = True
    else:
        generate = functools.partial(
            _generate_chunk, cfg=config, spec=spec, max_angle=max_angle,
            reference_depth=reference_depth, dtype=jnp.dtype(dtype),
        )  # fmt: skip
        arrays = _generated(generate, n_events, chunk_size, seed, meta)
        if cache:
            try:
                save_cached(path, params, arrays)
            except OSError as err:  # a read-only cache is not fatal
                meta["cache_error"] = f"could not write {path}: {err}"
    if cache:
        meta["cache_path"] = str(path)

    truth_df = pd.DataFrame(arrays["truth"].astype(np.float64), columns=list(TRUTH_COLUMNS))
    y = arrays["truth"][:, :3]
    return Population(
        x=arrays["cells"][..., None],
        y=y,
        side=arrays["side"],
        target_names=TARGET_NAMES,
        side_names=SIDE_NAMES,
        test_size=test_size,
        val_size=val_size,
        seed=seed if split_seed is None else int(split_seed),
        name=f"calo-{ds}",
        truth=truth_df,
        meta=meta,
    )


def _generated(generate, n_events: int, chunk_size, seed: int, meta: dict) -> dict:
    """The events, generated in compiled chunks (float32 cells, side features and truth); the
    seconds it took go into ``meta``."""
    t0 = time.perf_counter()
    cells, side, truth = _run_chunks(generate, n_events, chunk_size or _default_chunk(), seed)
    meta["generation_seconds"] = time.perf_counter() - t0
    return {
        "cells": cells.astype(np.float32, copy=False),
        "side": side.astype(np.float32, copy=False),
        "truth": truth.astype(np.float32, copy=False),
    }


def _checked(
    n_events, dataset, seed, cluster_size, cell_size, noise, stochastic, constant, energy_range,
    max_angle, reference_depth, config, dtype,
):  # fmt: skip
    """The arguments of :func:`calorimeter`, checked and resolved (one error names each)."""
    ds = str(dataset).strip().upper()
    if ds.startswith("CALO-"):
        ds = ds[5:]
    if ds not in DATASETS:
        raise ValueError(
            f"unknown calorimeter data set {dataset!r}; choose one of {sorted(DATASETS)}"
        )
    if isinstance(n_events, bool) or not isinstance(n_events, int | np.integer) or n_events < 2:
        raise ValueError(f"n_events={n_events!r} must be an integer >= 2")
    if not isinstance(seed, int | np.integer):
        raise TypeError(f"seed must be an integer, got {type(seed).__name__}")
    n_events, seed = int(n_events), int(seed)
    info = DATASETS[ds]
    max_angle = float(info["max_angle"] if max_angle is None else max_angle)
    if not 0.0 <= max_angle <= 1.0:
        raise ValueError(f"max_angle={max_angle} must lie in [0, 1] rad")
    if config is None:
        config = CalorimeterConfig(
            cluster_size=cluster_size, cell_size=cell_size, noise=noise,
            stochastic=stochastic, constant=constant,
            tau_edges=INCLINED_TAU_EDGES if max_angle > 0 else DEFAULT_TAU_EDGES,
        )  # fmt: skip
    e_min, e_max = (float(v) for v in energy_range)
    if not (0.1 <= e_min < e_max <= 1e4):
        raise ValueError(
            f"energy_range={energy_range} must satisfy 0.1 <= e_min < e_max <= 10000 GeV "
            "(the shower parameterisation is valid from ~0.1 GeV)"
        )
    spec = (info["spectrum"], e_min, e_max, info.get("median", 0.0), info.get("sigma", 0.0))
    if reference_depth is not None:
        reference_depth = float(reference_depth)
        if not 0.0 <= reference_depth <= config.depth:
            raise ValueError(
                f"reference_depth={reference_depth} must lie in [0, {config.depth}] X0"
            )
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype={dtype} is not supported; use float32 or float64")
    if dtype == np.float64 and not jax.config.jax_enable_x64:
        raise ValueError(
            "dtype=float64 needs 64-bit JAX: call jax.config.update('jax_enable_x64', True) first"
        )

    return ds, n_events, seed, max_angle, config, spec, reference_depth, dtype
