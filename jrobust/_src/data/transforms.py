"""Transformations of image batches: rotation, scaling, translation (pure, jittable, vmappable).

Every transform has the signature ``transform(images, param) -> images'``: ``images`` is a float
batch ``(n, H, W, C)`` (NHWC, as everywhere in jrobust) and ``param`` a scalar that may be a
*traced* value, so one compiled program can evaluate a whole grid of parameters (``jax.vmap`` or
``lax.map`` over a vector of parameters) and a training augmentation can draw one random parameter
per image inside the vmapped trainer. The output has the input's shape and dtype.

Conventions (pixel coordinates: row ``r`` grows downwards, column ``c`` to the right, pixel centres
at integers, as an image is displayed with row 0 at the top):

* **centre**: ``((H - 1) / 2, (W - 1) / 2)``, the centre of the pixel grid (between pixels for an
  even side). Rotation and scaling are about this point.
* **sampling**: every output pixel takes the bilinear interpolation of the input at the
  inverse-transformed position of its centre; the four neighbours that fall outside the image count
  as 0 (**zero fill**), so values fade to 0 within one pixel of the border. Sampling coordinates
  within ``SNAP = 1e-4`` pixel of an integer are snapped to it, and the sine and cosine of multiples
  of 90° are taken exactly, so the identity parameters and quarter turns copy pixels exactly.
* :func:`rotate`: ``degrees > 0`` turns the content **counter-clockwise as displayed**.
  ``rotate(x, 90)`` equals ``jnp.rot90(x, k=1, axes=(1, 2))`` bitwise for square images and
  ``rotate(x, 180)`` equals ``x[:, ::-1, ::-1]``. A non-square image keeps its shape ``(H, W)``:
  the content turns about the centre, what leaves the frame is cut and the uncovered corners are 0
  (a quarter turn is then a pixel copy only when ``H`` and ``W`` have the same parity; otherwise the
  rotated grid falls half-way between pixels and is interpolated).
* :func:`scale`: ``factor > 1`` enlarges the content about the centre (output pixel ``p`` samples
  ``centre + (p - centre) / factor``); ``factor < 1`` shrinks it with plain bilinear sampling (no
  anti-aliasing prefilter, so fine detail can alias) and pads with 0. ``factor`` must be positive.
* :func:`shift`: ``pixels`` is a scalar (the same shift down and right) or a pair ``(dy, dx)``;
  ``dy > 0`` moves the content down, ``dx > 0`` to the right; integer shifts are exact pixel copies
  (``jnp.roll`` with the wrapped part zeroed), fractional ones are bilinear; zero fill.

A user's own transform has the same contract: ``fn(images, param)`` is a pure JAX function of a
``(n, H, W, C)`` batch and a scalar ``param`` (possibly traced) that returns an array of the same
shape and dtype, without Python control flow on the *value* of ``param``. :func:`check_transform`
verifies this with ``jax.eval_shape`` (nothing is compiled) and raises a ``ValueError`` that says what
is wrong. Transforms are looked up by name in :data:`TRANSFORMS` through :func:`get_transform`.

Augmentation helpers (:func:`random_rotate`, :func:`random_scale`, :func:`random_shift`) draw one
parameter per image from a key and apply the transform image by image with ``jax.vmap`` (no Python
loop), so they run inside the trainer's per-lane ``_augment`` with that lane's key.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp

__all__ = [
    "SNAP",
    "TRANSFORMS",
    "Transform",
    "TransformGrid",
    "with_transforms",
    "apply_per_image",
    "check_transform",
    "get_transform",
    "random_rotate",
    "random_scale",
    "random_shift",
    "rotate",
    "scale",
    "shift",
]

Transform = Callable[[jax.Array, jax.Array], jax.Array]

SNAP = 1e-4
"""Sampling coordinates closer than this (in pixels) to an integer are snapped to it."""


# ------------------------------------------------------------------------------- the sampler
def _check_images(images: jax.Array, name: str) -> jax.Array:
    images = jnp.asarray(images)
    if images.ndim != 4:
        raise ValueError(
            f"{name} takes a batch of images (n, H, W, C); got an array of shape {images.shape} "
            "(add a batch axis with x[None] for a single image)"
        )
    if not jnp.issubdtype(images.dtype, jnp.floating):
        raise ValueError(f"{name} takes floating-point images, got dtype {images.dtype}")
    return images


def _snap(coords: jax.Array) -> jax.Array:
    nearest = jnp.round(coords)
    return jnp.where(jnp.abs(coords - nearest) < SNAP, nearest, coords)


def _bilinear(images: jax.Array, rows: jax.Array, cols: jax.Array) -> jax.Array:
    """Sample every image at the (H, W) grid of positions ``(rows, cols)``, zero outside."""
    n, h, w, c = images.shape
    rows, cols = _snap(rows), _snap(cols)
    r0, c0 = jnp.floor(rows), jnp.floor(cols)
    fr, fc = (rows - r0).astype(images.dtype), (cols - c0).astype(images.dtype)
    r0, c0 = r0.astype(jnp.int32), c0.astype(jnp.int32)
    flat = images.reshape(n, h * w, c)

    def tap(r, col, weight):
        inside = (r >= 0) & (r < h) & (col >= 0) & (col < w)
        index = jnp.clip(r, 0, h - 1) * w + jnp.clip(col, 0, w - 1)
        values = jnp.take(flat, index.reshape(-1), axis=1).reshape(n, *rows.shape, c)
        return values * jnp.where(inside, weight, 0).astype(images.dtype)[None, :, :, None]

    # With integer positions the weights are exactly (1, 0, 0, 0): the sum is an exact copy.
    return (
        tap(r0, c0, (1 - fr) * (1 - fc))
        + tap(r0, c0 + 1, (1 - fr) * fc)
        + tap(r0 + 1, c0, fr * (1 - fc))
        + tap(r0 + 1, c0 + 1, fr * fc)
    )


def _grid(h: int, w: int) -> tuple[jax.Array, jax.Array, float, float]:
    """Output pixel offsets from the centre: (dy, dx) of shape (H, W), and the centre."""
    cy, cx = (h - 1) / 2, (w - 1) / 2
    dy = jnp.arange(h, dtype=jnp.float32)[:, None] - cy
    dx = jnp.arange(w, dtype=jnp.float32)[None, :] - cx
    return jnp.broadcast_to(dy, (h, w)), jnp.broadcast_to(dx, (h, w)), cy, cx


def _sin_cos_degrees(degrees: jax.Array) -> tuple[jax.Array, jax.Array]:
    """sin and cos of an angle in degrees, exact (0, ±1) at multiples of 90°."""
    d = jnp.mod(jnp.asarray(degrees, jnp.float32), 360.0)
    quarter = jnp.round(d / 90.0)
    exact = d == quarter * 90.0
    k = jnp.mod(quarter, 4).astype(jnp.int32)
    theta = jnp.deg2rad(d)
    s = jnp.where(exact, jnp.array([0.0, 1.0, 0.0, -1.0], jnp.float32)[k], jnp.sin(theta))
    c = jnp.where(exact, jnp.array([1.0, 0.0, -1.0, 0.0], jnp.float32)[k], jnp.cos(theta))
    return s, c


# ---------------------------------------------------------------------------- the transforms
def rotate(images: jax.Array, degrees: float | jax.Array) -> jax.Array:
    """Rotate every image by ``degrees`` counter-clockwise (as displayed) about its centre.

    Bilinear interpolation, zero outside; the shape ``(n, H, W, C)`` is kept (also for non-square
    images, whose corners are then cut or zero-filled). ``rotate(x, 0)`` returns ``x`` exactly and
    ``rotate(x, 90)`` equals ``jnp.rot90(x, k=1, axes=(1, 2))`` exactly for square images.
    ``degrees`` may be traced.
    """
    return _rotate(_check_images(images, "rotate"), jnp.asarray(degrees, jnp.float32))


def scale(images: jax.Array, factor: float | jax.Array) -> jax.Array:
    """Scale every image isotropically about its centre by ``factor`` (> 1 enlarges).

    Bilinear, zero outside, shape kept; ``scale(x, 1)`` returns ``x`` exactly. ``factor`` must be
    positive and may be traced (a concrete non-positive factor raises ``ValueError``).
    """
    images = _check_images(images, "scale")
    if isinstance(factor, (int, float)) and factor <= 0:
        raise ValueError(f"scale factor must be positive, got {factor}")
    return _scale(images, jnp.asarray(factor, jnp.float32))


def shift(images: jax.Array, pixels: float | jax.Array) -> jax.Array:
    """Translate every image by ``pixels``: a scalar (same shift down and right) or ``(dy, dx)``.

    ``dy > 0`` moves the content down, ``dx > 0`` right; zero fill. Integer shifts are exact
    copies; fractional shifts are bilinear. ``pixels`` may be traced.
    """
    images = _check_images(images, "shift")
    p = jnp.asarray(pixels, jnp.float32)
    if p.shape not in ((), (2,)):
        raise ValueError(f"shift takes a scalar or a pair (dy, dx), got shape {p.shape}")
    return _shift(images, jnp.broadcast_to(p, (2,)))


# The cores are jitted so that an eager call compiles one program per shape instead of dispatching
# (and compiling) every small operation; inside a caller's jit or vmap they are simply inlined.
@jax.jit
def _rotate(images: jax.Array, degrees: jax.Array) -> jax.Array:
    _, h, w, _ = images.shape
    dy, dx, cy, cx = _grid(h, w)
    s, c = _sin_cos_degrees(degrees)
    # Inverse map of a displayed counter-clockwise turn (rows point down): the output pixel at
    # offset (dy, dx) shows the input at (dy cos + dx sin, dx cos - dy sin).
    rows = cy + (dy * c + dx * s)
    cols = cx + (dx * c - dy * s)
    return _bilinear(images, rows, cols)


@jax.jit
def _scale(images: jax.Array, factor: jax.Array) -> jax.Array:
    _, h, w, _ = images.shape
    dy, dx, cy, cx = _grid(h, w)
    inv = 1.0 / factor
    return _bilinear(images, cy + dy * inv, cx + dx * inv)


@jax.jit
def _shift(images: jax.Array, pixels: jax.Array) -> jax.Array:
    _, h, w, _ = images.shape
    rows = jnp.arange(h, dtype=jnp.float32)[:, None] - pixels[0]
    cols = jnp.arange(w, dtype=jnp.float32)[None, :] - pixels[1]
    return _bilinear(images, jnp.broadcast_to(rows, (h, w)), jnp.broadcast_to(cols, (h, w)))


TRANSFORMS: dict[str, Transform] = {"rotation": rotate, "scale": scale, "shift": shift}
"""The built-in transforms by name; the parameter is degrees, a factor, and pixels."""


def get_transform(transform: str | Transform) -> Transform:
    """A transform by name (a key of :data:`TRANSFORMS`) or a callable, returned as is."""
    if callable(transform):
        return transform
    if transform not in TRANSFORMS:
        raise ValueError(f"unknown transform {transform!r}; known transforms: {sorted(TRANSFORMS)}")
    return TRANSFORMS[transform]


def check_transform(
    transform: str | Transform,
    input_shape: tuple[int, ...],
    param_shape: tuple[int, ...] = (),
    dtype=jnp.float32,
) -> Transform:
    """Check a transform against the contract without compiling; return the resolved callable.

    ``input_shape`` is the shape of one example ``(H, W, C)`` (as ``Population.input_shape``) or of
    a batch ``(n, H, W, C)``. The transform is traced once with ``jax.eval_shape`` on a batch and a
    *traced* parameter of ``param_shape`` (a scalar by default). Raises ``ValueError`` when it fails
    to trace (e.g. Python control flow on the parameter's value) or returns another shape or dtype.
    """
    fn = get_transform(transform)
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 3:
        shape = (2, *shape)
    if len(shape) != 4:
        raise ValueError(f"input_shape must be (H, W, C) or (n, H, W, C), got {tuple(input_shape)}")
    name = getattr(fn, "__name__", repr(fn))
    x = jax.ShapeDtypeStruct(shape, dtype)
    p = jax.ShapeDtypeStruct(tuple(param_shape), jnp.float32)
    try:
        out = jax.eval_shape(fn, x, p)
    except Exception as err:  # any failure to trace is reported the same way
        raise ValueError(
            f"transform {name} failed to trace on images {shape} {jnp.dtype(dtype).name} with a "
            f"traced parameter of shape {tuple(param_shape)}: {type(err).__name__}: {err}. A "
            "transform must be a pure JAX function fn(images, param) without Python control flow "
            "on the value of param."
        ) from err
    if not isinstance(out, jax.ShapeDtypeStruct):
        raise ValueError(f"transform {name} must return one array, got {out!r}")
    if out.shape != shape or out.dtype != jnp.dtype(dtype):
        raise ValueError(
            f"transform {name} must keep the images' shape and dtype: {shape} "
            f"{jnp.dtype(dtype).name} in, {out.shape} {out.dtype.name} out"
        )
    return fn


# ----------------------------------------------------------------------------- augmentation
def apply_per_image(transform: str | Transform, images: jax.Array, params: jax.Array) -> jax.Array:
    """Apply ``transform`` to each image with its own parameter (``params[i]`` for image ``i``)."""
    fn = get_transform(transform)
    return jax.vmap(lambda image, p: fn(image[None], p)[0])(images, params)


def random_rotate(key: jax.Array, images: jax.Array, max_degrees: float | jax.Array) -> jax.Array:
    """Rotate each image by its own angle drawn uniformly from ``[-max_degrees, max_degrees]``."""
    images = _check_images(images, "random_rotate")
    return _random_rotate(key, images, jnp.asarray(max_degrees, jnp.float32))


def random_scale(
    key: jax.Array, images: jax.Array, low: float | jax.Array, high: float | jax.Array
) -> jax.Array:
    """Scale each image by its own factor drawn log-uniformly from ``[low, high]`` (0 < low ≤ high).

    Log-uniform, so that e.g. ``[0.5, 2]`` enlarges and shrinks equally often.
    """
    images = _check_images(images, "random_scale")
    for name, v in (("low", low), ("high", high)):
        if isinstance(v, (int, float)) and v <= 0:
            raise ValueError(f"random_scale: {name} must be positive, got {v}")
    return _random_scale(key, images, jnp.asarray(low, jnp.float32), jnp.asarray(high, jnp.float32))


def random_shift(key: jax.Array, images: jax.Array, max_pixels: int | jax.Array) -> jax.Array:
    """Shift each image by its own integer ``(dy, dx)``, each uniform in ``[-max_pixels, max_pixels]``.

    Integer shifts are exact pixel copies with zero fill (unlike ``flip_crop``'s reflect padding).
    """
    images = _check_images(images, "random_shift")
    return _random_shift(key, images, jnp.asarray(max_pixels, jnp.int32))


@jax.jit
def _random_rotate(key, images, max_degrees):
    n = images.shape[0]
    degrees = jax.random.uniform(key, (n,), jnp.float32, minval=-max_degrees, maxval=max_degrees)
    return apply_per_image(_rotate, images, degrees)


@jax.jit
def _random_scale(key, images, low, high):
    n = images.shape[0]
    log_f = jax.random.uniform(key, (n,), jnp.float32, minval=jnp.log(low), maxval=jnp.log(high))
    return apply_per_image(_scale, images, jnp.exp(log_f))


@jax.jit
def _random_shift(key, images, max_pixels):
    offsets = jax.random.randint(key, (images.shape[0], 2), -max_pixels, max_pixels + 1)
    return apply_per_image(_shift, images, offsets.astype(jnp.float32))


# ----------------------------------------------------------------------------- test-time grids
@dataclasses.dataclass(frozen=True)
class TransformGrid:
    """A family of transformed test sets: for each named transform, the parameters it is
    evaluated at. The trainer evaluates every instance on each ``(name, param)`` inside the
    compiled program, after training (``jrobust._src.steps``); the ledger gets one row per pair."""

    names: tuple[str, ...]
    functions: tuple[Transform, ...]
    params: tuple[tuple[float, ...], ...]

    @property
    def pairs(self) -> list[tuple[str, float]]:
        """Every ``(name, param)`` in evaluation order."""
        return [(n, p) for n, ps in zip(self.names, self.params, strict=True) for p in ps]

    def __len__(self) -> int:
        return sum(len(p) for p in self.params)


def _params(name: str, values) -> tuple[float, ...]:
    if isinstance(values, int | float):
        values = [values]
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: give a list of numbers, got {values!r}") from None
    if not out:
        raise ValueError(f"{name}: give at least one parameter")
    if not all(math.isfinite(v) for v in out):
        raise ValueError(f"{name}: the parameters must be finite, got {list(out)}")
    return out


def with_transforms(
    population: Any,
    *,
    rotation: Sequence[float] | None = None,
    scale: Sequence[float] | None = None,
    shift: Sequence[float] | None = None,
    custom: Mapping[str, Transform | tuple[Transform, Sequence[float]]] | None = None,
) -> Any:
    """The population with a family of transformed test sets (robustness to transformations).

    Every instance trained on it is also evaluated, after training and inside the compiled
    program, on its test split rotated by each angle (degrees), scaled by each factor, shifted
    by each number of pixels, and transformed by each of the user's own functions; the race's
    ledger gets one loss per (instance, transform, parameter), and ``race(..., over=...)`` takes
    its statistics over instances, over the transformations, or both.

    Args:
      population: a population of images ``(H, W, C)``.
      rotation, scale, shift: the parameters of the built-in transforms (``rotate``, ``scale``,
        ``shift``).
      custom: ``{name: fn}`` (one test set, ``fn(images, 0.0)``) or ``{name: (fn, params)}``
        (one per parameter), with ``fn(images, param) -> images`` a pure JAX function that
        keeps the shape and dtype (checked by ``check_transform`` before anything compiles);
        ``fn`` may also be a built-in's name (``"rotation"``, ``"scale"``, ``"shift"``).

    Returns:
      A copy of the population (the same data, splits and seed) carrying a ``TransformGrid``.

    Example:
      >>> import jrobust
      >>> pop = with_transforms(jrobust.data.digits(), rotation=[0, 15, 30], scale=[1.0, 1.2])
      >>> len(pop.transforms), pop.transforms.pairs[:2]
      (5, [('rotation', 0.0), ('rotation', 15.0)])
    """
    shape = tuple(population.input_shape)
    if len(shape) != 3:
        raise ValueError(
            f"transformations of the inputs need images (H, W, C); this population's inputs are "
            f"{shape}"
        )
    names, functions, params = [], [], []
    for name, values in (("rotation", rotation), ("scale", scale), ("shift", shift)):
        if values is not None:
            names.append(name)
            functions.append(TRANSFORMS[name])
            params.append(_params(name, values))
    for name, entry in dict(custom or {}).items():
        if name in names or not isinstance(name, str) or not name:
            raise ValueError(f"custom transform name {name!r} is empty or already used")
        fn, values = entry if isinstance(entry, tuple) else (entry, 0.0)
        if isinstance(entry, tuple) and len(entry) != 2:
            raise ValueError(f"custom transform {name!r}: give fn or (fn, [parameters])")
        names.append(name)
        functions.append(check_transform(fn, shape))
        params.append(_params(name, values))
    if not names:
        raise ValueError("give at least one of rotation=, scale=, shift= or custom=")
    if scale is not None and min(params[names.index("scale")]) <= 0:
        raise ValueError(
            f"scale factors must be positive, got {list(params[names.index('scale')])}"
        )
    grid = TransformGrid(tuple(names), tuple(functions), tuple(params))
    return dataclasses.replace(population, transforms=grid)
