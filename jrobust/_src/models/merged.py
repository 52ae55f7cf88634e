"""Several CNN (or MLP) architectures as lanes of one compiled model: the model of a program.

Models of one program may differ in their convolution channels and dense widths, in their
activation, in side features on/off, in the pooling before the head and in the dense head's
depth. The merged model has the widest shape of every layer; a lane's parameters are its own
narrow model's initial parameters (the same keys and fan-in scaling, ``init_leaf`` of its own
parameter paths) embedded in zeros. Per-lane masks on the weights keep the padding exactly zero
in the forward pass, the gradients and the optimizer state, whatever the activation: a padded
weight is multiplied by 0 before use, so its gradient is 0, and Adam's moments of a zero gradient
stay 0. A lane's initial kernel is drawn once per parameter path at the longest narrow length,
flattened: a He-normal draw depends on the element's flat index only, so the first ``n`` values
reshaped to the lane's narrow shape ARE its narrow model's draw, and the lane picks its block by
index arithmetic from small per-variant tables. The initialisation thus costs the same to
compile for 2 variants or 60 (every width of a searched integer range). Choices (activation,
pooling, head) are computed for every alternative and selected per lane. A lane is identified
by its *variant*: the index of its narrow architecture, an int32 value of the stack; every mask
and choice is a constant table indexed by it.

Example:
  >>> from jrobust import zoo
  >>> a = zoo.cnn_config(conv=(4,), pool=(2,), dense=(8,)).architecture
  >>> b = zoo.cnn_config(conv=(6,), pool=("global",), dense=(3, 5), activation="tanh").architecture
  >>> m = MergedModel.build([(a, False), (b, False)], (6, 6, 1), 0)
  >>> m.n_variants, m.conv_widths, [h.widths for h in m.heads]
  (2, (6,), [(8,), (3, 5)])
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jrobust._src.models.architectures import CNN, MLP
from jrobust._src.models.contract import PRELU_SLOPE, path_key
from jrobust._src.models.layers import activation, conv2d, pool2d

__all__ = ["MergedModel", "Head", "mergeable_architecture", "architecture_signature"]


def mergeable_architecture(arch: Any) -> bool:
    """Whether an architecture can share a program with others (the zoo's CNN and MLP)."""
    return isinstance(arch, CNN | MLP)


def architecture_signature(arch: CNN | MLP) -> tuple:
    """What models of one program must share: the kind, the convolution depth, kernel,
    padding and bias, the pooling of every convolution but the last, and the output width."""
    if isinstance(arch, MLP):
        return ("mlp", arch.outputs)
    return ("cnn", len(arch.conv), arch.kernel, arch.padding, arch.conv_bias, arch.pool[:-1],
            arch.outputs)  # fmt: skip


class Head(NamedTuple):
    """One dense head of a merged model: its depth, where the side features enter, its widest
    widths, and whether any of its variants takes side features."""

    depth: int
    side_at: int
    widths: tuple[int, ...]
    has_side: bool


def _spatial(size: int, kernel: int, padding: str, pool) -> int:
    size = size - kernel + 1 if padding.upper() == "VALID" else size
    if pool is None:
        return size
    if pool == "global":
        return 1
    p, s = (pool, pool) if isinstance(pool, int) else pool
    return (size - p) // s + 1


@dataclasses.dataclass(frozen=True)
class _Leaf:
    """One narrow parameter and where it goes in the merged model's tree.

    ``place`` says where its block lies in the wide leaf: ``("block", c_in, c_out)`` (the first
    input and output channels of a conv kernel), ``("rows", rows, width)`` (these rows and the
    first ``width`` columns of a dense kernel) or ``("vec", width)`` (the first entries).
    """

    narrow: str  # the narrow model's own path, e.g. "Conv_1/kernel"
    shape: tuple[int, ...]
    wide: str  # the merged model's path
    place: tuple

    def index(self) -> tuple:
        """The numpy index of the block in the wide leaf."""
        kind = self.place[0]
        if kind == "block":
            return (slice(None), slice(None), slice(0, self.place[1]), slice(0, self.place[2]))
        if kind == "rows":
            rows = np.asarray(self.place[1])
            return (rows[:, None], np.arange(self.place[2])[None, :])
        return (slice(0, self.place[1]),)

    def row_set(self) -> np.ndarray:
        kind = self.place[0]
        return np.arange(self.place[1]) if kind == "block" else np.asarray(self.place[1])

    def width(self) -> int:
        return self.place[2] if self.place[0] in ("block", "rows") else self.place[1]


@dataclasses.dataclass(frozen=True, eq=False)
class MergedModel:
    """The model of a program: variants (narrow architectures) as lanes of one wide model.

    Build it with ``MergedModel.build(variants, input_shape, n_side, conv_impl)`` where each
    variant is ``(architecture, takes_side)``. ``init(key, variant)`` draws a lane's parameters;
    ``apply(params, x, side, variant)`` is its forward pass; ``masks(variant)`` gives the 0/1
    masks of its parameters (1 where the lane has a parameter).
    """

    kind: str
    variants: tuple[tuple[Any, bool], ...]
    input_shape: tuple[int, ...]
    n_side: int
    conv_impl: str
    conv_widths: tuple[int, ...]
    last_pools: tuple[Any, ...]
    heads: tuple[Head, ...]
    activations: tuple[str, ...]
    shapes: dict  # wide path -> shape
    leaves: tuple[tuple[_Leaf, ...], ...]  # per variant
    tables: dict  # name -> (V, ...) numpy table
    inits: tuple[_Init, ...]  # how each wide parameter is initialised, per narrow path

    @property
    def n_variants(self) -> int:
        return len(self.variants)

    # ------------------------------------------------------------------ building
    @classmethod
    def build(
        cls,
        variants: Sequence[tuple[Any, bool]],
        input_shape: tuple[int, ...],
        n_side: int,
        conv_impl: str = "auto",
    ) -> MergedModel:
        variants = tuple((arch, bool(side)) for arch, side in variants)
        archs = [a for a, _ in variants]
        signatures = {architecture_signature(a) for a in archs}
        if len(signatures) != 1:
            raise ValueError(f"architectures of one program must agree in {signatures}")
        kind = "mlp" if isinstance(archs[0], MLP) else "cnn"
        activations = tuple(sorted({a.activation for a in archs}))
        heads = _heads(variants)
        if kind == "cnn":
            depth = len(archs[0].conv)
            conv_widths = tuple(max(a.conv[l] for a in archs) for l in range(depth))
            last_pools = tuple(dict.fromkeys(a.pool[-1] for a in archs)) if depth else (None,)
        else:
            conv_widths, last_pools = (), (None,)
        builder = _Builder(kind, archs, input_shape, n_side, conv_widths, last_pools, heads)
        leaves = tuple(builder.leaves(arch, side) for arch, side in variants)
        tables = builder.tables(variants, activations)
        inits = _init_tables(leaves, builder.shapes, tables)
        return cls(kind, variants, tuple(input_shape), n_side, conv_impl, conv_widths,
                   last_pools, heads, activations, builder.shapes, leaves, tables,
                   inits)  # fmt: skip

    # ------------------------------------------------------------------ parameters
    def masks(self, variant) -> dict:
        """0/1 masks of every wide parameter for a (traced) variant index."""
        out = {}
        for path, shape in self.shapes.items():
            rows, cols = self.tables[f"rows:{path}"], self.tables[f"cols:{path}"]
            r, c = jnp.asarray(rows)[variant], jnp.asarray(cols)[variant]
            if len(shape) == 4:  # a conv kernel: (k, k, in, out)
                out[path] = (r[:, None] * c[None, :])[None, None]
            elif len(shape) == 2:
                out[path] = r[:, None] * c[None, :]
            else:
                out[path] = c
        return out

    def init(self, key: jax.Array, variant) -> dict:
        """A lane's parameters: its own narrow model's initial parameters (``init_leaf`` of its
        own paths and shapes) embedded in zeros (see the module docstring)."""
        params = {p: jnp.zeros(s, jnp.float32) for p, s in self.shapes.items()}
        for init in self.inits:
            params[init.wide] = params[init.wide] + self._init_one(init, key, variant)
        return params

    def _init_one(self, init: _Init, key: jax.Array, variant) -> jax.Array:
        shape = self.shapes[init.wide]
        table = lambda name: jnp.asarray(self.tables[f"{init.prefix}:{name}"])[variant]  # noqa: E731
        dims = table("dims")
        valid = table("has")
        if init.place == "vec":
            index = jnp.arange(shape[0])
            valid = valid & (index < dims[0])
        elif init.place == "block":  # a conv kernel (k, k, in, out): the first channels
            a, b, i, o = (jax.lax.broadcasted_iota(jnp.int32, shape, d) for d in range(4))
            valid = valid & (i < dims[2]) & (o < dims[3])
            index = ((a * dims[1] + b) * dims[2] + i) * dims[3] + o
        else:  # a dense kernel: the narrow rows where the wide rows hold them, first columns
            rows = table("rows")[:, None]
            cols = jax.lax.broadcasted_iota(jnp.int32, shape, 1)
            valid = valid & (rows >= 0) & (cols < dims[1])
            index = rows * dims[1] + cols
        if init.kind == "kernel":  # He-normal (``init_leaf``), drawn flat at the longest length
            flat = jax.random.truncated_normal(
                path_key(key, init.narrow), -2, 2, (init.length,), jnp.float32
            )
            stddev = jnp.sqrt(table("variance")) / jnp.array(0.87962566103423978, jnp.float32)
            value = flat[jnp.clip(index, 0, init.length - 1)] * stddev
        elif init.kind == "slope":
            value = jnp.full(shape, PRELU_SLOPE, jnp.float32)
        else:
            return jnp.zeros(shape, jnp.float32)
        return jnp.where(valid, value, 0.0)

    # ------------------------------------------------------------------ the forward pass
    def apply(self, params: dict, x: jax.Array, side: jax.Array | None, variant) -> jax.Array:
        masks = self.masks(variant)
        eff = {p: params[p] * masks[p] for p in params}  # padding is exactly zero, and stays so
        act_id = jnp.asarray(self.tables["activation"])[variant]
        if self.kind == "cnn":
            arch = self.variants[0][0]
            h = x
            for l in range(len(self.conv_widths)):
                h = conv2d(h, eff[f"conv{l}/kernel"], arch.padding, self.conv_impl)
                if arch.conv_bias:
                    h = h + eff[f"conv{l}/bias"]
                h = self._act(h, act_id, eff.get(f"conv{l}/slope"))
                if l < len(self.conv_widths) - 1:
                    h = pool2d(h, arch.pool[l])
            feats = [pool2d(h, p).reshape(h.shape[0], -1) for p in self.last_pools]
            feats = jnp.concatenate(feats, axis=-1) if len(feats) > 1 else feats[0]
        else:
            feats = x.reshape(x.shape[0], -1)
        head_id = jnp.asarray(self.tables["head"])[variant]
        out = None
        for h_index, head in enumerate(self.heads):
            y = self._head(h_index, head, eff, feats, side, act_id)
            out = y if out is None else jnp.where(head_id == h_index, y, out)
        return out

    def _act(self, x, act_id, slope):
        if len(self.activations) == 1:
            return activation(self.activations[0], x, slope)
        out = None
        for a_index, name in enumerate(self.activations):
            y = activation(name, x, slope)
            out = y if out is None else jnp.where(act_id == a_index, y, out)
        return out

    def _head(self, h_index, head, eff, z, side, act_id):
        for k in range(head.depth):
            if head.has_side and k == head.side_at:
                z = jnp.concatenate([z, side], axis=-1)
            base = f"head{h_index}/dense{k}"
            z = z @ eff[f"{base}/kernel"] + eff[f"{base}/bias"]
            z = self._act(z, act_id, eff.get(f"{base}/slope"))
        if head.has_side and head.side_at == head.depth:
            z = jnp.concatenate([z, side], axis=-1)
        return z @ eff[f"head{h_index}/out/kernel"] + eff[f"head{h_index}/out/bias"]

    # ------------------------------------------------------------------ cost
    def step_flops(self, batch_size: int) -> float:
        """FLOPs of the matrix products of one training step of one lane (``_step_flops``),
        whatever its variant: every lane pays for the whole merged model."""
        return batch_size * _step_flops(self.shapes, self._conv_outputs())

    def _conv_outputs(self) -> dict[str, int]:
        if self.kind != "cnn":
            return {}
        arch = self.variants[0][0]
        h, w = self.input_shape[0], self.input_shape[1]
        out = {}
        for l in range(len(self.conv_widths)):
            oh = h - arch.kernel + 1 if arch.padding.upper() == "VALID" else h
            ow = w - arch.kernel + 1 if arch.padding.upper() == "VALID" else w
            out[f"conv{l}/kernel"] = oh * ow
            if l < len(self.conv_widths) - 1:
                h = _spatial(h, arch.kernel, arch.padding, arch.pool[l])
                w = _spatial(w, arch.kernel, arch.padding, arch.pool[l])
        return out


def _step_flops(shapes: dict, conv_outputs: dict[str, int]) -> float:
    """FLOPs (2 per multiply-add) of the matrix products of one event's training step.

    Every kernel costs its forward product and its weight gradient, each ``2 * prod(shape)``
    per output position (``conv_outputs``; 1 for a dense layer), and the gradient of its input,
    which costs as much, except where its input is the data: no gradient is taken with respect
    to the data, so the first layer's (the first convolution's, or each head's first dense layer
    in a model without convolutions) is never computed. Elementwise work (biases, activations,
    pooling, the loss, the optimizer's update) is not counted.
    """
    first = {"conv0/kernel"} if conv_outputs else set()
    if not first:  # no convolutions: each head's first layer reads the flattened data
        heads = {path.split("/")[0] for path in shapes if path.startswith("head")}
        for head in heads:
            dense0 = f"{head}/dense0/kernel"
            first.add(dense0 if dense0 in shapes else f"{head}/out/kernel")
    total = 0.0
    for path, shape in shapes.items():
        if not path.endswith("/kernel"):
            continue
        products = 2.0 if path in first else 3.0
        total += products * 2.0 * math.prod(shape) * conv_outputs.get(path, 1)
    return total


@dataclasses.dataclass(frozen=True)
class _Init:
    """How one wide parameter gets the initial values of the narrow parameters at one path:
    its tables (``{prefix}:has``, ``:dims``, ``:variance`` and, for a dense kernel, ``:rows``)
    give per variant whether it has the parameter, its narrow shape, its He-normal variance and
    which narrow row each wide row holds (-1: none)."""

    wide: str
    narrow: str
    kind: str  # "kernel", "slope" or "zero"
    place: str  # "block", "rows" or "vec"
    length: int  # the longest narrow parameter, flattened
    prefix: str


def _init_tables(leaves, shapes: dict, tables: dict) -> tuple[_Init, ...]:
    """The ``_Init`` of every (wide path, narrow path), its tables added to ``tables``."""
    groups: dict[tuple[str, str], list] = {}
    for v, variant_leaves in enumerate(leaves):
        for leaf in variant_leaves:
            groups.setdefault((leaf.wide, leaf.narrow), []).append((v, leaf))
    n = len(leaves)
    inits = []
    for g, ((wide, narrow), members) in enumerate(groups.items()):
        name = narrow.rsplit("/", 1)[-1]
        kind = name if name in ("kernel", "slope") else "zero"
        place = members[0][1].place[0]
        ndim = len(members[0][1].shape)
        prefix = f"init{g}"
        has = np.zeros(n, bool)
        dims = np.zeros((n, ndim), np.int32)
        variance = np.ones(n, np.float32)
        rows = np.full((n, shapes[wide][0]), -1, np.int32)
        for v, leaf in members:
            has[v] = True
            dims[v] = leaf.shape
            if kind == "kernel":  # fan-in as jax.nn.initializers.he_normal takes it
                fan_in = math.prod(leaf.shape[:-1])
                variance[v] = np.float32(2.0 / fan_in)
            if place == "rows":
                rows[v, np.asarray(leaf.place[1])] = np.arange(len(leaf.place[1]))
        tables[f"{prefix}:has"], tables[f"{prefix}:dims"] = has, dims
        tables[f"{prefix}:variance"] = variance
        if place == "rows":
            tables[f"{prefix}:rows"] = rows
        length = max(math.prod(leaf.shape) for _, leaf in members)
        inits.append(_Init(wide, narrow, kind, place, length, prefix))
    return tuple(inits)


def _heads(variants) -> tuple[Head, ...]:
    found: dict[tuple[int, int], list] = {}
    for arch, side in variants:
        widths = arch.dense if isinstance(arch, CNN) else arch.hidden
        found.setdefault((len(widths), int(arch.side_at)), []).append((widths, side))
    heads = []
    for (depth, side_at), members in found.items():
        widths = tuple(max(w[k] for w, _ in members) for k in range(depth))
        heads.append(Head(depth, side_at, widths, any(s for _, s in members)))
    return tuple(heads)


class _Builder:
    """The wide shapes, each variant's narrow leaves and where they go, and the mask tables."""

    def __init__(self, kind, archs, input_shape, n_side, conv_widths, last_pools, heads):
        self.kind, self.input_shape, self.n_side = kind, tuple(input_shape), n_side
        self.conv_widths, self.last_pools, self.heads = conv_widths, last_pools, heads
        self.shapes: dict[str, tuple[int, ...]] = {}
        arch = archs[0]
        if kind == "cnn":
            c_in = input_shape[-1]
            for l, c in enumerate(conv_widths):
                self.shapes[f"conv{l}/kernel"] = (arch.kernel, arch.kernel, c_in, c)
                if arch.conv_bias:
                    self.shapes[f"conv{l}/bias"] = (c,)
                if any(a.activation == "prelu" for a in archs):
                    self.shapes[f"conv{l}/slope"] = (c,)
                c_in = c
            self.blocks = self._last_blocks(arch)  # (offset, height, width) per last pool
            n_feats = sum(h * w * conv_widths[-1] for _, h, w in self.blocks) if conv_widths else 0
            if not conv_widths:
                n_feats = math.prod(input_shape)
        else:
            n_feats = math.prod(input_shape)
        self.n_feats = n_feats
        prelu = any(a.activation == "prelu" for a in archs)
        for h_index, head in enumerate(heads):
            width_in = n_feats
            for k in range(head.depth):
                width_in += n_side if head.has_side and k == head.side_at else 0
                base = f"head{h_index}/dense{k}"
                self.shapes[f"{base}/kernel"] = (width_in, head.widths[k])
                self.shapes[f"{base}/bias"] = (head.widths[k],)
                if prelu:
                    self.shapes[f"{base}/slope"] = (head.widths[k],)
                width_in = head.widths[k]
            width_in += n_side if head.has_side and head.side_at == head.depth else 0
            self.shapes[f"head{h_index}/out/kernel"] = (width_in, arch.outputs)
            self.shapes[f"head{h_index}/out/bias"] = (arch.outputs,)

    def _last_blocks(self, arch):
        h, w = self.input_shape[0], self.input_shape[1]
        for l in range(len(self.conv_widths) - 1):
            h = _spatial(h, arch.kernel, arch.padding, arch.pool[l])
            w = _spatial(w, arch.kernel, arch.padding, arch.pool[l])
        blocks, offset = [], 0
        for pool in self.last_pools:
            ph = _spatial(h, arch.kernel, arch.padding, pool)
            pw = _spatial(w, arch.kernel, arch.padding, pool)
            blocks.append((offset, ph, pw))
            offset += ph * pw * self.conv_widths[-1]
        return blocks

    def _head_of(self, arch) -> int:
        widths = arch.dense if isinstance(arch, CNN) else arch.hidden
        for i, head in enumerate(self.heads):
            if (head.depth, head.side_at) == (len(widths), int(arch.side_at)):
                return i
        raise AssertionError("no head for a variant")

    def _feature_rows(self, arch) -> np.ndarray:
        """Rows of the wide feature vector that hold the narrow model's flattened features."""
        if self.kind != "cnn" or not self.conv_widths:
            return np.arange(self.n_feats)
        offset, ph, pw = self.blocks[self.last_pools.index(arch.pool[-1])]
        c_n, c_w = arch.conv[-1], self.conv_widths[-1]
        cells = np.arange(ph * pw)[:, None]
        return (offset + cells * c_w + np.arange(c_n)[None, :]).reshape(-1)

    def leaves(self, arch, side: bool) -> tuple[_Leaf, ...]:
        """Each narrow parameter of a variant: its own path and shape, and its wide place."""
        out = []
        n_conv = len(self.conv_widths) if self.kind == "cnn" else 0
        prelu = arch.activation == "prelu"
        if self.kind == "cnn":
            c_in = self.input_shape[-1]
            for l, c in enumerate(arch.conv):
                k = arch.kernel
                place = ("block", c_in, c)
                out.append(_Leaf(f"Conv_{l}/kernel", (k, k, c_in, c), f"conv{l}/kernel", place))
                if arch.conv_bias:
                    out.append(_Leaf(f"Conv_{l}/bias", (c,), f"conv{l}/bias", ("vec", c)))
                if prelu:
                    out.append(_Leaf(f"PReLU_{l}/slope", (c,), f"conv{l}/slope", ("vec", c)))
                c_in = c
        h_index = self._head_of(arch)
        head = self.heads[h_index]
        widths = arch.dense if isinstance(arch, CNN) else arch.hidden
        # the rows of layer k's wide input that hold the narrow input: its features (k = 0) or
        # the previous layer's units, then its side features where the head takes them
        rows, wide_base = self._feature_rows(arch), self.n_feats
        for k in range(head.depth + 1):
            if side and head.has_side and k == head.side_at:
                rows = np.concatenate([rows, wide_base + np.arange(self.n_side)])
            last = k == head.depth
            base = f"head{h_index}/out" if last else f"head{h_index}/dense{k}"
            width = self.shapes[f"{base}/kernel"][1] if last else widths[k]
            place = ("rows", tuple(int(r) for r in rows), width)
            out.append(_Leaf(f"Dense_{k}/kernel", (len(rows), width), f"{base}/kernel", place))
            out.append(_Leaf(f"Dense_{k}/bias", (width,), f"{base}/bias", ("vec", width)))
            if prelu and not last:
                slope = f"PReLU_{n_conv + k}/slope"
                out.append(_Leaf(slope, (width,), f"{base}/slope", ("vec", width)))
            rows, wide_base = np.arange(width), (head.widths[k] if not last else 0)
        return tuple(out)

    def tables(self, variants, activations) -> dict:
        n = len(variants)
        tables = {
            "activation": np.asarray(
                [activations.index(a.activation) for a, _ in variants], np.int32
            ),
            "head": np.asarray([self._head_of(a) for a, _ in variants], np.int32),
        }
        for path, shape in self.shapes.items():
            rows = np.zeros((n, shape[-2] if len(shape) >= 2 else 1), np.float32)
            cols = np.zeros((n, shape[-1]), np.float32)
            tables[f"rows:{path}"], tables[f"cols:{path}"] = rows, cols
        for v, (arch, side) in enumerate(variants):
            for leaf in self.leaves(arch, side):
                if len(leaf.shape) >= 2:
                    tables[f"rows:{leaf.wide}"][v, leaf.row_set()] = 1
                tables[f"cols:{leaf.wide}"][v, : leaf.width()] = 1
        return tables
