"""Layers: the im2col and XLA convolution forms agree (one parameter layout); max pooling and
its hand-written gradient against XLA's ``reduce_window`` and its autodiff."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jrobust._src.models.architectures import CNN
from jrobust._src.models.layers import max_pool


def test_conv_forms_agree():
    arch = CNN()
    x = jax.random.normal(jax.random.key(1), (3, 15, 15, 1))
    p = arch.build("xla").init(jax.random.key(0), x)
    a = arch.build("xla").apply(p, x)
    b = arch.build("im2col").apply(p, x)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def reduce_window_max(x, size, stride):
    return jax.lax.reduce_window(
        x, -jnp.inf, jax.lax.max, (1, size, size, 1), (1, stride, stride, 1), "VALID"
    )


# (size, stride, height, width): the paper's model 1 pools 13x13 by (2, 2), cropping a rim, and
# 4x4 by (2, 1); the others are odd, non-square, overlapping and non-tiling maps
POOLS = [
    (2, 2, 13, 13),
    (2, 1, 4, 4),
    (2, 1, 5, 7),
    (2, 2, 7, 5),
    (3, 2, 9, 7),
    (3, 1, 5, 6),
    (3, 3, 11, 8),
]


@pytest.mark.parametrize("size, stride, height, width", POOLS)
def test_max_pool_and_its_gradient_equal_reduce_window_and_autodiff(size, stride, height, width):
    kx, kg = jax.random.split(jax.random.key(size * 100 + stride * 10 + height))
    x = jax.random.normal(kx, (3, height, width, 4))  # continuous values: no ties
    ours = max_pool(x, size, stride)
    reference = reduce_window_max(x, size, stride)
    np.testing.assert_array_equal(ours, reference)
    g = jax.random.normal(kg, reference.shape)  # an arbitrary upstream gradient

    def grad_of(pool):
        return jax.jit(jax.grad(lambda v: jnp.sum(pool(v) * g)))(x)

    expected = grad_of(lambda v: reduce_window_max(v, size, stride))
    np.testing.assert_allclose(grad_of(lambda v: max_pool(v, size, stride)), expected, atol=1e-6)
    # stacked lanes (the trainer's vmap): each lane's gradient is its own
    lanes = jnp.stack([x, -x])
    stacked = jax.vmap(jax.grad(lambda v: jnp.sum(max_pool(v, size, stride) * g)))(lanes)
    np.testing.assert_allclose(stacked[0], expected, atol=1e-6)
    negated = jax.grad(lambda v: jnp.sum(reduce_window_max(v, size, stride) * g))(-x)
    np.testing.assert_allclose(stacked[1], negated, atol=1e-6)


@pytest.mark.parametrize("size, stride", [(2, 2), (2, 1), (3, 2)])
def test_max_pool_gradient_goes_to_the_first_maximum_of_a_tie(size, stride):
    """Ties (common after a ReLU): the whole gradient goes to the window's first maximum in
    row-major order, as PyTorch's MaxPool2d does; a NumPy loop is the reference."""
    rng = np.random.default_rng(size + stride)
    x = rng.integers(0, 3, (2, 7, 5, 3)).astype(np.float32)  # many ties
    g = rng.standard_normal((2, (7 - size) // stride + 1, (5 - size) // stride + 1, 3))
    expected = np.zeros_like(x)
    for n, i, j, c in np.ndindex(*g.shape):
        window = x[n, i * stride : i * stride + size, j * stride : j * stride + size, c]
        di, dj = np.unravel_index(np.argmax(window), window.shape)  # argmax: the first maximum
        expected[n, i * stride + di, j * stride + dj, c] += g[n, i, j, c]
    got = jax.grad(lambda v: jnp.sum(max_pool(v, size, stride) * g))(jnp.asarray(x))
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
