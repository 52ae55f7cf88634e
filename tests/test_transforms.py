"""Image transformations: exact special cases, hand-computed values, tracing and augmentation;
transformed test sets in the trainer and the race (``over=``), their ledger and run folders."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from conftest import small_cnn, stop_after

import jrobust
from jrobust._src.data.transforms import (
    TRANSFORMS,
    apply_per_image,
    check_transform,
    get_transform,
    random_rotate,
    random_scale,
    random_shift,
    rotate,
    scale,
    shift,
    with_transforms,
)
from jrobust._src.race.checkpoint import CheckpointMismatch
from jrobust._src.race.ledger import transform_table
from jrobust._src.rules import RULES


def _images(shape=(3, 9, 9, 2), seed=0):
    return jax.random.normal(jax.random.key(seed), shape, jnp.float32)


def _blobs(n=32, sigma=3.0):
    """A smooth image: two Gaussian blobs of widths well above a pixel, (1, n, n, 1)."""
    r = np.arange(n) - (n - 1) / 2
    y, x = np.meshgrid(r, r, indexing="ij")
    img = np.exp(-((y - 3) ** 2 + (x + 4) ** 2) / (2 * sigma**2))
    img += 0.7 * np.exp(-((y + 5) ** 2 + (x - 2) ** 2) / (2 * (1.5 * sigma) ** 2))
    return jnp.asarray(img, jnp.float32)[None, :, :, None]


# ------------------------------------------------------------------------- exact special cases
@pytest.mark.parametrize("shape", [(3, 9, 9, 2), (2, 8, 8, 1), (1, 5, 7, 3)])
def test_identity_parameters_return_the_input_exactly(shape):
    x = _images(shape)
    assert np.array_equal(rotate(x, 0.0), x)
    assert np.array_equal(rotate(x, 360.0), x)
    assert np.array_equal(scale(x, 1.0), x)
    assert np.array_equal(shift(x, 0), x)
    assert np.array_equal(shift(x, (0, 0)), x)


@pytest.mark.parametrize("n", [8, 9])
def test_quarter_turns_equal_rot90_exactly(n):
    x = _images((3, n, n, 2))
    for degrees, k in [(90, 1), (180, 2), (270, 3), (-90, 3), (450, 1)]:
        assert np.array_equal(rotate(x, degrees), jnp.rot90(x, k=k, axes=(1, 2))), degrees
    # Under jit, with the angle traced, the quarter turn is still a bitwise copy.
    assert np.array_equal(jax.jit(rotate)(x, 90.0), jnp.rot90(x, k=1, axes=(1, 2)))


def test_half_turn_flips_both_axes_exactly():
    x = _images((2, 8, 8, 1))
    assert np.array_equal(rotate(x, 180.0), x[:, ::-1, ::-1, :])
    xr = _images((2, 6, 10, 1))  # also non-square: the half turn maps the frame onto itself
    assert np.array_equal(rotate(xr, 180.0), xr[:, ::-1, ::-1, :])


def test_rotation_direction_is_counter_clockwise_as_displayed():
    x = np.zeros((1, 5, 5, 1), np.float32)
    x[0, 2, 4, 0] = 1.0  # right of the centre
    out = np.asarray(rotate(jnp.asarray(x), 90.0))
    assert out[0, 0, 2, 0] == 1.0 and out.sum() == 1.0  # now above the centre (row 0 is the top)


def test_rotate_45_then_minus_45_is_close_in_the_interior():
    x = _blobs(32)
    back = rotate(rotate(x, 45.0), -45.0)
    r = np.arange(32) - 15.5
    interior = (r[:, None] ** 2 + r[None, :] ** 2) < 12**2  # the corners are lost at 45°
    err = np.abs(np.asarray(back - x)[0, :, :, 0])[interior].max()
    assert err < 0.06  # two bilinear resamplings (each a slight blur) of unit blobs, sigma >= 3 px;
    # measured 0.036 at the peak
    assert np.abs(np.asarray(rotate(x, 45.0) - x)).max() > 0.3  # a real change in between


def test_integer_shift_equals_roll_with_the_wrapped_part_zeroed():
    x = _images((2, 7, 9, 2))
    for dy, dx in [(2, -3), (-1, 0), (0, 4), (3, 3)]:
        expected = np.array(jnp.roll(x, (dy, dx), axis=(1, 2)))
        if dy > 0:
            expected[:, :dy] = 0
        elif dy < 0:
            expected[:, dy:] = 0
        if dx > 0:
            expected[:, :, :dx] = 0
        elif dx < 0:
            expected[:, :, dx:] = 0
        assert np.array_equal(shift(x, (dy, dx)), expected), (dy, dx)
    assert np.array_equal(shift(x, 2), shift(x, (2, 2)))  # a scalar shifts both axes
    assert not np.any(shift(x, (0, 9)))  # shifted out of the frame entirely


def test_fractional_shift_is_the_average_of_neighbours():
    x = _images((1, 6, 6, 1))
    half = np.asarray(shift(x, (0.0, 0.5)))[0, :, :, 0]
    xs = np.asarray(x)[0, :, :, 0]
    np.testing.assert_allclose(half[:, 1:], 0.5 * (xs[:, :-1] + xs[:, 1:]), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(half[:, 0], 0.5 * xs[:, 0], rtol=1e-6, atol=1e-6)  # zero fill


def test_hand_computed_bilinear_value_at_30_degrees():
    v = (np.arange(25, dtype=np.float32) ** 2 / 7).reshape(5, 5)  # not bilinear in (r, c)
    out = np.asarray(rotate(jnp.asarray(v)[None, :, :, None], 30.0))[0, :, :, 0]
    # Output pixel (1, 3): offset (dy, dx) = (-1, 1) from the centre (2, 2). The inverse of a
    # displayed counter-clockwise turn samples the input at
    #   row = 2 + dy cos30 + dx sin30 = 2 - 0.8660254 + 0.5 = 1.6339746
    #   col = 2 + dx cos30 - dy sin30 = 2 + 0.8660254 + 0.5 = 3.3660254
    c, s = math.cos(math.radians(30)), math.sin(math.radians(30))
    row, col = 2 - c + s, 2 + c + s
    fr, fc = row - 1, col - 3
    expected = (
        (1 - fr) * (1 - fc) * v[1, 3]
        + (1 - fr) * fc * v[1, 4]
        + fr * (1 - fc) * v[2, 3]
        + fr * fc * v[2, 4]
    )
    assert abs(out[1, 3] - expected) < 1e-4 * abs(expected)
    # A position one pixel outside the frame mixes in zeros: output (0, 4) samples row
    # 2 - 2c + 2s = 1.2679, col 2 + 2c + 2s = 4.7321, so only the column-4 neighbours count.
    row, col = 2 - 2 * c + 2 * s, 2 + 2 * c + 2 * s
    fr, fc = row - 1, col - 4
    expected = (1 - fr) * (1 - fc) * v[1, 4] + fr * (1 - fc) * v[2, 4]
    assert abs(out[0, 4] - expected) < 1e-4 * abs(expected)


def test_scale_by_two_doubles_a_gaussian_blob():
    n = 33
    r = np.arange(n) - 16.0
    y, x = np.meshgrid(r, r, indexing="ij")
    blob = lambda sigma: np.exp(-(y**2 + x**2) / (2 * sigma**2)).astype(np.float32)
    out = np.asarray(scale(jnp.asarray(blob(3.0))[None, :, :, None], 2.0))[0, :, :, 0]
    assert np.abs(out - blob(6.0)).max() < 0.04  # bilinear error at the peak, measured 0.026
    # Output pixel p samples centre + (p - centre) / 2: pixel (16, 17) sits half-way.
    v = blob(3.0)
    assert abs(out[16, 17] - 0.5 * (v[16, 16] + v[16, 17])) < 1e-6
    with pytest.raises(ValueError, match="positive"):
        scale(jnp.asarray(blob(3.0))[None, :, :, None], 0.0)


def test_non_square_images_keep_their_shape():
    x = _images((2, 6, 8, 1))
    for fn, p in [(rotate, 90.0), (rotate, 30.0), (scale, 1.7), (shift, (1.5, -2.0))]:
        assert fn(x, p).shape == x.shape
    # A quarter turn of a 6x8 frame about its centre (2.5, 3.5): out[r, c] = in[c - 1, 6 - r],
    # and the columns 0 and 7 have no source (zero fill).
    out = np.asarray(rotate(x, 90.0))
    xs = np.asarray(x)
    expected = np.zeros_like(xs)
    for r in range(6):
        for c in range(1, 7):
            expected[:, r, c] = xs[:, c - 1, 6 - r]
    assert np.array_equal(out, expected)


def test_bad_inputs_give_clear_errors():
    with pytest.raises(ValueError, match=r"\(n, H, W, C\)"):
        rotate(jnp.zeros((5, 5, 1)), 10.0)
    with pytest.raises(ValueError, match="scalar or a pair"):
        shift(jnp.zeros((1, 5, 5, 1)), jnp.zeros(3))


# --------------------------------------------------------------------- tracing and compilation
GRIDS = {
    "rotation": np.array([0.0, 17.0, 45.0, 90.0, -130.0], np.float32),
    "scale": np.array([0.5, 0.8, 1.0, 1.3, 2.0], np.float32),
    "shift": np.array([-2.0, -0.5, 0.0, 1.25, 3.0], np.float32),
}


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_jit_and_vmap_match_eager_calls(name):
    fn = TRANSFORMS[name]
    x = _blobs(16)
    params = GRIDS[name]
    eager = np.stack([np.asarray(fn(x, float(p))) for p in params])
    jitted = np.stack([np.asarray(jax.jit(fn)(x, p)) for p in params])
    vmapped = np.asarray(jax.jit(jax.vmap(fn, in_axes=(None, 0)))(x, params))
    np.testing.assert_allclose(jitted, eager, rtol=0, atol=1e-6)
    np.testing.assert_allclose(vmapped, eager, rtol=0, atol=1e-6)
    assert len({float(np.abs(e).sum()) for e in eager}) == len(params)  # the grid matters


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_lax_map_over_a_parameter_grid_compiles_once(name):
    fn = TRANSFORMS[name]
    x = _blobs(16)
    traces = []

    def one(p):
        traces.append(1)  # runs only while tracing
        return fn(x, p)

    run = jax.jit(lambda ps: jax.lax.map(one, ps))
    first = run(jnp.asarray(GRIDS[name]))
    second = run(jnp.asarray(GRIDS[name][::-1].copy()))
    assert len(traces) == 1
    np.testing.assert_allclose(np.asarray(second)[::-1], np.asarray(first), atol=1e-6)


# -------------------------------------------------------------------------------- augmentation
def test_random_rotate_draws_one_angle_per_image():
    x = jnp.broadcast_to(_blobs(16), (6, 16, 16, 1))  # six copies of one image
    key = jax.random.key(3)
    out = random_rotate(key, x, 30.0)
    assert out.shape == x.shape and out.dtype == x.dtype
    sums = {round(float(v), 4) for v in jnp.abs(out - x).sum(axis=(1, 2, 3))}
    assert len(sums) == 6  # every copy got its own angle
    assert np.array_equal(out, random_rotate(key, x, 30.0))  # deterministic in the key
    assert not np.array_equal(out, random_rotate(jax.random.key(4), x, 30.0))
    assert np.array_equal(random_rotate(key, x, 0.0), x)
    # The draw is the documented one: uniform in [-max, max], applied image by image.
    degrees = jax.random.uniform(key, (6,), jnp.float32, minval=-30.0, maxval=30.0)
    np.testing.assert_allclose(out, apply_per_image(rotate, x, degrees), atol=1e-6)


def test_random_scale_and_shift_draw_per_image_parameters():
    x = jnp.broadcast_to(_blobs(16), (5, 16, 16, 1))
    key = jax.random.key(0)
    out = random_scale(key, x, 0.7, 1.4)
    assert out.shape == x.shape
    assert len({round(float(v), 4) for v in out.sum(axis=(1, 2, 3))}) == 5
    assert np.array_equal(out, random_scale(key, x, 0.7, 1.4))
    assert np.array_equal(random_scale(key, x, 1.0, 1.0), x)
    factors = jnp.exp(jax.random.uniform(key, (5,), minval=jnp.log(0.7), maxval=jnp.log(1.4)))
    np.testing.assert_allclose(out, apply_per_image(scale, x, factors), atol=1e-6)
    shifted = random_shift(key, x, 2)
    assert shifted.shape == x.shape
    assert np.array_equal(shifted, random_shift(key, x, 2))
    assert np.array_equal(random_shift(key, x, 0), x)
    with pytest.raises(ValueError, match="positive"):
        random_scale(key, x, 0.0, 2.0)


def test_augmentation_inside_a_vmapped_jitted_stack_uses_each_lanes_key():
    # The trainer's pattern: one key per lane, vmapped and jitted; lanes must differ.
    x = jnp.broadcast_to(_blobs(12), (4, 12, 12, 1))
    keys = jax.random.split(jax.random.key(1), 3)
    out = jax.jit(jax.vmap(lambda k: random_rotate(k, x, 45.0)))(keys)
    assert out.shape == (3, *x.shape)
    for lane in range(3):
        np.testing.assert_allclose(out[lane], random_rotate(keys[lane], x, 45.0), atol=1e-6)
    assert not np.allclose(out[0], out[1])


# ---------------------------------------------------------------------- the transform contract
def test_check_transform_accepts_the_builtins_and_a_user_transform():
    for name in TRANSFORMS:
        assert check_transform(name, (8, 8, 1)) is TRANSFORMS[name]
    assert check_transform("shift", (8, 8, 1), param_shape=(2,)) is shift
    brighten = lambda x, p: x * (1 + p)
    assert check_transform(brighten, (2, 6, 6, 3)) is brighten
    assert get_transform(brighten) is brighten


def test_check_transform_rejects_wrong_shapes_and_untraceable_functions():
    with pytest.raises(ValueError, match="keep the images' shape"):
        check_transform(lambda x, p: x[:, ::2], (8, 8, 1))
    with pytest.raises(ValueError, match="keep the images' shape"):
        check_transform(lambda x, p: x.astype(jnp.int32), (8, 8, 1))
    with pytest.raises(ValueError, match="failed to trace"):
        check_transform(lambda x, p: x if p > 0 else -x, (8, 8, 1))  # Python branch on a tracer
    with pytest.raises(ValueError, match="must return one array"):
        check_transform(lambda x, p: (x, x), (8, 8, 1))
    with pytest.raises(ValueError, match="input_shape"):
        check_transform("rotation", (8, 8))


def test_unknown_transform_names_list_the_known_ones():
    with pytest.raises(ValueError, match=r"known transforms: \['rotation', 'scale', 'shift'\]"):
        get_transform("shear")
    with pytest.raises(ValueError, match="unknown transform 'shear'"):
        check_transform("shear", (8, 8, 1))


# ------------------------------------------------------------- transformed test sets in a race


def _space():
    return jrobust.SearchSpace.from_models([small_cnn(learning_rate=lr) for lr in (3e-3, 1e-2)])


def _rows(ledger, name=None, param=None):
    led = ledger[ledger["transform"] == ("none" if name is None else name)]
    if param is not None:
        led = led[led["param"] == param]
    return led.set_index(["model_id", "instance"])["loss"].sort_index()


def test_a_grid_trains_once_and_the_identity_sets_are_the_untransformed_loss(toy_population):
    """Rotation by 0 and scaling by 1 give the untransformed loss exactly; the untransformed
    losses equal those of the same race without transformations; a grid of T sets compiles
    one program (T evaluations inside it); rot90 inside the trainer equals jnp.rot90."""
    quarter = lambda x, p: jnp.rot90(x, k=1, axes=(1, 2))  # noqa: E731
    pop = with_transforms(
        toy_population, rotation=[0, 90, 30], scale=[1.0, 1.4], custom={"rot90": quarter}
    )
    kw = dict(warmup=3, max_instances=3, compilation_cache=False)
    plain = jrobust.race(_space(), toy_population, **kw)
    r = jrobust.race(_space(), pop, **kw)
    assert r.timing["n_compiled"] == plain.timing["n_compiled"] == 1
    led = r.ledger
    assert {"transform", "param"} <= set(led.columns)
    assert len(led) == len(plain.ledger) * (1 + len(pop.transforms))  # one row per (instance, set)
    base = _rows(led)
    np.testing.assert_array_equal(base.to_numpy(), _rows(plain.ledger.assign(transform="none")))
    np.testing.assert_array_equal(_rows(led, "rotation", 0.0).to_numpy(), base.to_numpy())
    np.testing.assert_array_equal(_rows(led, "scale", 1.0).to_numpy(), base.to_numpy())
    np.testing.assert_allclose(
        _rows(led, "rotation", 90.0).to_numpy(), _rows(led, "rot90", 0.0).to_numpy(), rtol=1e-6
    )
    assert not np.allclose(_rows(led, "rotation", 30.0).to_numpy(), base.to_numpy())
    assert np.isnan(led[led["transform"] == "none"]["param"]).all()
    # the test metrics describe the untransformed set: on its rows only, never copied to others
    kept = {"model_id", "instance", "loss", "status", "round", "stage", "stage_kind", "train_size"}
    kept |= {"seconds"}
    metrics = [c for c in plain.ledger.columns if c not in kept | {"epochs"}]
    assert metrics and led[led["transform"] == "none"][metrics].notna().all().all()
    assert led[led["transform"] != "none"][metrics].isna().all().all()
    # the summary and distributions stay on the untransformed instances
    assert (r.summary(top=None)["instances"] == 3).all()
    np.testing.assert_array_equal(r.losses(0), plain.losses(0))


def _planted(m_count=5, t_count=4):
    """Model m: level 1 + 0.1 m, spread across transforms 0.8 - 0.2 m, small instance noise;
    by instances model 0 is best, by the worst transform the last one."""
    level = 1.0 + 0.1 * np.arange(m_count)
    spread = np.linspace(0.8, 0.0, m_count)
    grid = np.linspace(0.0, 1.0, t_count)

    def evaluator(models, instances):
        loss = level[models] + 0.01 * np.sin(3.0 * instances + models)
        return loss, loss[:, None] + spread[models][:, None] * grid[None, :]

    return evaluator


@pytest.mark.parametrize("over", ["instances", "transforms", "both"])
def test_over_decides_what_the_statistics_see(over):
    evaluator = _planted()
    r = jrobust.race(5, evaluator=evaluator, statistic="max", over=over, warmup=4)
    assert r.winner_id == (0 if over == "instances" else 4)
    # the path's statistic is the hand-computed one on the race's table
    first = r.path[r.path["round"] == 1].set_index("model_id")["statistic"].sort_index()
    losses, t = evaluator(np.repeat(np.arange(5), 4), np.tile(np.arange(4), 5))
    base, t = losses.reshape(5, 4), t.reshape(5, 4, -1)
    expected = {
        "instances": base.max(axis=1),
        "transforms": t.mean(axis=1).max(axis=1),
        "both": t.reshape(5, -1).max(axis=1),
    }[over]
    np.testing.assert_allclose(first.to_numpy(), expected, rtol=1e-12)
    # the summary reports the race's statistic, from the ledger alone
    s = r.summary(top=None).set_index("model_id")
    table, mask, ids = jrobust._src.result.loss_table(r.decisive_ledger(), over)
    np.testing.assert_allclose(
        s.loc[ids, "statistic"], jrobust.stats.get_statistic("max")(table, mask)
    )


def test_transform_table_matches_numpy():
    rng = np.random.default_rng(1)
    t = rng.random((3, 5, 4))
    mask = rng.random((3, 5)) < 0.7
    mask[:, 0] = True
    t[1, 2, 3] = np.inf
    mask[1, 2] = True
    table, tmask = transform_table(t, mask, "transforms")
    for m in range(3):
        expected = t[m][mask[m]].mean(axis=0)
        np.testing.assert_allclose(table[m], expected)
    assert tmask.all() and np.isinf(table[1, 3])
    both, bmask = transform_table(t, mask, "both")
    assert both.shape == (3, 20) and bmask.sum() == mask.sum() * 4
    np.testing.assert_array_equal(both[bmask], t[mask].reshape(-1))


@pytest.mark.parametrize("over", ["transforms", "both"])
@pytest.mark.parametrize("rule", sorted(RULES))
def test_every_rule_races_over_transformations(rule, over):
    spec = {"quantile": "quantile:0.5", "threshold": "threshold:1.3"}.get(rule, rule)
    r = jrobust.race(
        6, evaluator=_planted(6), statistic="mean", rule=spec, over=over, warmup=6, max_instances=10
    )
    assert r.winner_id in range(6)
    assert len(r.ledger) == r.n_trainings * 5
    if rule not in ("threshold",):
        assert r.summary(top=None)["statistic"].notna().all()


def test_a_race_over_transforms_resumes_to_the_same_result(tmp_path, toy_population):
    pop = with_transforms(toy_population, rotation=[0, 45], shift=[1])
    kw = dict(warmup=3, max_instances=5, instances_per_round=1, over="transforms",
              statistic="std", compilation_cache=False)  # fmt: skip
    full = jrobust.race(_space(), pop, **kw)
    jrobust.race(_space(), pop, checkpoint_dir=tmp_path, progress=stop_after(1), **kw)
    resumed = jrobust.race(_space(), pop, checkpoint_dir=tmp_path, **kw)
    assert resumed.winner_id == full.winner_id
    cols = ["model_id", "instance", "transform", "param", "loss"]
    pd.testing.assert_frame_equal(full.ledger[cols], resumed.ledger[cols])
    # another grid is another race: the checkpoint is refused
    other = with_transforms(toy_population, rotation=[0, 30], shift=[1])
    with pytest.raises(CheckpointMismatch, match="different race"):
        jrobust.race(_space(), other, checkpoint_dir=tmp_path, **kw)


def test_run_folder_keeps_the_transform_columns(tmp_path, toy_population):
    pop = with_transforms(toy_population, rotation=[0, 20])
    r = jrobust.race(_space(), pop, warmup=3, max_instances=3, over="both", compilation_cache=False)
    jrobust.save_run(r, tmp_path / "run")
    back = jrobust.load_run(tmp_path / "run")
    assert list(back.ledger["transform"].unique()) == ["none", "rotation"]
    assert back.winner_id == r.winner_id
    text = (tmp_path / "run" / "summary.md").read_text()
    assert "## Transformed test sets" in text and "rotation 20" in text
    assert "max over both" in text
    assert (tmp_path / "run" / "transforms.png").is_file()


def test_bad_transform_input_fails_before_compiling(toy_population):
    with pytest.raises(ValueError, match="with_transforms"):
        jrobust.race(_space(), toy_population, over="transforms")
    with pytest.raises(ValueError, match="over must be one of"):
        jrobust.RaceSettings(over="angles")
    with pytest.raises(ValueError, match="unknown transform 'shear'"):
        with_transforms(toy_population, custom={"mine": ("shear", [1.0])})
    crop = lambda x, p: x[:, 1:, 1:, :]  # noqa: E731
    with pytest.raises(ValueError, match="must keep the images' shape"):
        with_transforms(toy_population, custom={"crop": crop})
    with pytest.raises(ValueError, match="scale factors must be positive"):
        with_transforms(toy_population, scale=[1.0, 0.0])
    flat = jrobust.Population(np.zeros((300, 5), np.float32), np.zeros((300, 1)), test_size=50)
    with pytest.raises(ValueError, match="need images"):
        with_transforms(flat, rotation=[0, 10])
    with pytest.raises(TypeError):
        with_transforms(toy_population, shear=[1.0])  # an unknown name is not a keyword


def test_riesz_network_on_non_square_images_is_refused_before_compiling():
    x = np.random.default_rng(0).random((300, 8, 10, 1)).astype(np.float32)
    pop = jrobust.Population(x, np.arange(300) % 10, num_classes=10, test_size=50)
    with pytest.raises(ValueError, match="square"):
        jrobust.race([jrobust.zoo.riesz_config(train_size=100, epochs=1)], pop)
