"""Ranges in a search space: continuous and integer distributions, and categorical choices.

A parameter of a ``SearchSpace`` is a list of values (a categorical choice, as in a grid) or a
range that a search samples from:

- ``uniform(low, high)``: a real number, uniform on ``[low, high]``;
- ``loguniform(low, high)``: a positive real number, uniform in log space (``0 < low``);
- ``intrange(low, high, log=False)``: an integer of ``low..high`` (both ends included),
  uniform, or uniform in log space with ``log=True`` (widths, depths, epochs, ...).

Every range maps its values onto the unit interval (``to_unit``) and back (``from_unit``), in log
space for log ranges: the sampling model of a search works in these unit coordinates, so a
learning rate between 1e-5 and 1 moves by decades, not by absolute steps. An integer ``k`` owns a
cell of ``[0, 1]`` of the same width as every other integer's (the same width in log space for
``log=True``); ``from_unit`` rounds into that cell, so a uniform ``u`` gives every integer the
same probability (with ``log=True``, a probability proportional to its share of the log range).

Example:
  >>> import numpy as np
  >>> lr = loguniform(1e-5, 1.0)
  >>> lr, lr.to_unit(1e-3), lr.from_unit(0.5)
  (loguniform(1e-05, 1), 0.4, 0.003162277660168379)
  >>> intrange(16, 128, log=True).sample(np.random.default_rng(0), 4)
  array([60, 27, 17, 16])
  >>> intrange(16, 128, log=True).to_table()
  {'intrange': [16, 128], 'log': True}
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

__all__ = ["Categorical", "Distribution", "intrange", "loguniform", "uniform"]

#: The forms of a range in a space file, for error messages.
TABLE_FORMS = (
    "{ uniform = [low, high] }, { loguniform = [low, high] }, { intrange = [low, high] } or "
    "{ intrange = [low, high], log = true }"
)
_KINDS = ("uniform", "loguniform", "intrange")


def _number(x: float | int) -> str:
    """A short exact text for a range's end: ``1`` for 1.0, ``1e-05`` for 1e-5."""
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return repr(x)


def _is_real(x: Any) -> bool:
    return isinstance(x, int | float | np.integer | np.floating) and not isinstance(
        x, bool | np.bool_
    )


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Distribution:
    """A range of numbers to sample from: the base of ``uniform``, ``loguniform`` and ``intrange``.

    Attributes:
      low, high: the ends of the range (``low < high``); both belong to it.
      log: uniform in log space (needs ``low > 0``).
      integer: the values are the integers ``low..high``.

    Two ranges are equal when these four attributes are, whichever constructor made them.
    """

    low: float
    high: float
    log: bool = False
    integer: bool = False

    def __post_init__(self) -> None:
        name = self._kind()
        if not isinstance(self.log, bool | np.bool_):
            raise TypeError(f"{name}: log must be True or False, got {self.log!r}")
        for end in ("low", "high"):
            value = getattr(self, end)
            if not _is_real(value):
                raise TypeError(f"{name}: {end} must be a number, got {value!r}")
            if self.integer:
                if not isinstance(value, int | np.integer):
                    raise TypeError(
                        f"{name}: {end} must be an integer, got {value!r}; "
                        "use uniform/loguniform for real numbers"
                    )
                object.__setattr__(self, end, int(value))
            else:
                if not math.isfinite(value):
                    raise ValueError(f"{name}: {end} must be finite, got {value!r}")
                object.__setattr__(self, end, float(value))
        object.__setattr__(self, "log", bool(self.log))
        if not self.low < self.high:
            raise ValueError(
                f"{name}: low must be below high, got low={_number(self.low)}, "
                f"high={_number(self.high)}; for a single value use a list of one value"
            )
        if self.log and self.low <= 0:
            raise ValueError(
                f"{name}: a log range needs low > 0, got low={_number(self.low)}"
                + ("" if self.integer else "; use uniform(...) for a range that includes 0")
            )

    # ------------------------------------------------------------------ identity
    def _kind(self) -> str:
        if self.integer:
            return "intrange"
        return "loguniform" if self.log else "uniform"

    def __repr__(self) -> str:
        extra = ", log=True" if self.integer and self.log else ""
        return f"{self._kind()}({_number(self.low)}, {_number(self.high)}{extra})"

    def _key(self) -> tuple:
        return (self.low, self.high, self.log, self.integer)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Distribution):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __contains__(self, value: Any) -> bool:
        """Whether ``value`` lies in the range (an integer, for an integer range)."""
        if not _is_real(value) or not math.isfinite(value):
            return False
        if self.integer and not float(value).is_integer():
            return False
        return self.low <= value <= self.high

    # ------------------------------------------------------------------ the unit map
    def _ends(self) -> tuple[float, float]:
        """The ends of the range in the coordinates that are uniform (log for log ranges);
        an integer range extends by half a unit on each side so every integer owns a cell."""
        low, high = (self.low - 0.5, self.high + 0.5) if self.integer else (self.low, self.high)
        return (math.log(low), math.log(high)) if self.log else (float(low), float(high))

    def to_unit(self, x: float | int | Iterable[float]) -> float | np.ndarray:
        """The position of values in ``[0, 1]`` (in log space for log ranges).

        Args:
          x: a value of the range, or an array of them.

        Returns:
          A float for a single value, else a float array of ``x``'s shape. For an integer range,
          ``from_unit(to_unit(k)) == k``.

        Raises:
          ValueError: a value outside ``[low, high]`` (or not a number).

        Example:
          >>> uniform(0, 10).to_unit([0, 2.5, 10])
          array([0.  , 0.25, 1.  ])
        """
        values = np.asarray(x, dtype=float)
        bad = ~((values >= self.low) & (values <= self.high))
        if bad.any():
            raise ValueError(f"{values[bad].flat[0]!r} lies outside {self!r}")
        lo, hi = self._ends()
        coords = np.log(values) if self.log else values
        unit = (coords - lo) / (hi - lo)
        return float(unit) if unit.ndim == 0 else unit

    def from_unit(self, u: float | Iterable[float]) -> float | int | np.ndarray:
        """The values at positions ``u`` of ``[0, 1]``; ``u`` outside is clipped to it.

        Args:
          u: a position, or an array of them.

        Returns:
          A value (``float``, or ``int`` for an integer range) for a single position, else an
          array of ``u``'s shape (``int64`` for an integer range); always inside the range.

        Raises:
          ValueError: a position that is not a number (NaN).

        Example:
          >>> intrange(1, 4).from_unit([-1.0, 0.3, 0.99, 2.0])
          array([1, 2, 4, 4])
        """
        units = np.asarray(u, dtype=float)
        if np.isnan(units).any():
            raise ValueError(f"{self!r}: from_unit got NaN; give positions in [0, 1]")
        lo, hi = self._ends()
        coords = lo + np.clip(units, 0.0, 1.0) * (hi - lo)
        values = np.exp(coords) if self.log else coords
        if self.integer:
            values = np.clip(np.floor(values + 0.5), self.low, self.high).astype(np.int64)
            return int(values) if values.ndim == 0 else values
        # the ends exactly: exp(log(low)) may round past low
        values = np.where(units <= 0, self.low, np.where(units >= 1, self.high, values))
        values = np.clip(values, self.low, self.high)
        return float(values) if values.ndim == 0 else values

    def sample(self, rng: np.random.Generator, size: int | tuple[int, ...]) -> np.ndarray:
        """Independent draws, uniform in the unit coordinates (log space for log ranges).

        Args:
          rng: the random generator (``numpy.random.default_rng(seed)``).
          size: how many values, or an array shape.

        Returns:
          An array of ``size`` values (``float64``, or ``int64`` for an integer range).

        Example:
          >>> loguniform(1e-4, 1e-2).sample(np.random.default_rng(0), 3)
          array([0.00187899, 0.0003464 , 0.00012077])
        """
        if not isinstance(rng, np.random.Generator):
            raise TypeError(
                f"rng must be a numpy.random.Generator (numpy.random.default_rng(seed)), "
                f"got {type(rng).__name__}"
            )
        return np.asarray(self.from_unit(rng.random(size)))

    # ------------------------------------------------------------------ TOML
    def to_table(self) -> dict[str, Any]:
        """The range as a space file's table: ``{"loguniform": [1e-05, 1.0]}``.

        Example:
          >>> uniform(0.5, 2).to_table()
          {'uniform': [0.5, 2.0]}
        """
        table: dict[str, Any] = {self._kind(): [self.low, self.high]}
        if self.integer and self.log:
            table["log"] = True
        return table

    @staticmethod
    def is_table(table: Any) -> bool:
        """Whether ``table`` is meant as a range: a mapping naming one kind of range."""
        return isinstance(table, Mapping) and sum(k in table for k in _KINDS) == 1

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> Distribution:
        """The range of a space file's table (see ``to_table``).

        Raises:
          ValueError, TypeError: a table that is none of the forms ``{ uniform = [low, high] }``,
            ``{ loguniform = [low, high] }``, ``{ intrange = [low, high] }``,
            ``{ intrange = [low, high], log = true }``, or bad ends; the message says which.

        Example:
          >>> Distribution.from_table({"intrange": [8, 64], "log": True})
          intrange(8, 64, log=True)
        """
        if not isinstance(table, Mapping):
            raise TypeError(f"a range is a table, got {table!r}; use {TABLE_FORMS}")
        kinds = [k for k in _KINDS if k in table]
        extra = sorted(set(table) - {*_KINDS, "log"})
        if len(kinds) != 1 or extra:
            what = f"unknown key(s) {extra}" if extra else "no kind of range"
            if len(kinds) > 1:
                what = f"several kinds of range {kinds}"
            raise ValueError(f"{what} in {dict(table)!r}; use {TABLE_FORMS}")
        kind = kinds[0]
        ends = table[kind]
        if not isinstance(ends, list | tuple) or len(ends) != 2:
            raise ValueError(f"{kind} takes [low, high], got {ends!r}")
        if "log" in table and kind != "intrange":
            raise ValueError(
                f"log = ... belongs to intrange only; use loguniform for a log range of reals "
                f"(got {dict(table)!r})"
            )
        if kind == "intrange":
            return intrange(ends[0], ends[1], log=table.get("log", False))
        return (uniform if kind == "uniform" else loguniform)(ends[0], ends[1])


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class uniform(Distribution):  # noqa: N801 - named like the function a user calls
    """Real numbers, uniform on ``[low, high]``.

    Example:
      >>> uniform(0.0, 0.5), 0.2 in uniform(0.0, 0.5)
      (uniform(0, 0.5), True)
    """

    log: bool = dataclasses.field(default=False, init=False)
    integer: bool = dataclasses.field(default=False, init=False)


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class loguniform(Distribution):  # noqa: N801
    """Positive real numbers, uniform in log space on ``[low, high]`` (``0 < low``): as likely
    between 1e-5 and 1e-4 as between 0.1 and 1.

    Example:
      >>> loguniform(1e-5, 1.0).from_unit([0.0, 0.2, 1.0])
      array([1.e-05, 1.e-04, 1.e+00])
    """

    log: bool = dataclasses.field(default=True, init=False)
    integer: bool = dataclasses.field(default=False, init=False)


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class intrange(Distribution):  # noqa: N801
    """The integers ``low..high``, both ends included: uniform, or uniform in log space with
    ``log=True`` (``low >= 1``; then 16..32 is as likely as 32..64).

    On a tuple-valued field of a space (``hidden``, ``conv``, ``dense``), every entry of the
    model's tuple takes the drawn value.

    Example:
      >>> intrange(2, 5), intrange(16, 256, log=True), 5 in intrange(2, 5)
      (intrange(2, 5), intrange(16, 256, log=True), True)
    """

    low: int
    high: int
    log: bool = False
    integer: bool = dataclasses.field(default=True, init=False)


@dataclasses.dataclass(frozen=True)
class Categorical:
    """A categorical choice: one of ``choices`` (a list in a ``SearchSpace``), drawn uniformly.

    Attributes:
      choices: the values, in the order given.

    Example:
      >>> c = Categorical([(16,), (32,)])
      >>> c, len(c), (32,) in c
      (Categorical([(16,), (32,)]), 2, True)
    """

    choices: tuple

    def __post_init__(self) -> None:
        if isinstance(self.choices, str | bytes) or not isinstance(self.choices, Iterable):
            raise TypeError(f"choices must be a list of values, got {self.choices!r}")
        object.__setattr__(self, "choices", tuple(self.choices))
        if not self.choices:
            raise ValueError("a categorical choice needs at least one value")

    def __len__(self) -> int:
        return len(self.choices)

    def __contains__(self, value: Any) -> bool:
        return any(_same(value, c) for c in self.choices)

    def index(self, value: Any) -> int:
        """The position of ``value`` among the choices (``ValueError`` if it is none of them)."""
        for i, c in enumerate(self.choices):
            if _same(value, c):
                return i
        raise ValueError(f"{value!r} is not one of the choices {list(self.choices)!r}")

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """``size`` independent uniform draws, as a 1-D object array of the choices themselves.

        Example:
          >>> Categorical(["adam", "sgd"]).sample(np.random.default_rng(0), 3)
          array(['sgd', 'sgd', 'sgd'], dtype=object)
        """
        if not isinstance(rng, np.random.Generator):
            raise TypeError(
                f"rng must be a numpy.random.Generator (numpy.random.default_rng(seed)), "
                f"got {type(rng).__name__}"
            )
        out = np.empty(size, dtype=object)
        for i, k in enumerate(rng.integers(len(self.choices), size=size)):
            out[i] = self.choices[k]
        return out

    def __repr__(self) -> str:
        return f"Categorical({list(self.choices)!r})"


def _same(a: Any, b: Any) -> bool:
    """Equal values of one type family (so ``1 == True`` does not count, and a list matches the
    tuple a model stores)."""
    if isinstance(a, list):
        a = tuple(a)
    if isinstance(a, bool | np.bool_) != isinstance(b, bool | np.bool_):
        return False
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False
