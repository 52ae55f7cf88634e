"""The paper's metrics and the parametric baselines of the calorimeter tasks.

Energy: the calibrated sum of the deposits; position: the 3x3 barycentre with LHCb's S-shape
(asinh) correction. Both are fitted on a population's training pool and scored on its test split,
the references the paper's networks are compared with.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar

from jrobust._src.data.population import Population

__all__ = [
    "energy_baseline",
    "fit_sshape",
    "position_baseline",
    "relative_rmse",
    "rmse",
    "sshape_correct",
]


def relative_rmse(pred: Any, true: Any) -> float:
    """The paper's energy metric RMSE(E)/E: ``sqrt(mean(((pred - true) / true)^2))``.

    Example:
      >>> round(relative_rmse([11.0, 9.0], [10.0, 10.0]), 3)
      0.1
    """
    p, t = np.asarray(pred, np.float64), np.asarray(true, np.float64)
    return float(np.sqrt(np.mean(((p - t) / t) ** 2)))


def rmse(pred: Any, true: Any) -> float:
    """Root mean square error, e.g. RMSE(x) in cm for the position task.

    Example:
      >>> rmse([1.0, -1.0], [0.0, 0.0])
      1.0
    """
    p, t = np.asarray(pred, np.float64), np.asarray(true, np.float64)
    return float(np.sqrt(np.mean((p - t) ** 2)))


def sshape_correct(bary: Any, b: float, cell_size: float = 4.04) -> np.ndarray:
    """LHCb's S-shape correction of a barycentre: ``b asinh(bary / (D/2) sinh(D / (2 b)))``.

    Args:
      bary: barycentre relative to the seed-cell centre (cm).
      b: the shape parameter (cm), about 0.13 of the cell size.
      cell_size: the cell pitch ``D`` (cm).

    Returns:
      The corrected position (cm).

    Example:
      >>> float(sshape_correct(0.0, 0.5))
      0.0
    """
    half = 0.5 * cell_size
    return b * np.arcsinh(np.asarray(bary, np.float64) / half * np.sinh(half / b))


def _raw_columns(pop: Population, targets: Sequence[str], sides: Sequence[str]) -> None:
    if pop.is_classification:
        raise ValueError(
            f"{pop.name} is a classification population; baselines need calorimeter data"
        )
    missing = [t for t in targets if t not in pop.target_names]
    missing += [s for s in sides if s not in pop.side_names]
    if missing:
        raise ValueError(
            f"population {pop.name!r} lacks {missing}; the parametric baselines need a population "
            "from jrobust.data.calorimeter()"
        )
    touched = set(pop.meta.get("transformed", ()))
    bad = sorted(touched & ({f"y:{t}" for t in targets} | {f"side:{s}" for s in sides}))
    if bad:
        raise ValueError(
            f"columns {bad} were transformed by preprocessing; compute the baselines on the raw "
            "population returned by calorimeter()"
        )


def energy_baseline(pop: Population) -> float:
    """The parametric energy baseline: the calibrated sum of deposits, scored on the test split.

    The calibration ``E = S / c`` is fitted on the training pool by least squares in the relative
    error; the score is the paper's RMSE(E)/E on the test split.

    Args:
      pop: a population from :func:`calorimeter` (raw, not preprocessed).

    Returns:
      RMSE(E)/E on the test split.

    Example:
      >>> import jrobust
      >>> pop = jrobust.data.calorimeter(2_000, "A", cache=False)
      >>> 0.0 < energy_baseline(pop) < 0.05
      True
    """
    _raw_columns(pop, ["energy"], ["total_energy"])
    s = pop.side[:, pop.side_names.index("total_energy")].astype(np.float64)
    e = pop.y[:, pop.target_names.index("energy")].astype(np.float64)
    r = s[pop.pool_index] / e[pop.pool_index]
    c = float(np.sum(r * r) / np.sum(r))
    t = pop.test_index
    return relative_rmse(s[t] / c, e[t])


def position_baseline(pop: Population, coordinate: str = "x") -> float:
    """The parametric position baseline: 3x3 barycentre with the S-shape (asinh) correction.

    The parameter ``b`` of :func:`sshape_correct` is fitted on the training pool (least squares);
    the score is RMSE in cm on the test split.

    Args:
      pop: a population from :func:`calorimeter` (raw, not preprocessed).
      coordinate: ``"x"`` or ``"y"``.

    Returns:
      RMSE of the corrected barycentre on the test split, cm.

    Example:
      >>> import jrobust
      >>> pop = jrobust.data.calorimeter(2_000, "A", cache=False)
      >>> position_baseline(pop) < 0.3
      True
    """
    if coordinate not in ("x", "y"):
        raise ValueError(f"coordinate={coordinate!r} must be 'x' or 'y'")
    side = f"bary_{coordinate}"
    _raw_columns(pop, [coordinate], [side])
    cell = float(pop.meta.get("cell_size", 4.04))
    bary = pop.side[:, pop.side_names.index(side)].astype(np.float64)
    true = pop.y[:, pop.target_names.index(coordinate)].astype(np.float64)
    b = fit_sshape(bary[pop.pool_index], true[pop.pool_index], cell)
    t = pop.test_index
    return rmse(sshape_correct(bary[t], b, cell), true[t])


def fit_sshape(bary: Any, true: Any, cell_size: float = 4.04) -> float:
    """Least-squares fit of the S-shape parameter ``b`` (cm) of :func:`sshape_correct`.

    Example:
      >>> import numpy as np
      >>> x = np.linspace(-2.0, 2.0, 101)
      >>> bary = 2.02 * np.sinh(x / 0.5) / np.sinh(2.02 / 0.5)
      >>> round(fit_sshape(bary, x, 4.04), 2)
      0.5
    """
    bary, true = np.asarray(bary, np.float64), np.asarray(true, np.float64)
    lo, hi = 0.02 * cell_size, 2.0 * cell_size
    res = minimize_scalar(
        lambda b: np.mean((sshape_correct(bary, b, cell_size) - true) ** 2),
        bounds=(lo, hi),
        method="bounded",
        options={"xatol": 1e-5},
    )
    return float(res.x)
