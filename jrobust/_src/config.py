"""``ModelConfig``: one point of a search space (an architecture plus every training hyperparameter).

Fields split in two kinds. *Static* fields (architecture, optimizer family, schedule shape, batch
size, epochs, training-sample size, losses, side features, ...) decide the compiled program: models
that agree on all of them form a *cohort* and train in one stack. *Scalar* hyperparameters
(``SCALAR_FIELDS``: learning rate, weight decay, L2, momentum, Adam's betas and epsilon) are array
leaves of that stack, so sweeping them never recompiles.
"""

from __future__ import annotations

import dataclasses
import inspect
import zlib
from typing import Any

import flax.linen as nn

from jrobust._src.models.architectures import CNN
from jrobust._src.models.contract import make_model
from jrobust._src.specs import did_you_mean

__all__ = [
    "ModelConfig",
    "SCALAR_FIELDS",
    "OPTIMIZERS",
    "SCHEDULES",
    "LOSSES",
    "METRICS",
    "config_from_dict",
    "config_to_dict",
    "count_params",
    "model_hash",
]

OPTIMIZERS = ("sgd", "adam", "adamw", "nadam", "nadamw", "rmsprop")
SCHEDULES = ("constant", "cosine", "onecycle")
LOSSES = ("mse", "rmse", "mae", "relative_mse", "relative_rmse", "cross_entropy")
METRICS = ("mse", "rmse", "mae", "relative_rmse", "cross_entropy", "accuracy", "error_rate")
CLASSIFICATION = ("cross_entropy", "accuracy", "error_rate")
SCALAR_FIELDS = ("learning_rate", "weight_decay", "l2", "momentum", "b1", "b2", "eps")
AUGMENTATIONS = (None, "flip", "flip_crop", "rotate", "scale")
#: The range of a random ``augment``: ``rotate``, the largest angle in degrees (each image
#: turns by a uniform angle in [-range, range]); ``scale``, the (low, high) factors (drawn
#: log-uniformly, so enlarging and shrinking are equally likely).
AUGMENT_RANGES = {"rotate": 180.0, "scale": (0.8, 1.25)}


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Everything that defines one model; frozen so ``dataclasses.replace`` makes variants.

    Attributes:
      architecture: a zoo architecture (``CNN``, ``MLP``, ``ResNet18``) or any Flax module whose
        ``__call__`` takes ``(x)`` or ``(x, side)`` (and optionally ``train=``).
      optimizer: ``"sgd"``, ``"adam"``, ``"adamw"``, ``"nadam"``, ``"nadamw"``, ``"rmsprop"``.
      learning_rate: the (peak) learning rate.
      weight_decay: decoupled weight decay (AdamW-style, and for SGD/RMSprop), applied after the
        optimizer's preconditioning and scaled by the learning rate.
      l2: coupled L2 regularisation: ``l2 * params`` is added to the gradient before the optimizer.
      momentum: SGD momentum or RMSprop decay (``rho``); Nesterov by ``nesterov``.
      b1, b2, eps: Adam-family moment decays and epsilon.
      schedule: ``"constant"``, ``"cosine"`` (linear warm-up then cosine decay to 0) or
        ``"onecycle"``; ``warmup_fraction`` is the fraction of steps spent warming up.
      batch_size, epochs: mini-batch size and passes over each instance's training subset (the
        last incomplete batch of an epoch is dropped).
      train_size: training-sample size per instance (drawn from the population's pool).
      loss: the training loss; metric: the test metric that becomes the instance's loss in the
        ledger (lower is better; ``"accuracy"`` is recorded as ``loss = 1 - accuracy``).
      target: target column (name or index) of the population; side_features: side-feature
        columns fed to the model (inductive biases).
      bootstrap: draw training subsets with replacement.
      early_stopping: patience in epochs on the validation split (``None``: off); an instance
        stops updating when its validation loss has not improved for that many epochs.
      augment: ``None``, ``"flip"``, ``"flip_crop"`` (random horizontal flips, 4-pixel crops),
        ``"rotate"`` (a random angle per image) or ``"scale"`` (a random factor per image).
      augment_range: the range of ``"rotate"`` (largest angle, degrees; default 180) or of
        ``"scale"`` ((low, high) factors; default (0.8, 1.25)); ``None``: the default.
      conv_impl: ``"auto"``, ``"im2col"`` or ``"xla"`` (see ``jrobust._src.models.layers``).
      name: optional readable name.
    """

    architecture: Any = dataclasses.field(default_factory=CNN)
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    l2: float = 0.0
    momentum: float = 0.9
    nesterov: bool = False
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-7
    schedule: str = "constant"
    warmup_fraction: float = 0.3
    batch_size: int = 64
    epochs: int = 10
    train_size: int = 1000
    loss: str = "mse"
    metric: str = "mse"
    target: str | int | None = None
    side_features: tuple[str, ...] = ()
    bootstrap: bool = False
    early_stopping: int | None = None
    augment: str | None = None
    augment_range: float | tuple[float, float] | None = None
    conv_impl: str = "auto"
    name: str | None = None

    def __new__(cls, *args: Any, **kwargs: Any) -> ModelConfig:
        # the generated __init__ would say only "unexpected keyword argument": name the closest
        unknown = [k for k in kwargs if k not in _field_names(cls)]
        if unknown:
            named = ", ".join(f"{k!r}{did_you_mean(k, _field_names(cls))}" for k in unknown)
            raise TypeError(
                f"{cls.__name__} has no field{'s' if len(unknown) > 1 else ''} {named}; its fields "
                f"are {', '.join(_field_names(cls))} (an architecture's own fields, such as conv "
                "or hidden, go to zoo.cnn_config(...) / zoo.mlp_config(...))"
            )
        config = super().__new__(cls)
        # which fields the caller gave: __post_init__ completes a classification pair from them
        if args or kwargs:  # (copy and pickle call __new__ bare, and no __post_init__ follows)
            given = {*_field_names(cls)[: len(args)], *kwargs}
            object.__setattr__(config, "_given", frozenset(given))
        return config

    def __post_init__(self) -> None:
        if isinstance(self.side_features, str):
            object.__setattr__(self, "side_features", (self.side_features,))
        else:
            object.__setattr__(self, "side_features", tuple(self.side_features))
        given = self.__dict__.pop("_given", None)
        if given is not None:
            # a classification metric has one loss that fits it, and the loss a natural metric:
            # complete the pair when the caller left the other at its regression default
            if self.metric in CLASSIFICATION and self.loss == "mse" and "loss" not in given:
                object.__setattr__(self, "loss", "cross_entropy")
            elif self.loss == "cross_entropy" and self.metric == "mse" and "metric" not in given:
                object.__setattr__(self, "metric", "cross_entropy")
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError``/``TypeError`` naming the bad field and the fix."""
        _one_of("optimizer", self.optimizer, OPTIMIZERS)
        _one_of("schedule", self.schedule, SCHEDULES)
        _one_of("loss", self.loss, LOSSES)
        _one_of("metric", self.metric, METRICS)
        _one_of("augment", self.augment, AUGMENTATIONS)
        _one_of("conv_impl", self.conv_impl, ("auto", "im2col", "xla"))
        for f in ("batch_size", "epochs", "train_size"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{f} must be a positive integer, got {v!r}")
        for f in SCALAR_FIELDS:
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise TypeError(f"{f} must be a number, got {type(v).__name__} {v!r}")
            if v != v or v in (float("inf"), float("-inf")):
                raise ValueError(f"{f} must be finite, got {v}")
        if self.learning_rate <= 0:
            raise ValueError(
                f"learning_rate must be positive, got {self.learning_rate}; use e.g. 1e-3"
            )
        for f in ("weight_decay", "l2", "momentum", "eps"):
            if getattr(self, f) < 0:
                raise ValueError(f"{f} must be >= 0, got {getattr(self, f)}")
        for f in ("b1", "b2", "momentum"):
            if not 0 <= getattr(self, f) < 1:
                raise ValueError(f"{f} must lie in [0, 1), got {getattr(self, f)}")
        if self.optimizer in ("adam", "nadam") and self.weight_decay > 0:
            raise ValueError(
                f"optimizer {self.optimizer!r} has no decoupled weight decay (weight_decay="
                f"{self.weight_decay}); use optimizer='{self.optimizer}w' for decoupled decay or "
                "l2= for L2 added to the gradient"
            )
        self._check_augment_range()
        if not 0 <= self.warmup_fraction < 1:
            raise ValueError(f"warmup_fraction must lie in [0, 1), got {self.warmup_fraction}")
        if self.early_stopping is not None and (
            not isinstance(self.early_stopping, int) or self.early_stopping < 1
        ):
            raise ValueError(
                f"early_stopping must be None or a positive number of epochs, got {self.early_stopping!r}"
            )
        if not hasattr(self.architecture, "build") and not _is_flax_module(self.architecture):
            raise TypeError(
                "architecture must be a jrobust zoo architecture (CNN, MLP, ResNet18, RieszNet) or a "
                f"flax.linen.Module instance, got {type(self.architecture).__name__}"
            )
        is_cls_loss = self.loss == "cross_entropy"
        if is_cls_loss != (self.metric in CLASSIFICATION):
            raise ValueError(
                f"loss {self.loss!r} and metric {self.metric!r} mix classification and regression; "
                "use loss='cross_entropy' with metric 'cross_entropy'/'accuracy'/'error_rate' (and "
                "outputs=<number of classes> on the architecture), or a regression loss with a "
                "regression metric"
            )

    def _check_augment_range(self) -> None:
        r = self.augment_range
        if r is None:
            return
        if isinstance(r, list):
            r = tuple(r)
            object.__setattr__(self, "augment_range", r)
        if self.augment == "rotate" and isinstance(r, int | float) and r > 0:
            return
        if (
            self.augment == "scale"
            and isinstance(r, tuple)
            and len(r) == 2
            and all(isinstance(v, int | float) for v in r)
            and 0 < r[0] <= r[1]
        ):
            return
        raise ValueError(
            f"augment_range={r!r} does not fit augment={self.augment!r}: give the largest angle in "
            "degrees for 'rotate' (e.g. 30), (low, high) factors with 0 < low <= high for 'scale' "
            "(e.g. (0.8, 1.25)), and nothing for other augmentations"
        )

    def augment_limits(self):
        """The range of the random augmentation (``augment_range`` or its default)."""
        if self.augment_range is not None:
            return self.augment_range
        return AUGMENT_RANGES.get(self.augment)

    # ------------------------------------------------------------------ repr
    def __repr__(self) -> str:
        """Only the fields that differ from the defaults (so is the architecture), e.g.
        ``ModelConfig(optimizer='nadam', learning_rate=0.0001, l2=0.01, name='paper1')``;
        ``full_repr()`` gives every field.

        Example:
          >>> ModelConfig(learning_rate=0.01)
          ModelConfig(learning_rate=0.01)
        """
        return f"{type(self).__qualname__}({', '.join(_changed(self))})"

    def full_repr(self) -> str:
        """Every field, as the dataclass writes it: the form race fingerprints (and checkpoints)
        were made from, so it must never change."""
        fields = (f for f in dataclasses.fields(self) if f.repr)
        return f"{type(self).__qualname__}({', '.join(f'{f.name}={getattr(self, f.name)!r}' for f in fields)})"

    # ------------------------------------------------------------------ derived
    @property
    def is_classification(self) -> bool:
        return self.loss == "cross_entropy"

    def hyperparameters(self) -> dict[str, float]:
        """The scalar hyperparameters that become per-instance arrays."""
        return {f: float(getattr(self, f)) for f in SCALAR_FIELDS}

    def static_key(self) -> tuple:
        """Everything but the scalar hyperparameters and the name: equal keys share one program."""
        return tuple(
            (f.name, _hashable(getattr(self, f.name)))
            for f in dataclasses.fields(self)
            if f.name not in SCALAR_FIELDS and f.name != "name"
        )

    def describe(self) -> str:
        """A short readable name."""
        if self.name:
            return self.name
        arch = self.architecture
        a = type(arch).__name__
        if hasattr(arch, "conv"):
            a = f"cnn{'-'.join(map(str, arch.conv))}_d{'-'.join(map(str, arch.dense))}_{arch.activation}"
        elif hasattr(arch, "hidden"):
            a = f"mlp{'-'.join(map(str, arch.hidden))}_{arch.activation}"
        return (
            f"{a}|{self.optimizer} lr={self.learning_rate:g} bs={self.batch_size}"
            + (f" wd={self.weight_decay:g}" if self.weight_decay else "")
            + (f" l2={self.l2:g}" if self.l2 else "")
        )


# __new__ (the "did you mean" for unknown fields) would hide the fields from inspect.signature,
# help() and editors: the class's signature is that of its generated __init__.
_init = inspect.signature(ModelConfig.__init__)
ModelConfig.__signature__ = _init.replace(
    parameters=list(_init.parameters.values())[1:], return_annotation=inspect.Signature.empty
)


def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def _changed(obj: Any) -> list[str]:
    """``name=value`` of a dataclass's fields that differ from their defaults; a dataclass value
    (the architecture) is written the same way."""
    parts = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = dataclasses.MISSING
        try:
            same = bool(value == default)
        except Exception:  # noqa: BLE001 - e.g. arrays: show the value
            same = False
        if same or not f.repr:
            continue
        if (
            dataclasses.is_dataclass(value)
            and not isinstance(value, type)
            and not _is_flax_module(value)
        ):
            text = f"{type(value).__qualname__}({', '.join(_changed(value))})"
        else:
            text = repr(value)
        parts.append(f"{f.name}={text}")
    return parts


def _is_flax_module(obj: Any) -> bool:
    return isinstance(obj, nn.Module)


def _one_of(field: str, value: Any, allowed: tuple) -> None:
    if value not in allowed:
        raise ValueError(
            f"unknown {field} {value!r}; choose one of {[a for a in allowed if a is not None]}"
        )


def _hashable(v: Any) -> Any:
    try:
        hash(v)
        return v
    except TypeError:
        return repr(v)


#: Fields added to ``ModelConfig`` after 0.2: they enter ``model_hash`` only when set, so a
#: model keeps its hash (and its instances their initialisations) when a release adds a field.
LATER_FIELDS = ("augment_range",)


def model_hash(config: ModelConfig) -> int:
    """A stable 31-bit integer of a model's full definition (name excluded); seeds its init keys.

    Example:
      >>> model_hash(ModelConfig()) == model_hash(ModelConfig(name="other name"))
      True
    """
    parts = []
    for f in dataclasses.fields(config):
        value = None if f.name == "name" else getattr(config, f.name)
        if f.name in LATER_FIELDS and value == f.default:
            continue
        parts.append(f"{f.name}={value!r}")
    text = f"{type(config).__name__}({', '.join(parts)})"
    return zlib.crc32(text.encode()) & 0x7FFFFFFF


def _architectures() -> dict[str, type]:
    from jrobust._src.models.architectures import CNN, MLP, ResNet18
    from jrobust._src.models.riesz import RieszNet

    return {"CNN": CNN, "MLP": MLP, "ResNet18": ResNet18, "RieszNet": RieszNet}


def _as_data(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_as_data(v) for v in value]
    return value


def _from_data(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_from_data(v) for v in value)
    return value


def config_to_dict(config: ModelConfig) -> dict[str, Any] | None:
    """A model as plain data (JSON-ready), or ``None`` when its architecture is not one of the
    zoo's (a Flax module of one's own is code, not data); ``config_from_dict`` reverses it.

    Example:
      >>> config_from_dict(config_to_dict(ModelConfig(learning_rate=0.01))) == ModelConfig(
      ...     learning_rate=0.01)
      True
    """
    arch = config.architecture
    kind = type(arch).__name__
    if _architectures().get(kind) is not type(arch):
        return None
    out = {f.name: _as_data(getattr(config, f.name)) for f in dataclasses.fields(config)}
    out["architecture"] = {
        "kind": kind,
        **{f.name: _as_data(getattr(arch, f.name)) for f in dataclasses.fields(arch)},
    }
    return out


def config_from_dict(data: dict[str, Any]) -> ModelConfig:
    """The ``ModelConfig`` of ``config_to_dict``'s data.

    Raises:
      ValueError: an unknown architecture kind or field.
    """
    values = {k: _from_data(v) for k, v in data.items() if k != "architecture"}
    arch = dict(data["architecture"])
    kind = arch.pop("kind")
    cls = _architectures().get(kind)
    if cls is None:
        raise ValueError(f"unknown architecture kind {kind!r} in a saved model")
    return ModelConfig(architecture=cls(**{k: _from_data(v) for k, v in arch.items()}), **values)


def count_params(config: ModelConfig, input_shape: tuple[int, ...] = (15, 15, 1)) -> int:
    """Trainable parameter count of a model for the given input shape (default: a 15×15 cluster).

    Example:
      >>> from jrobust import zoo
      >>> count_params(zoo.paper_config(2))
      23932
    """
    model = make_model(config)
    return model.n_params(input_shape, len(config.side_features))
