"""The names and small grammars of jrobust's settings, in plain Python (no NumPy, no JAX).

The ``jrobust`` command parses and checks its options with these before it imports anything
heavy, so ``jrobust --help`` and a mistyped option answer at once; the library checks with the
same functions (``jrobust.stats.get_statistic``, ``jrobust._src.settings.parse_rule``,
``jrobust.data.load``), so a name means the same thing from Python and from the command line.

Example:
  >>> statistic_name("q90")
  'q90'
  >>> split_rule("quantile:0.25")
  ('quantile', {'keep': 0.25})
  >>> data_spec("Digits")
  'digits'
"""

from __future__ import annotations

import dataclasses
import difflib
import numbers
import re
from collections.abc import Iterable
from typing import Any

__all__ = [
    "BUILTIN_RACE",
    "DATA_HELP",
    "DEFAULT_DATA",
    "DEFAULT_EVENTS",
    "CONV_IMPLS",
    "EXECUTION_FIELDS",
    "Execution",
    "MERGES",
    "OVER",
    "RULES",
    "STATISTICS",
    "TEST_RULES",
    "FULL_REPEATS",
    "FULL_STEPS",
    "check_fidelity",
    "check_merge",
    "check_stack_mode",
    "data_spec",
    "did_you_mean",
    "positive_int",
    "split_rule",
    "statistic_name",
]

#: The statistics known by name (``jrobust._src.stats``); ``"q<p>"`` adds any percentile.
STATISTICS = ("mean", "median", "std", "min", "max", "q1", "q3", "q3+iqr", "iqr", "pd")

#: The elimination rules known by name (``jrobust._src.rules``); every one after ``threshold`` is a
#: significance test and takes ``alpha``, ``patience`` and ``correction``.
RULES = (
    "halving", "quantile", "threshold",
    "welch", "mannwhitney", "ks", "bartlett", "levene", "fligner",
    "friedman", "wilcoxon", "ttest_paired", "bootstrap",
)  # fmt: skip
TEST_RULES = RULES[3:]

#: What the statistics of a race are taken over (``RaceSettings.over``).
OVER = ("instances", "transforms", "both")

#: Which models share one compiled program (``jrobust._src.programs``).
MERGES = ("auto", "none", "max")

#: The throughput protocol of ``benchmarks/RESULTS.md`` (``jrobust bench --full``): steps per
#: timed call and interleaved repeats.
FULL_STEPS, FULL_REPEATS = 300, 5

#: The data of ``jrobust run`` and of ``race(space, "calo-a")``: the synthetic calorimeter, data
#: set A, 10,000 events.
DEFAULT_DATA = "calo-a"
DEFAULT_EVENTS = 10_000
DATA_HELP = "calo-a | calo-b | digits | tfds:NAME | npz:PATH"
_DATA_NAMES = "'calo-a', 'calo-b', 'digits', 'tfds:NAME' (e.g. 'tfds:mnist'), 'npz:PATH'"

#: The ``[race]`` table the built-in space is raced with: at most 10 instances per model, so the
#: default ``jrobust run`` takes minutes on a laptop CPU (every other setting is the default of
#: ``jrobust.RaceSettings``).
BUILTIN_RACE: dict[str, Any] = {"max_instances": 10}

_PERCENTILE = re.compile(r"q(\d+(?:\.\d*)?)")
_CALORIMETER = ("calo-a", "calo-b", "calorimeter-a", "calorimeter-b", "calo", "calorimeter")


def did_you_mean(word: Any, choices: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest of ``choices`` to ``word`` (``""`` if none
    is close), to follow the unknown name in an error message.

    Example:
      >>> did_you_mean("lerning_rate", ["learning_rate", "l2"])
      " (did you mean 'learning_rate'?)"
    """
    if not isinstance(word, str):
        return ""
    lower = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(word.lower(), list(lower), n=1, cutoff=0.5)
    return f" (did you mean {lower[close[0]]!r}?)" if close else ""


def statistic_name(name: str) -> str:
    """``name`` if it names a statistic (one of ``STATISTICS``, or ``"q<p>"`` with
    ``0 <= p <= 100``), else a ``ValueError`` that lists them (and the closest one).

    Example:
      >>> statistic_name("q2.5")
      'q2.5'
    """
    if name in STATISTICS:
        return name
    match = _PERCENTILE.fullmatch(name)
    if match and float(match.group(1)) <= 100:
        return name
    raise ValueError(
        f"unknown statistic {name!r}{did_you_mean(name, STATISTICS)}; use one of "
        f"{', '.join(STATISTICS)}, 'q<p>' for the p-th percentile (0 <= p <= 100, e.g. 'q90'), "
        "or a callable"
    )


def split_rule(spec: str) -> tuple[str, dict[str, float]]:
    """A rule given by name: ``(name, options)`` from ``"halving"``, ``"quantile:0.25"`` (keep a
    quarter) or ``"threshold:0.03"`` (keep statistics <= 0.03); a ``ValueError`` naming the
    problem otherwise.

    Example:
      >>> split_rule("threshold:0.03")
      ('threshold', {'value': 0.03})
    """
    name, _, value = spec.strip().partition(":")
    name = name.strip().lower()
    if name not in RULES:
        raise ValueError(
            f"unknown rule {spec!r}{did_you_mean(name, RULES)}; use one of "
            f"{', '.join(RULES)} (quantile:KEEP, threshold:VALUE)"
        )
    options: dict[str, float] = {}
    if value:
        if name not in ("quantile", "threshold"):
            raise ValueError(
                f"rule {name!r} takes no value ({spec!r}); only quantile:KEEP and threshold:VALUE do"
            )
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"rule {spec!r}: {value!r} is not a number") from None
        options["keep" if name == "quantile" else "value"] = number
    elif name == "threshold":
        raise ValueError("rule 'threshold' needs its value: threshold:VALUE, e.g. threshold:0.03")
    return name, options


def data_spec(text: str) -> str:
    """A data set as the command line's ``--data`` and ``race(space, "digits")`` take it:
    ``calo-a``, ``calo-b`` (also ``calorimeter-a``, ``calo``: data set A), ``digits``,
    ``tfds:NAME``, ``npz:PATH`` or a path ending in ``.npz``. Returns the canonical form (the
    calorimeter and digits in lower case); a ``ValueError`` otherwise.

    Example:
      >>> data_spec("calorimeter-b"), data_spec("npz:my.npz")
      ('calo-b', 'npz:my.npz')
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(
            f"data set spec must be a non-empty string, one of {_DATA_NAMES}; got {text!r}"
        )
    text = text.strip()
    low = text.lower()
    if low in _CALORIMETER:
        return "calo-" + (low.rsplit("-", 1)[1] if "-" in low else "a")
    if low == "digits":
        return low
    if low.startswith("tfds:"):
        if not text[5:].strip():
            raise ValueError("give a TFDS name after 'tfds:', e.g. 'tfds:mnist'")
        return "tfds:" + text[5:].strip()
    if low.startswith("npz:"):
        if not text[4:].strip():
            raise ValueError("give a path after 'npz:', e.g. 'npz:data/mine.npz'")
        return "npz:" + text[4:].strip()
    if low.endswith(".npz"):
        return text
    hint = did_you_mean(low, ("calo-a", "calo-b", "digits"))
    raise ValueError(f"unknown data set {text!r}{hint}; use one of {_DATA_NAMES}")


def check_stack_mode(mode: str | None) -> tuple[str, int | None]:
    """``(name, group size)`` of a ``stack_mode`` (``"auto"``, ``"vmap"``, ``"map"``,
    ``"map:N"``); a ``ValueError`` for anything else. ``jrobust._src.train.resolve_stack_mode``
    resolves ``"auto"`` for the backend.

    Example:
      >>> check_stack_mode("map:4")
      ('map', 4)
    """
    name, _, size = (mode or "auto").partition(":")
    if name not in ("auto", "vmap", "map") or (
        size and (name != "map" or not size.isdigit() or int(size) < 1)
    ):
        raise ValueError(f"stack_mode must be 'auto', 'vmap', 'map' or 'map:N', got {mode!r}")
    return name, int(size) if size else None


def check_merge(merge: str, waste: float | None) -> None:
    """A clear error for a ``merge`` policy or ``waste`` bound that does not exist."""
    if merge not in MERGES:
        raise ValueError(
            f"merge must be one of {', '.join(MERGES)}, got {merge!r}{did_you_mean(merge, MERGES)}"
        )
    if waste is not None and (
        isinstance(waste, bool) or not isinstance(waste, int | float) or not waste >= 0
    ):
        raise ValueError(f"waste must be a number >= 0 (0.5: 1.5x the own work), got {waste!r}")


def positive_int(name: str, value: Any, *, minimum: int = 1, optional: bool = False) -> Any:
    """``value`` if it is an integer >= ``minimum`` (or ``None`` when ``optional``), else a
    ``ValueError`` naming the setting.

    Example:
      >>> positive_int("warmup", 3)
      3
    """
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return int(value)


def check_fidelity(sizes: Any) -> tuple[int, ...] | None:
    """A fidelity schedule as a tuple of strictly increasing positive sizes (``None`` stays);
    a ``ValueError`` that names the problem otherwise.

    Example:
      >>> check_fidelity([500, 2000, 8000])
      (500, 2000, 8000)
    """
    if sizes is None:
        return None
    if isinstance(sizes, str):
        try:
            sizes = [int(p) for p in sizes.replace(" ", "").split(",") if p]
        except ValueError:
            raise ValueError(
                f"fidelity must be increasing training sizes, e.g. 500,2000,8000; got {sizes!r}"
            ) from None
    if isinstance(sizes, numbers.Integral) and not isinstance(sizes, bool):
        sizes = [sizes]
    try:
        sizes = list(sizes)
    except TypeError:
        raise ValueError(
            f"fidelity must be a list of increasing training sizes, e.g. [500, 2000, 8000]; got "
            f"{sizes!r}"
        ) from None
    if not sizes:
        raise ValueError("fidelity must list at least one training size (or be None)")
    out = tuple(positive_int("fidelity size", v) for v in sizes)
    for a, b in zip(out, out[1:], strict=False):
        if b <= a:
            raise ValueError(
                f"fidelity sizes must increase strictly from stage to stage, got {list(out)} "
                f"({b} after {a})"
            )
    return out


#: The convolution forms (``ModelConfig.conv_impl``, ``RaceSettings.conv_impl``).
CONV_IMPLS = (None, "auto", "im2col", "xla")


@dataclasses.dataclass(frozen=True)
class Execution:
    """How a race is computed, never its ledger (so these may change when a race is resumed).
    Each field is documented in ``RaceSettings``, which holds them beside the race's own
    settings; ``RaceSettings.execution`` is this part of it."""

    max_bucket: int | None = None
    min_bucket: int | None = None
    conv_impl: str | None = None
    compilation_cache: bool | str = True
    merge: str = "auto"
    waste: float | None = None
    stack_mode: str | None = None

    def __post_init__(self) -> None:
        positive_int("max_bucket", self.max_bucket, optional=True)
        positive_int("min_bucket", self.min_bucket, optional=True)
        if self.conv_impl not in CONV_IMPLS:
            raise ValueError(f"conv_impl must be 'auto', 'im2col' or 'xla', got {self.conv_impl!r}")
        check_merge(self.merge, self.waste)
        check_stack_mode(self.stack_mode)
        if not isinstance(self.compilation_cache, bool | str):
            raise ValueError(
                f"compilation_cache must be True, False or a folder, got {self.compilation_cache!r}"
            )


#: Settings that change how a race is computed, never its ledger (the fields of ``Execution``).
EXECUTION_FIELDS = tuple(f.name for f in dataclasses.fields(Execution))
