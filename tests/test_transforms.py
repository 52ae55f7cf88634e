"""Image transformations: exact special cases, hand-computed values, tracing and augmentation."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jrobust.data.transforms import (
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
)


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
