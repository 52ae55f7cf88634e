"""Layers: the im2col and XLA convolution forms agree (one parameter layout)."""

import jax
import numpy as np

from jrobust.models import CNN


def test_conv_forms_agree():
    arch = CNN()
    x = jax.random.normal(jax.random.key(1), (3, 15, 15, 1))
    p = arch.build("xla").init(jax.random.key(0), x)
    a = arch.build("xla").apply(p, x)
    b = arch.build("im2col").apply(p, x)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
