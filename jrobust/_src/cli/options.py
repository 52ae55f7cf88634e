"""The pieces every ``jrobust`` subcommand's options are made of: the parser class, option
types that check their values, and the exit statuses.

Plain Python only (``jrobust._src.specs``): the parsers are built and the option values checked
before NumPy, JAX or the data modules are imported, so ``--help``, ``--version`` and every
mistyped option answer at once.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from jrobust._src.specs import (
    DATA_HELP,
    DEFAULT_DATA,
    DEFAULT_EVENTS,
    check_fidelity,
    split_rule,
    statistic_name,
)
from jrobust._src.specs import data_spec as _data_spec

__all__ = [
    "EXIT_FAILURE",
    "EXIT_OK",
    "EXIT_USAGE",
    "DATA_HELP",
    "DEBUG",
    "DEFAULT_DATA",
    "DEFAULT_EVENTS",
    "Help",
    "Parser",
    "UsageError",
    "data_spec",
    "fidelity_sizes",
    "number_list",
    "fraction",
    "instances_per_round",
    "nonnegative_float",
    "nonnegative_int",
    "positive_int",
    "rule_spec",
    "stack_sizes",
    "statistic",
]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2

#: ``--debug`` on every subcommand (it may also come before the subcommand).
DEBUG: dict[str, Any] = dict(
    action="store_true",
    default=argparse.SUPPRESS,
    help="show tracebacks instead of one-line errors",
)


class UsageError(Exception):
    """Bad input: reported as one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line instead of usage + message
        raise UsageError(f"{message} (see: {self.prog} --help)")


class Help(argparse.HelpFormatter):
    """Wraps one-paragraph texts; keeps texts with line breaks (the examples) as written."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=30, width=100)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def _checked(convert, ok, what: str):
    """An argparse type: ``convert(text)`` that must satisfy ``ok``, else says it expected ``what``."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not ok(value):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


positive_int = _checked(int, lambda v: v >= 1, "a positive integer")
nonnegative_int = _checked(int, lambda v: v >= 0, "an integer >= 0")
fraction = _checked(float, lambda v: 0.0 < v < 1.0, "a number in (0, 1)")
nonnegative_float = _checked(float, lambda v: v >= 0.0, "a number >= 0")


def statistic(text: str) -> str:
    try:
        return statistic_name(text.strip())
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def rule_spec(text: str) -> str:
    try:
        name, options = split_rule(text)
        if options:  # a value out of range (quantile:2) is checked by the rule itself
            from jrobust._src.settings import (
                parse_rule,
            )  # NumPy, no JAX: only for quantile/threshold

            parse_rule(text)
    except (ValueError, TypeError) as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text.strip()


def instances_per_round(text: str) -> int | str:
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer or 'auto', got {text!r}"
        ) from None


def data_spec(text: str) -> str:
    """``--data``: the names ``jrobust.data.load`` and ``race(space, "digits")`` take."""
    try:
        return _data_spec(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def fidelity_sizes(text: str) -> tuple[int, ...]:
    """``--fidelity 500,2000,8000``: increasing training sizes, one per stage."""
    try:
        return check_fidelity(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _numbers(text: str, kind: type, example: str) -> list:
    """The comma- (or space-) separated numbers of ``text`` as ``kind``, at least one."""
    try:
        values = [kind(v) for v in re.split(r"[,\s]+", text.strip()) if v]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected numbers separated by commas, e.g. {example}; got {text!r}"
        ) from None
    if not values:
        raise argparse.ArgumentTypeError(f"give at least one number, e.g. {example}")
    return values


def number_list(text: str) -> list[float]:
    """``--rotation 0,15,30``: a comma-separated list of numbers."""
    return _numbers(text, float, "0,15,30")


def stack_sizes(text: str) -> list[int]:
    """``--stacks 1,8,64``: positive stack sizes."""
    values = _numbers(text, int, "1,8,64")
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive stack sizes like 1,8,64, got {text!r}")
    return values
