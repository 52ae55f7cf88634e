"""The physics of the synthetic calorimeter: GFlash showers in a Shashlik ECAL, vectorised in JAX.

Physics (units: GeV, cm; ``t`` in radiation lengths X0, ``r`` in Molière radii):

* Longitudinal and radial shower profiles of Grindhammer & Peters, "The parameterized simulation
  of electromagnetic showers in homogeneous and sampling calorimeters", hep-ex/0001020 (GFlash),
  with sampling-calorimeter corrections for 2 mm Pb / 4 mm scintillator and log-normal
  shower-to-shower fluctuations of the depth of the maximum ``T`` and of the shape ``alpha``
  (correlated). Depth bins are taken in ``tau = t / T``; each bin carries the exact energy
  fraction (differences of the regularised incomplete gamma function, leakage past the back of
  the calorimeter included) and the radial profile at its exact energy-weighted mean depth.
* Radial profile: a core and a tail, each ``2 r R^2 / (r^2 + R^2)^2``, integrated exactly over
  every square cell (closed form, see ``_cell_integrals``).
* Inclined photons: the shower axis moves laterally with depth and the radial profile is projected
  onto the cell plane; the target position is where the photon line crosses the plane at the
  shower's mean depth (``reference_depth``), which is what a barycentre measures.
* Detector: sampling fluctuations (the visible energy of a cell is Gamma-distributed with
  variance ``stochastic**2 * mu``, so the cluster sum has the ``stochastic / sqrt(E)`` term), a
  constant term (one Gaussian factor per event) and Gaussian electronic noise per cell.

The Gamma draws use the Marsaglia-Tsang boost ``G(k) = G(k + 1) * U**(1/k)`` with the
Wilson-Hilferty cube-root normal approximation of ``G(k + 1)`` (no rejection loop, so the whole
generator is loop-free and fast; mean and variance agree with the exact Gamma distribution to
0.1 % for shapes k >= 0.1).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jrobust._src import signals as _signals

__all__ = [
    "DATASETS",
    "DEFAULT_TAU_EDGES",
    "INCLINED_TAU_EDGES",
    "CalorimeterConfig",
    "mean_deposits",
    "simulate",
]

#: Bumped whenever the generator changes the numbers it produces (invalidates the disk cache).
GENERATOR_VERSION = 2

#: Edges of the depth bins in ``tau = t / T`` (depth over the depth of the shower maximum) for
#: normal incidence; the last bin runs to the back of the calorimeter. Each bin carries its exact
#: energy fraction and the radial profile at its exact mean depth; these 16 bins reproduce a
#: 400-bin integration to 6e-4 of the photon energy per cell (worst cell, 1-100 GeV).
DEFAULT_TAU_EDGES: tuple[float, ...] = (
    0.0, 0.2, 0.35, 0.5, 0.62, 0.74, 0.86, 0.98, 1.1, 1.25, 1.42, 1.62, 1.86, 2.15, 2.55, 3.2,
    math.inf,
)  # fmt: skip

#: Finer depth bins for inclined photons, whose axis moves across the cells with depth: these 24
#: bins reproduce a 400-bin integration to 8e-4 of the photon energy per cell at 0.3 rad.
INCLINED_TAU_EDGES: tuple[float, ...] = (
    0.0, 0.15, 0.28, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.32, 1.45, 1.6, 1.77, 1.96,
    2.18, 2.43, 2.72, 3.07, 3.5, 4.1, 5.0, math.inf,
)  # fmt: skip

#: Energy spectra and incidence angles of the paper's two data sets.
DATASETS: dict[str, dict[str, Any]] = {
    # flat spectrum, normal incidence
    "A": {"spectrum": "flat", "max_angle": 0.0},
    # falling spectrum: a log-normal with median 14 GeV and sigma 0.75 (mode 8 GeV) truncated to
    # the energy range; projected incidence angles uniform in [-0.3, 0.3] rad
    "B": {"spectrum": "lognormal", "median": 14.0, "sigma": 0.75, "max_angle": 0.3},
}

TARGET_NAMES = ("energy", "x", "y")
SIDE_NAMES = ("total_energy", "bary_x", "bary_y")
TRUTH_COLUMNS = ("energy", "x", "y", "angle_x", "angle_y", "x_front", "y_front")

#: Events share random-number draws in blocks of this size; event ``i`` is the same whatever the
#: number of events or the batching.
RNG_BLOCK = 512

# Randomness of the generator lives in its own stream of the seed, apart from the splits,
# subsets and initialisations that Population and the trainers derive from the same seed.
_GENERATOR_STREAM = 0x0CA10

# The generator's kernels run long and are compiled once per configuration: always compile them
# at XLA's default optimisation level, even when a process lowers it globally for fast
# compilation (XLA_FLAGS=--xla_backend_optimization_level=0, as test suites do), which would
# make them 5-8x slower.
_COMPILER_OPTIONS = {"xla_backend_optimization_level": 3}

# Near-minimax odd polynomial: atan(x) = x * P(x^2) on [0, 1], max error 3.7e-8.
_ATAN_COEFFS = (
    0.9999993355795288, -0.3332986078677152, 0.19946565666947078, -0.139086295930969,
    0.09642197380631579, -0.05591232694849391, 0.0218629577324157, -0.004054567119655003,
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class CalorimeterConfig:
    """Geometry, material and detector parameters of the synthetic ECAL.

    Args:
      cluster_size: cells per side of the square cluster, odd (15 as in the paper).
      cell_size: cell pitch in cm (LHCb: 4.04 inner, 6.06 middle, 12.12 outer).
      noise: electronic noise per cell in GeV (Gaussian sigma).
      stochastic: stochastic term ``a`` in GeV^1/2 (``sigma(E)/E = a / sqrt(E)``).
      constant: constant term (relative Gaussian sigma of one factor per event).
      moliere_radius: Molière radius in cm.
      radiation_length: effective radiation length X0 of the Pb/scintillator stack in cm.
      depth: calorimeter depth in X0.
      critical_energy: critical energy in GeV.
      z_eff: effective Z used in the GFlash profile formulas.
      z_absorber: Z of the absorber (sets the sampling ratio ``e_hat``).
      sampling_frequency: ``F_s = X0_eff / (d_Pb + d_sc)``.
      tau_edges: depth-bin edges in ``t / T``; the last must be ``inf``.
      shower_fluctuations: draw ``T`` and ``alpha`` per shower (log-normal, correlated).

    Example:
      >>> CalorimeterConfig(cell_size=6.06, noise=0.02).cluster_size
      15
    """

    cluster_size: int = 15
    cell_size: float = 4.04
    noise: float = 0.010
    stochastic: float = 0.10
    constant: float = 0.01
    moliere_radius: float = 3.5
    radiation_length: float = 1.638
    depth: float = 25.0
    critical_energy: float = 0.0092
    z_eff: float = 70.0
    z_absorber: float = 82.0
    sampling_frequency: float = 2.73
    tau_edges: tuple[float, ...] = DEFAULT_TAU_EDGES
    shower_fluctuations: bool = True

    def __post_init__(self) -> None:
        n = self.cluster_size
        if not isinstance(n, int | np.integer) or n < 3 or n % 2 == 0:
            raise ValueError(
                f"cluster_size={n!r} must be an odd integer >= 3 (the cluster is centred on the "
                "cell hit by the photon); the paper uses 15"
            )
        for name in ("cell_size", "moliere_radius", "radiation_length", "depth", "critical_energy"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
                raise ValueError(f"{name}={v!r} must be a positive finite number")
        for name in ("noise", "stochastic", "constant"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v >= 0):
                raise ValueError(
                    f"{name}={v!r} must be a non-negative finite number (0 turns it off)"
                )
        edges = tuple(float(v) for v in self.tau_edges)
        if (
            len(edges) < 2
            or edges[0] != 0.0
            or edges[-1] != math.inf
            or any(b <= a for a, b in zip(edges[:-1], edges[1:], strict=True))
        ):
            raise ValueError(
                f"tau_edges={self.tau_edges} must increase from 0.0 to inf, "
                f"e.g. {DEFAULT_TAU_EDGES}"
            )
        object.__setattr__(self, "cluster_size", int(n))
        object.__setattr__(self, "tau_edges", edges)

    @property
    def e_hat(self) -> float:
        """Sampling ratio e/mip of Grindhammer & Peters: ``1 / (1 + 0.007 (Z - 5.6))``."""
        return 1.0 / (1.0 + 0.007 * (self.z_absorber - 5.6))

    def cell_centres(self) -> np.ndarray:
        """Cell-centre coordinates along one axis, cm, relative to the central cell."""
        n = self.cluster_size
        return (np.arange(n) - (n - 1) / 2) * self.cell_size


# ---------------------------------------------------------------------------------------- physics
def _gflash_means(energy: jax.Array, cfg: CalorimeterConfig) -> tuple[jax.Array, ...]:
    """Mean ln T, mean ln alpha and their fluctuation parameters (Grindhammer & Peters)."""
    ln_y = jnp.log(energy / cfg.critical_energy)
    fs, e_hat = cfg.sampling_frequency, cfg.e_hat
    t_max = ln_y - 0.812 - 0.55 / fs - 0.69 * (1.0 - e_hat)
    alpha = 0.81 + (0.458 + 2.26 / cfg.z_eff) * ln_y - 0.476 / fs
    t_max = jnp.maximum(t_max, 0.5)
    alpha = jnp.maximum(alpha, 1.2)
    ln_y_safe = jnp.maximum(ln_y, 3.0)  # keeps the fluctuation widths finite below ~0.2 GeV
    sig_t = 1.0 / (-2.5 + 1.25 * ln_y_safe)
    sig_a = 1.0 / (-0.82 + 0.79 * ln_y_safe)
    rho = jnp.clip(0.784 - 0.023 * ln_y, -1.0, 1.0)
    return jnp.log(t_max), jnp.log(alpha), sig_t, sig_a, rho


def _mean_depth(energy: jax.Array, cfg: CalorimeterConfig) -> jax.Array:
    """Mean depth (along the axis, X0) of the average profile: alpha T / (alpha - 1)."""
    ln_t, ln_a, *_ = _gflash_means(energy, cfg)
    t, a = jnp.exp(ln_t), jnp.exp(ln_a)
    return a * t / (a - 1.0)


def _radial_parameters(
    tau: jax.Array, ln_e: jax.Array, cfg: CalorimeterConfig
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Core radius, tail radius (Molière radii) and core weight at relative depth ``tau``."""
    z, fs, de = cfg.z_eff, cfg.sampling_frequency, 1.0 - cfg.e_hat
    e_tau = jnp.exp(-tau)
    r_core = 0.0251 + 0.00319 * ln_e + (0.1162 - 0.000381 * z) * tau
    r_core = r_core - 0.0203 * de + 0.0397 / fs * e_tau
    k1, k4 = 0.659 - 0.00309 * z, 0.3585 + 0.0412 * ln_e
    r_tail = k1 * (jnp.exp(-2.59 * (tau - 0.645)) + jnp.exp(k4 * (tau - 0.645)))
    r_tail = r_tail - 0.14 * de - 0.495 / fs * e_tau
    p1, p2, p3 = 2.632 - 0.00094 * z, 0.401 + 0.00187 * z, 1.313 - 0.0686 * ln_e
    u = (p2 - tau) / p3
    p = p1 * jnp.exp(u - jnp.exp(u)) + de * (0.348 - 0.642 / fs * jnp.exp(-((tau - 1.0) ** 2)))
    return jnp.maximum(r_core, 0.005), jnp.maximum(r_tail, 0.02), jnp.clip(p, 0.0, 1.0)


def _atan_ratio(
    num: jax.Array, den: jax.Array, inv_num: jax.Array, inv_den: jax.Array
) -> jax.Array:
    """atan(num / den) for den > 0, from precomputed reciprocals (no division on the 2-D grid)."""
    big = jnp.abs(num) > den
    z = jnp.where(big, den * inv_num, num * inv_den)  # |z| <= 1
    z2 = z * z
    p = jnp.full_like(z2, _ATAN_COEFFS[-1])
    for c in _ATAN_COEFFS[-2::-1]:
        p = p * z2 + c
    p = p * z
    return jnp.where(big, jnp.sign(num) * (0.5 * math.pi) - p, p)


def _safe_inverse(v: jax.Array) -> jax.Array:
    tiny = jnp.asarray(1e-30, v.dtype)
    return 1.0 / jnp.where(jnp.abs(v) < tiny, tiny, v)


def _cell_integrals(
    xe: jax.Array, ye: jax.Array, radius: jax.Array, weight: jax.Array
) -> jax.Array:
    """Weighted sum of exact cell integrals of profile components.

    One component, ``rho(x, y) = R^2 / (pi (x^2 + y^2 + R^2)^2)`` (unit integral over the plane),
    integrates over ``[x1, x2] x [y1, y2]`` to ``G(x2, y2) - G(x1, y2) - G(x2, y1) + G(x1, y1)``
    with ``G(X, Y) = [X/s(X) atan(Y/s(X)) + Y/s(Y) atan(X/s(Y))] / (2 pi)``,
    ``s(X) = sqrt(X^2 + R^2)``. ``G`` is evaluated on the grid of cell edges.

    Args:
      xe, ye: cell edges relative to each component's centre, shape ``(B, n + 1, C)``.
      radius, weight: shape ``(B, C)``.

    Returns:
      Cell fractions, shape ``(B, n, n)``, indexed ``[iy, ix]``.
    """

    def component(acc, comp):
        x, y, r, w = comp  # (B, n + 1), (B, n + 1), (B,), (B,)
        r2 = (r * r)[:, None]
        sx, sy = jnp.sqrt(x * x + r2), jnp.sqrt(y * y + r2)
        inv_sx, inv_sy = 1.0 / sx, 1.0 / sy
        ax, ay = x * inv_sx, y * inv_sy
        inv_x, inv_y = _safe_inverse(x), _safe_inverse(y)
        # term1[iy, ix] = ax[ix] atan(y[iy] / sx[ix]);  term2[iy, ix] = ay[iy] atan(x[ix] / sy[iy])
        t1 = ax[:, None, :] * _atan_ratio(
            y[:, :, None], sx[:, None, :], inv_y[:, :, None], inv_sx[:, None, :]
        )
        t2 = ay[:, :, None] * _atan_ratio(
            x[:, None, :], sy[:, :, None], inv_x[:, None, :], inv_sy[:, :, None]
        )
        return acc + (w * (0.5 / math.pi))[:, None, None] * (t1 + t2), None

    # one component at a time: the (B, n + 1, n + 1) accumulator stays in cache, which is several
    # times faster on CPUs than materialising all components and reducing
    b, n1, _ = xe.shape
    comps = (jnp.moveaxis(xe, -1, 0), jnp.moveaxis(ye, -1, 0), radius.T, weight.T)
    g, _ = jax.lax.scan(component, jnp.zeros((b, n1, n1), xe.dtype), comps)
    return g[:, 1:, 1:] - g[:, :-1, 1:] - g[:, 1:, :-1] + g[:, :-1, :-1]


def _shower_means(
    energy: jax.Array,
    x: jax.Array,
    y: jax.Array,
    angle_x: jax.Array,
    angle_y: jax.Array,
    ln_t: jax.Array,
    ln_a: jax.Array,
    t_ref: jax.Array,
    cfg: CalorimeterConfig,
) -> jax.Array:
    """Expected deposits (GeV) per cell, ``(B, n, n)``, of showers with given ln T and ln alpha."""
    dtype = energy.dtype
    t_max = jnp.exp(ln_t)
    alpha = jnp.maximum(jnp.exp(ln_a), 1.05)
    beta = (alpha - 1.0) / t_max
    tx, ty = jnp.tan(angle_x), jnp.tan(angle_y)
    norm = jnp.sqrt(1.0 + tx * tx + ty * ty)
    ux, uy = tx / norm, ty / norm  # direction cosines of the photon
    back = cfg.depth * norm  # back face, as depth along the axis
    tau_e = jnp.asarray(cfg.tau_edges, dtype)
    t_e = jnp.minimum(tau_e[None, :] * t_max[:, None], back[:, None])  # (B, K + 1)
    a_, b_ = alpha[:, None], beta[:, None]
    p0 = jax.scipy.special.gammainc(a_, b_ * t_e)
    p1 = jax.scipy.special.gammainc(a_ + 1.0, b_ * t_e)
    w = jnp.diff(p0, axis=1)  # energy fraction per bin (the rest leaks out of the back)
    ok = w > 1e-7
    centroid = jnp.where(ok, a_ / b_ * jnp.diff(p1, axis=1) / jnp.where(ok, w, 1.0), 0.0)
    mid = 0.5 * (t_e[:, 1:] + t_e[:, :-1])
    centroid = jnp.clip(jnp.where(ok, centroid, mid), t_e[:, :-1], t_e[:, 1:])
    w = jnp.where(ok, w, 0.0)
    tau = centroid / t_max[:, None]
    r_core, r_tail, p_core = _radial_parameters(tau, jnp.log(energy)[:, None], cfg)
    # lateral position of the axis at each bin's depth, relative to the reference point
    shift = (centroid - t_ref[:, None]) * cfg.radiation_length
    cx = x[:, None] + shift * ux[:, None]
    cy = y[:, None] + shift * uy[:, None]
    n = cfg.cluster_size
    edges = jnp.asarray((np.arange(n + 1) - n / 2) * cfg.cell_size, dtype)
    # the radial profile lives in the plane normal to the axis: its projection on the cells is
    # stretched by 1/cos along the tilt, i.e. the edges are compressed by cos
    kx, ky = jnp.sqrt(1.0 - ux * ux), jnp.sqrt(1.0 - uy * uy)
    xe = (edges[None, :, None] - cx[:, None, :]) * kx[:, None, None]  # (B, n + 1, K)
    ye = (edges[None, :, None] - cy[:, None, :]) * ky[:, None, None]
    xe2 = jnp.concatenate([xe, xe], axis=2)  # (B, n + 1, 2K): cores then tails
    ye2 = jnp.concatenate([ye, ye], axis=2)
    radius = jnp.concatenate([r_core, r_tail], axis=1) * cfg.moliere_radius
    weight = jnp.concatenate([w * p_core, w * (1.0 - p_core)], axis=1)
    return energy[:, None, None] * _cell_integrals(xe2, ye2, radius, weight)


def _reference_depth(
    energy: jax.Array, angle_x: jax.Array, angle_y: jax.Array, reference_depth: float | None, cfg
) -> jax.Array:
    """Depth along the axis (X0) of the plane where the target position is defined."""
    if reference_depth is None:
        return _mean_depth(energy, cfg)
    norm = jnp.sqrt(1.0 + jnp.tan(angle_x) ** 2 + jnp.tan(angle_y) ** 2)
    return jnp.full_like(energy, reference_depth) * norm


def _gamma_wh(k: jax.Array, z: jax.Array, u: jax.Array) -> jax.Array:
    """Gamma(k, 1) from a normal ``z`` and a uniform ``u``: Wilson-Hilferty at k + 1, boosted."""
    k = jnp.maximum(k, 1e-30)
    k1 = k + 1.0
    c = 1.0 / (9.0 * k1)
    g1 = k1 * jnp.maximum(1.0 - c + z * jnp.sqrt(c), 0.0) ** 3
    return g1 * jnp.exp(jnp.log(jnp.maximum(u, 1e-38)) / k)


def _detector_response(means, z_samp, u_samp, z_const, z_noise, cfg: CalorimeterConfig):
    mu = jnp.maximum(means, 0.0)
    if cfg.stochastic > 0:
        a2 = cfg.stochastic**2
        vis = a2 * _gamma_wh(mu / a2, z_samp, u_samp)
    else:
        vis = mu
    if cfg.constant > 0:
        vis = vis * (1.0 + cfg.constant * z_const)[:, None, None]
    if cfg.noise > 0:
        vis = vis + cfg.noise * z_noise
    return vis


def _side_features(cells: jax.Array, cfg: CalorimeterConfig) -> jax.Array:
    """Total energy and the 3x3 barycentre (cm, relative to the central cell), shape ``(B, 3)``."""
    c = cfg.cluster_size // 2
    total = cells.sum(axis=(1, 2))
    core = cells[:, c - 1 : c + 2, c - 1 : c + 2]
    pos = jnp.asarray([-1.0, 0.0, 1.0], cells.dtype) * cfg.cell_size
    s = core.sum(axis=(1, 2))
    s_safe = jnp.where(jnp.abs(s) > 1e-6, s, 1.0)
    bx = jnp.where(jnp.abs(s) > 1e-6, (core.sum(axis=1) * pos).sum(axis=1) / s_safe, 0.0)
    by = jnp.where(jnp.abs(s) > 1e-6, (core.sum(axis=2) * pos).sum(axis=1) / s_safe, 0.0)
    return jnp.stack([total, bx, by], axis=1)


# ------------------------------------------------------------------------------- event generation
def _root_key(seed_or_key: int | jax.Array) -> jax.Array:
    if isinstance(seed_or_key, int | np.integer):
        root = jax.random.key(int(seed_or_key))
    elif isinstance(seed_or_key, jax.Array) and jax.dtypes.issubdtype(
        seed_or_key.dtype, jax.dtypes.prng_key
    ):
        root = seed_or_key
    else:
        raise TypeError(
            "key must be an integer seed or a jax.random.key(...), "
            f"got {type(seed_or_key).__name__}"
        )
    return jax.random.fold_in(root, _GENERATOR_STREAM)


def _block_keys(root: jax.Array, first_block: jax.Array, n_blocks: int) -> jax.Array:
    """Keys of event blocks ``first_block ...``: block ``b`` holds events ``b*RNG_BLOCK ...``."""
    idx = first_block.astype(jnp.uint32) + jnp.arange(n_blocks, dtype=jnp.uint32)
    return jax.vmap(lambda i: jax.random.fold_in(root, i))(idx)


def _to_uniform(bits: jax.Array, dtype, lo: float = 0.0, hi: float = 1.0) -> jax.Array:
    """Uniform floats in [lo, hi) from 32-bit words (the mantissa trick of ``jax.random``)."""
    mantissa = jax.lax.shift_right_logical(bits, jnp.uint32(9)) | jnp.uint32(0x3F800000)
    u = jax.lax.bitcast_convert_type(mantissa, jnp.float32) - 1.0
    return (lo + (hi - lo) * u).astype(dtype)


def _to_normal(bits: jax.Array, dtype) -> jax.Array:
    """Standard normals from 32-bit words (inverse error function, as ``jax.random.normal``)."""
    lo = float(np.nextafter(np.float32(-1.0), np.float32(0.0)))
    u = _to_uniform(bits, jnp.float32, lo, 1.0)
    return (math.sqrt(2.0) * jax.lax.erf_inv(jnp.maximum(u, lo))).astype(dtype)


def _draw(block_keys: jax.Array, n: int, dtype) -> dict[str, jax.Array]:
    """All random numbers of the events of some blocks (independent of how they are batched).

    One stream of 32-bit words per block (a single Threefry call compiles much faster than one
    per kind of number), cut into the uniforms and normals that each event needs.
    """
    cells = n * n
    layout = {
        "u_energy": 1, "u_pos": 2, "u_angle": 2, "z_long": 2, "z_const": 1,
        "z_samp": cells, "u_samp": cells, "z_noise": cells,
    }  # fmt: skip
    words = sum(layout.values())
    bits = jax.vmap(lambda k: jax.random.bits(k, (RNG_BLOCK, words), jnp.uint32))(block_keys)
    bits = bits.reshape(-1, words)
    out, start = {}, 0
    for name, width in layout.items():
        w = bits[:, start : start + width]
        start += width
        if name.startswith("z_"):
            v = _to_normal(w, dtype)
        elif name == "u_pos":
            v = _to_uniform(w, dtype, -0.5, 0.5)
        elif name == "u_angle":
            v = _to_uniform(w, dtype, -1.0, 1.0)
        else:
            v = _to_uniform(w, dtype)
        if width == 1:
            v = v[:, 0]
        elif width == cells:
            v = v.reshape(-1, n, n)
        out[name] = v
    return out


def _fluctuate(energy, z_long, cfg: CalorimeterConfig):
    ln_t, ln_a, sig_t, sig_a, rho = _gflash_means(energy, cfg)
    if not cfg.shower_fluctuations:
        return ln_t, ln_a
    z1, z2 = z_long[:, 0], z_long[:, 1]
    ln_t = ln_t + sig_t * z1
    ln_a = ln_a + sig_a * (rho * z1 + jnp.sqrt(1.0 - rho * rho) * z2)
    return ln_t, ln_a


def _sample_energy(u: jax.Array, spec: tuple, dtype) -> jax.Array:
    kind, e_min, e_max, median, sigma = spec
    if kind == "flat":
        return e_min + (e_max - e_min) * u
    mu = math.log(median)
    lo = jax.scipy.special.ndtr(jnp.asarray((math.log(e_min) - mu) / sigma, dtype))
    hi = jax.scipy.special.ndtr(jnp.asarray((math.log(e_max) - mu) / sigma, dtype))
    q = jnp.clip(lo + u * (hi - lo), 1e-7, 1.0 - 1e-7)
    return jnp.clip(jnp.exp(mu + sigma * jax.scipy.special.ndtri(q)), e_min, e_max)


@functools.partial(
    jax.jit,
    static_argnames=("n_blocks", "cfg", "spec", "max_angle", "reference_depth", "dtype"),
    compiler_options=_COMPILER_OPTIONS,
)
def _generate_chunk(root, first_block, *, n_blocks, cfg, spec, max_angle, reference_depth, dtype):
    r = _draw(_block_keys(root, first_block, n_blocks), cfg.cluster_size, dtype)
    energy = _sample_energy(r["u_energy"], spec, dtype)
    x = r["u_pos"][:, 0] * cfg.cell_size
    y = r["u_pos"][:, 1] * cfg.cell_size
    angle_x = r["u_angle"][:, 0] * max_angle
    angle_y = r["u_angle"][:, 1] * max_angle
    return _simulate_from_draws(energy, x, y, angle_x, angle_y, r, cfg, reference_depth)


def _simulate_from_draws(energy, x, y, angle_x, angle_y, r, cfg, reference_depth):
    ln_t, ln_a = _fluctuate(energy, r["z_long"], cfg)
    t_ref = _reference_depth(energy, angle_x, angle_y, reference_depth, cfg)
    means = _shower_means(energy, x, y, angle_x, angle_y, ln_t, ln_a, t_ref, cfg)
    cells = _detector_response(means, r["z_samp"], r["u_samp"], r["z_const"], r["z_noise"], cfg)
    tx, ty = jnp.tan(angle_x), jnp.tan(angle_y)
    norm = jnp.sqrt(1.0 + tx * tx + ty * ty)
    back = t_ref * cfg.radiation_length / norm  # lateral shift to the front face
    truth = jnp.stack([energy, x, y, angle_x, angle_y, x - back * tx, y - back * ty], axis=1)
    return cells, _side_features(cells, cfg), truth


@functools.partial(
    jax.jit,
    static_argnames=("n_blocks", "cfg", "reference_depth"),
    compiler_options=_COMPILER_OPTIONS,
)
def _simulate_given(
    root, first_block, energy, x, y, angle_x, angle_y, *, n_blocks, cfg, reference_depth
):
    r = _draw(_block_keys(root, first_block, n_blocks), cfg.cluster_size, energy.dtype)
    return _simulate_from_draws(energy, x, y, angle_x, angle_y, r, cfg, reference_depth)


def _as_event_array(name: str, v: Any, n: int | None, dtype) -> np.ndarray:
    a = np.asarray(v, dtype=np.float64)
    if a.ndim > 1:
        raise ValueError(
            f"{name} must be a scalar or a 1-D array of per-event values, got {a.shape}"
        )
    if n is not None:
        if a.ndim == 0:
            a = np.full(n, float(a))
        elif a.shape[0] != n:
            raise ValueError(f"{name} has {a.shape[0]} values for {n} events; give one per event")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} holds NaN/inf values; give finite numbers")
    return a.astype(dtype)


def _run_chunks(fn, n: int, chunk: int, seed_or_key, **arrays) -> tuple[np.ndarray, ...]:
    """Evaluate ``fn`` over events in fixed-size, padded chunks (one compilation).

    Chunks go round-robin to the local devices of the default backend (several GPUs, or several
    CPU devices under ``JAX_NUM_CPU_DEVICES=N``); the numbers do not depend on the chunk size or
    the number of devices. Results are written straight into preallocated host arrays.
    """
    n_blocks = -(-n // RNG_BLOCK)
    per_chunk = max(1, min(-(-chunk // RNG_BLOCK), n_blocks))
    size = per_chunk * RNG_BLOCK
    devices = jax.local_devices()
    roots = [jax.device_put(_root_key(seed_or_key), d) for d in devices]
    out: list[np.ndarray] = []
    pending: list[tuple[int, Any]] = []

    def collect(start: int, res: Any) -> None:
        m = min(n - start, size)
        for j, a in enumerate(res):
            a = np.asarray(a)
            if len(out) <= j:
                out.append(np.empty((n, *a.shape[1:]), a.dtype))
            out[j][start : start + m] = a[:m]

    for c, first in enumerate(range(0, n_blocks, per_chunk)):
        start = first * RNG_BLOCK
        dev = devices[c % len(devices)]
        idx = np.arange(start, start + size) % n  # pad the last chunk with valid events
        kw = {k: jax.device_put(v[idx], dev) for k, v in arrays.items()}
        first_block = jax.device_put(np.int32(first), dev)
        res = fn(roots[c % len(devices)], first_block, n_blocks=per_chunk, **kw)  # async dispatch
        pending.append((start, res))
        if len(pending) > 2 * len(devices):
            collect(*pending.pop(0))
            _signals.check()  # a deferred Ctrl-C stops a long generation between chunks
    for p in pending:
        collect(*p)
    return tuple(out)


def _default_config(angle_x: Any, angle_y: Any) -> CalorimeterConfig:
    inclined = bool(np.any(np.asarray(angle_x) != 0) or np.any(np.asarray(angle_y) != 0))
    return CalorimeterConfig(tau_edges=INCLINED_TAU_EDGES if inclined else DEFAULT_TAU_EDGES)


def _default_chunk() -> int:
    # on CPUs, batches whose scratch memory stays below glibc's mmap threshold (32 MB) avoid
    # fresh page faults on every batch
    return 1024 if jax.default_backend() == "cpu" else 32768


def simulate(
    key: int | jax.Array,
    energy: Any,
    x: Any,
    y: Any,
    angle_x: Any = 0.0,
    angle_y: Any = 0.0,
    *,
    config: CalorimeterConfig | None = None,
    reference_depth: float | None = None,
    chunk_size: int | None = None,
) -> np.ndarray:
    """Simulate clusters of given photons (energy, impact point, angles) with all fluctuations.

    Args:
      key: a seed or a ``jax.random.key``; events draw their random numbers in blocks of
        ``RNG_BLOCK`` from ``fold_in(fold_in(key, stream), block)``, so event ``i`` does not
        depend on how many events follow it or on ``chunk_size``.
      energy: photon energies in GeV, shape ``(n,)``.
      x, y: photon positions in cm at the reference depth, relative to the centre of the central
        cell (scalars broadcast).
      angle_x, angle_y: projected incidence angles in rad (scalars broadcast).
      config: the detector (default ``CalorimeterConfig()``, with the finer
        ``INCLINED_TAU_EDGES`` depth bins when any angle is non-zero).
      reference_depth: depth (X0 from the front face) of the plane where ``x, y`` are given;
        ``None``: the mean depth of the shower for its energy.
      chunk_size: events per compiled batch (results do not depend on it).

    Returns:
      Cell energies in GeV, shape ``(n, cluster_size, cluster_size)``, indexed ``[event, iy, ix]``
      (row index increases with y, column index with x).

    Example:
      >>> cells = simulate(0, [10.0, 50.0], 0.0, 0.0)
      >>> cells.shape
      (2, 15, 15)
    """
    e = np.atleast_1d(_as_event_array("energy", energy, None, np.float32))
    n = e.shape[0]
    if (e <= 0).any():
        raise ValueError("energy must be positive (GeV)")
    arrays = {
        "energy": e,
        "x": _as_event_array("x", x, n, np.float32),
        "y": _as_event_array("y", y, n, np.float32),
        "angle_x": _as_event_array("angle_x", angle_x, n, np.float32),
        "angle_y": _as_event_array("angle_y", angle_y, n, np.float32),
    }
    cfg = config or _default_config(arrays["angle_x"], arrays["angle_y"])
    if n == 0:
        return np.zeros((0, cfg.cluster_size, cfg.cluster_size), np.float32)
    fn = functools.partial(_simulate_given, cfg=cfg, reference_depth=reference_depth)
    cells, _, _ = _run_chunks(fn, n, chunk_size or _default_chunk(), key, **arrays)
    return cells


def mean_deposits(
    energy: Any,
    x: Any = 0.0,
    y: Any = 0.0,
    angle_x: Any = 0.0,
    angle_y: Any = 0.0,
    *,
    config: CalorimeterConfig | None = None,
    reference_depth: float | None = None,
) -> np.ndarray:
    """Expected deposits of the average shower (no fluctuations, no noise), GeV per cell.

    Args:
      energy, x, y, angle_x, angle_y: as in :func:`simulate` (scalars broadcast to ``energy``).
      config: the detector.
      reference_depth: as in :func:`simulate`.

    Returns:
      Shape ``(n, cluster_size, cluster_size)``; ``sum / energy`` is the containment.

    Example:
      >>> float(mean_deposits(10.0)[0, 7, 7] / 10.0) > 0.8  # seed-cell fraction at the centre
      True
    """
    e = np.atleast_1d(_as_event_array("energy", energy, None, np.float32))
    n = e.shape[0]
    if (e <= 0).any():
        raise ValueError("energy must be positive (GeV)")
    args = [jnp.asarray(_as_event_array(k, v, n, np.float32)) for k, v in
            (("x", x), ("y", y), ("angle_x", angle_x), ("angle_y", angle_y))]  # fmt: skip
    cfg = config or _default_config(args[2], args[3])
    return np.asarray(
        _mean_deposits_jit(jnp.asarray(e), *args, cfg=cfg, reference_depth=reference_depth)
    )


@functools.partial(jax.jit, static_argnames=("cfg", "reference_depth"))
def _mean_deposits_jit(e, x, y, ax, ay, *, cfg, reference_depth):
    ln_t, ln_a, *_ = _gflash_means(e, cfg)
    t_ref = _reference_depth(e, ax, ay, reference_depth, cfg)
    return _shower_means(e, x, y, ax, ay, ln_t, ln_a, t_ref, cfg)
