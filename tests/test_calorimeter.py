"""The synthetic calorimeter: physics checks on 50k events, determinism, cache, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

import jrobust._src.cache
from jrobust._src.data.calorimeter import (
    DEFAULT_TAU_EDGES,
    CalorimeterConfig,
    calorimeter,
    energy_baseline,
    fit_sshape,
    mean_deposits,
    position_baseline,
    simulate,
    simulation,  # noqa: E402
    sshape_correct,
)

# the package exports the function calorimeter(), which shadows the module's attribute name
from jrobust._src.data.calorimeter import cache as calo_cache  # noqa: E402

SMALL = {"cache": False, "chunk_size": 1024}  # one compiled batch shape for the small tests

N_PHYSICS = 50_000
CELL = 4.04


@pytest.fixture(autouse=True)
def _no_home_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("JROBUST_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def calo_a():
    return calorimeter(N_PHYSICS, "A", seed=0, cache=False)


@pytest.fixture(scope="module")
def calo_b():
    return calorimeter(N_PHYSICS, "B", seed=0, cache=False)


# ------------------------------------------------------------------------------------ the layout
def test_population_layout(calo_a):
    pop = calo_a
    assert pop.name == "calo-A"
    assert pop.x.shape == (N_PHYSICS, 15, 15, 1) and pop.x.dtype == np.float32
    assert pop.target_names == ("energy", "x", "y")
    assert pop.side_names == ("total_energy", "bary_x", "bary_y")
    assert list(pop.truth.columns[:5]) == ["energy", "x", "y", "angle_x", "angle_y"]
    assert len(pop.truth) == N_PHYSICS
    np.testing.assert_allclose(pop.y[:, 0], pop.truth.energy, rtol=1e-6)
    assert pop.truth.energy.between(1.0, 100.0).all()
    assert (np.abs(pop.truth[["x", "y"]].to_numpy()) <= CELL / 2 + 1e-5).all()
    assert (pop.truth[["angle_x", "angle_y"]].to_numpy() == 0).all()  # normal incidence
    np.testing.assert_allclose(pop.side[:, 0], pop.x.sum(axis=(1, 2, 3)), rtol=1e-4, atol=1e-3)
    assert len(pop.test_index) == 10_000 and len(pop.val_index) == 5_000
    assert np.isfinite(pop.x).all()
    # the flat spectrum of data set A
    hist, _ = np.histogram(pop.truth.energy, bins=10, range=(1, 100))
    assert hist.min() > 0.8 * hist.mean()


def test_seed_cell_holds_the_shower(calo_a):
    cells = calo_a.x[..., 0]
    flat = cells.reshape(len(cells), -1)
    assert np.mean(flat.argmax(axis=1) == 7 * 15 + 7) > 0.95


# --------------------------------------------------------------------------------------- physics
def test_containment_median_sum_over_energy(calo_a):
    e = calo_a.truth.energy.to_numpy()
    ratio = calo_a.side[:, 0] / e
    assert 0.97 <= np.median(ratio) <= 1.0
    assert np.median(ratio) == pytest.approx(0.994, abs=0.004)  # reference prototype, 15x15
    core5 = calo_a.x[:, 5:10, 5:10, 0].sum(axis=(1, 2)) / e
    assert np.median(core5) == pytest.approx(0.98, abs=0.01)  # prototype: ~0.98 for 5x5


def test_mean_profile_fractions():
    m = mean_deposits([10.0, 1.0, 100.0], 0.0, 0.0)[0] / 10.0
    assert m[7, 7] == pytest.approx(0.85, abs=0.02)
    assert m[6:9, 6:9].sum() == pytest.approx(0.965, abs=0.01)
    assert m[5:10, 5:10].sum() == pytest.approx(0.985, abs=0.01)
    assert m[2:13, 2:13].sum() == pytest.approx(0.995, abs=0.005)
    # symmetric under x -> -x, y -> -y, and x <-> y
    np.testing.assert_allclose(m, m[::-1, ::-1], atol=1e-6)
    np.testing.assert_allclose(m, m.T, atol=1e-6)


def test_stochastic_term(calo_a):
    e = calo_a.truth.energy.to_numpy()
    r = calo_a.side[:, 0] / e
    edges = np.array([1, 2, 3, 5, 7, 10, 15, 20, 30, 40, 50, 60, 70, 80, 90, 100.0])
    e_mid, rel = [], []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        rr = r[(e >= lo) & (e < hi)]
        q75, q25 = np.percentile(rr, [75, 25])
        e_mid.append(e[(e >= lo) & (e < hi)].mean())
        rel.append((q75 - q25) / 1.349 / np.median(rr))
    e_mid, rel = np.array(e_mid), np.array(rel)
    # sigma^2 = a^2 / E + b^2 + c^2 / E^2, least squares in relative terms (each sigma^2 estimate
    # has a relative error ~ sqrt(2 / n), so the bins are weighted by 1 / sigma^2)
    design = np.stack([1 / e_mid, np.ones_like(e_mid), 1 / e_mid**2], axis=1)
    w = 1.0 / rel**2
    coef, *_ = np.linalg.lstsq(design * w[:, None], rel**2 * w, rcond=None)
    a = math.sqrt(max(coef[0], 0.0))
    assert abs(a - 0.10) < 0.02, (a, coef)
    assert rel[-1] < 0.025  # 90-100 GeV: ~1.6 %


def test_sshape_of_the_barycentre(calo_a):
    x = calo_a.truth.x.to_numpy()
    bias = calo_a.side[:, 1] - x
    bins = np.linspace(-CELL / 2, CELL / 2, 21)
    centres = 0.5 * (bins[1:] + bins[:-1])
    idx = np.digitize(x, bins) - 1
    med = np.array([np.median(bias[idx == i]) for i in range(20)])
    # biased toward the cell centre: negative for x > 0, positive for x < 0
    assert (med[centres > 0.2] < 0).all() and (med[centres < -0.2] > 0).all()
    where = abs(centres[np.argmax(np.abs(med))])
    assert 0.25 * CELL <= where <= 0.45 * CELL  # largest ~1/3 cell from the centre
    assert 0.6 < np.abs(med).max() < 1.1  # prototype: 0.88 cm


def test_asinh_correction_and_position_baseline(calo_a):
    pool = calo_a.pool_index
    bary, x = calo_a.side[:, 1].astype(np.float64), calo_a.truth.x.to_numpy()
    b = fit_sshape(bary[pool], x[pool], CELL)
    assert b == pytest.approx(0.52, abs=0.08)  # LHCb-like ~0.13 of the cell
    raw = np.sqrt(np.mean((bary - x) ** 2))
    corrected = np.sqrt(np.mean((sshape_correct(bary, b, CELL) - x) ** 2))
    assert raw / corrected > 3.0, (raw, corrected)
    score = position_baseline(calo_a, "x")
    assert 0.05 < score < 0.15
    assert position_baseline(calo_a, "y") == pytest.approx(score, rel=0.2)


def test_energy_baseline(calo_a):
    score = energy_baseline(calo_a)
    assert 0.015 < score < 0.04


def test_dataset_b_spectrum_and_angles(calo_b):
    e = calo_b.truth.energy.to_numpy()
    hist, edges = np.histogram(e, bins=np.arange(1.0, 101.0))
    assert edges[np.argmax(hist)] < 15.0
    assert 5.0 <= edges[np.argmax(hist)] <= 11.0  # peaks near 7-10 GeV
    assert e.max() > 60.0 and e.min() >= 1.0  # tail toward 100 GeV
    angles = calo_b.truth[["angle_x", "angle_y"]].to_numpy()
    assert np.abs(angles).max() <= 0.3 + 1e-6 and np.abs(angles).max() > 0.29
    assert calo_b.name == "calo-B"
    assert 0.97 <= np.median(calo_b.side[:, 0] / e) <= 1.0
    # inclined showers: the front-face impact differs from the reference-depth position
    shift = calo_b.truth.x - calo_b.truth.x_front
    assert np.corrcoef(shift, np.tan(calo_b.truth.angle_x))[0, 1] > 0.99
    assert position_baseline(calo_b) < 0.6


# -------------------------------------------------------------------------------------- numerics
def _g_float64(x, y, r):
    sx, sy = np.sqrt(x * x + r * r), np.sqrt(y * y + r * r)
    return (x / sx * np.arctan(y / sx) + y / sy * np.arctan(x / sy)) / (2 * np.pi)


def test_cell_integrals_match_float64_closed_form_and_quadrature():
    import jax.numpy as jnp
    from scipy.integrate import dblquad

    rng = np.random.default_rng(0)
    b, n_comp, n = 4096, 16, 16  # a large batch (guards against miscompiles of big shapes)
    xe = np.sort(rng.normal(0, 10, (b, n, n_comp)), axis=1)
    ye = np.sort(rng.normal(0, 10, (b, n, n_comp)), axis=1)
    radius, weight = rng.uniform(0.2, 8.0, (b, n_comp)), rng.uniform(0, 1, (b, n_comp))
    got = np.asarray(
        simulation._cell_integrals(*(jnp.asarray(v, jnp.float32) for v in (xe, ye, radius, weight)))
    )
    sel = np.r_[0:32, b - 32 : b]
    g = (
        weight[sel, None, None, :]
        * _g_float64(xe[sel, None, :, :], ye[sel, :, None, :], radius[sel, None, None, :])
    ).sum(-1)
    want = g[:, 1:, 1:] - g[:, :-1, 1:] - g[:, 1:, :-1] + g[:, :-1, :-1]
    np.testing.assert_allclose(got[sel], want, atol=2e-6)
    # the closed form against numerical integration of R^2 / (pi (r^2 + R^2)^2)
    r = 1.3
    x1, x2, y1, y2 = 0.4, 2.5, -1.0, 0.7
    num, _ = dblquad(lambda y, x: r**2 / (np.pi * (x * x + y * y + r * r) ** 2), x1, x2, y1, y2)
    closed = (
        _g_float64(x2, y2, r)
        - _g_float64(x1, y2, r)
        - _g_float64(x2, y1, r)
        + _g_float64(x1, y1, r)
    )
    assert closed == pytest.approx(num, rel=1e-8)


def test_depth_binning_converges():
    fine = CalorimeterConfig(tau_edges=(*np.linspace(0, 8, 201), math.inf))
    e = [1.0, 10.0, 100.0]
    coarse = mean_deposits(e, 1.0, -0.5)
    ref = mean_deposits(e, 1.0, -0.5, config=fine)
    assert (np.abs(coarse - ref).max(axis=(1, 2)) / np.array(e)).max() < 3e-3
    ref_incl = mean_deposits(e, 1.0, -0.5, 0.3, -0.2, config=fine)
    inclined = mean_deposits(e, 1.0, -0.5, 0.3, -0.2)
    assert (np.abs(inclined - ref_incl).max(axis=(1, 2)) / np.array(e)).max() < 1e-2


def test_simulate_without_fluctuations_is_the_mean():
    cfg = CalorimeterConfig(noise=0.0, stochastic=0.0, constant=0.0, shower_fluctuations=False)
    e = np.array([2.0, 20.0, 80.0])
    cells = simulate(0, e, [0.3, -1.0, 1.9], 0.5, config=cfg, chunk_size=512)
    assert cells.shape == (3, 15, 15)
    np.testing.assert_allclose(
        cells, mean_deposits(e, [0.3, -1.0, 1.9], 0.5, config=cfg), atol=2e-5 * e.max()
    )


# ------------------------------------------------------------------------ determinism and cache
def test_determinism_by_seed_and_batching():
    a = calorimeter(2048, "A", seed=7, **SMALL)
    b = calorimeter(2048, "A", seed=7, **SMALL)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.side, b.side)
    np.testing.assert_array_equal(a.test_index, b.test_index)
    c = calorimeter(2048, "A", seed=8, **SMALL)
    assert not np.array_equal(a.x, c.x)
    # event i does not depend on the number of events or the batching
    d = calorimeter(1024, "A", seed=7, **SMALL)
    np.testing.assert_array_equal(d.x, a.x[:1024])
    np.testing.assert_array_equal(d.truth.to_numpy(), a.truth.to_numpy()[:1024])


def test_cache_hit_gives_identical_arrays(tmp_path):
    kw = dict(seed=3, cache_dir=tmp_path, chunk_size=1024)
    first = calorimeter(1024, "A", **kw)
    assert first.meta["cache_hit"] is False
    files = list(tmp_path.glob("*.npz"))
    assert len(files) == 1 and files[0].name.startswith("calorimeter-A-1024-")
    assert not list(tmp_path.glob("*.tmp"))  # written atomically
    second = calorimeter(1024, "A", **kw)
    assert second.meta["cache_hit"] is True
    for attr in ("x", "y", "side", "test_index", "val_index", "pool_index"):
        np.testing.assert_array_equal(getattr(first, attr), getattr(second, attr))
    np.testing.assert_array_equal(first.truth.to_numpy(), second.truth.to_numpy())
    # splits are not part of the key
    third = calorimeter(1024, "A", test_size=100, **kw)
    assert third.meta["cache_hit"] is True and len(third.test_index) == 100
    # cache=False neither reads nor writes
    assert calorimeter(1024, "A", seed=3, **SMALL).meta["cache_hit"] is False
    # a damaged file is regenerated
    files[0].write_bytes(b"not a zip file")
    again = calorimeter(1024, "A", **kw)
    assert again.meta["cache_hit"] is False
    np.testing.assert_array_equal(again.x, first.x)


def test_cache_key_covers_every_generation_parameter(tmp_path):
    def path(**kw):
        args = dict(
            n_events=1000, dataset="A", seed=0, cfg=CalorimeterConfig(), spec=("flat", 1.0, 100.0),
            max_angle=0.0, reference_depth=None, dtype=np.float32,
        )  # fmt: skip
        args.update(kw)
        return calo_cache.cache_path(tmp_path, calo_cache.generation_params(**args))

    base = path()
    changed = [
        path(n_events=1001), path(dataset="B"), path(seed=1), path(max_angle=0.1),
        path(cfg=CalorimeterConfig(noise=0.02)), path(cfg=CalorimeterConfig(cell_size=6.06)),
        path(spec=("flat", 1.0, 50.0)), path(reference_depth=0.0),
    ]  # fmt: skip
    assert len({base, *changed}) == len(changed) + 1
    assert path() == base


def test_default_cache_dir_honours_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("JROBUST_CACHE_DIR", str(tmp_path / "here"))
    assert calo_cache.default_cache_dir() == tmp_path / "here" / "data"
    assert jrobust._src.cache.cache_dir("jax") == tmp_path / "here" / "jax"  # one cache folder
    monkeypatch.delenv("JROBUST_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert calo_cache.default_cache_dir() == tmp_path / "xdg" / "jrobust" / "data"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert calo_cache.default_cache_dir().parts[-3:] == (".cache", "jrobust", "data")


# ------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"dataset": "C"}, "unknown calorimeter data set 'C'"),
        ({"n_events": 1}, "n_events=1 must be an integer >= 2"),
        ({"cluster_size": 14}, "cluster_size=14 must be an odd integer"),
        ({"noise": -0.1}, "noise=-0.1 must be a non-negative"),
        ({"cell_size": 0.0}, "cell_size=0.0 must be a positive"),
        ({"energy_range": (50.0, 10.0)}, "energy_range"),
        ({"max_angle": 2.0}, "max_angle=2.0"),
        ({"test_size": 5000}, "test_size=5000 must be smaller than the 1024 events"),
        ({"test_size": 0.6, "val_size": 0.5}, "splits use all 1024 events"),
        ({"dtype": "int32"}, "dtype=int32 is not supported"),
    ],
)
def test_bad_parameters(kwargs, match):
    args = {"n_events": 1024, "dataset": "A", **SMALL, **kwargs}
    with pytest.raises(ValueError, match=match):
        calorimeter(**args)


def test_bad_simulate_input():
    with pytest.raises(ValueError, match="NaN/inf"):
        simulate(0, [1.0, np.nan], 0.0, 0.0)
    with pytest.raises(ValueError, match="3 values for 2 events"):
        simulate(0, [1.0, 2.0], [0.0, 0.0, 0.0], 0.0)
    with pytest.raises(ValueError, match="energy must be positive"):
        mean_deposits([-1.0])
    with pytest.raises(ValueError, match="tau_edges"):
        CalorimeterConfig(tau_edges=(0.0, 1.0))
    assert DEFAULT_TAU_EDGES[-1] == math.inf


def test_baselines_refuse_foreign_populations():
    from jrobust._src.data.preprocess import log_energy
    from jrobust._src.data.sources import digits

    with pytest.raises(ValueError, match="classification"):
        energy_baseline(digits())
    pop = log_energy(calorimeter(1024, "A", **SMALL))
    with pytest.raises(ValueError, match="transformed by preprocessing"):
        energy_baseline(pop)
