"""Search spaces: the product space, space files (TOML) and ready spaces.

- ``SearchSpace`` (``product``): the product of choices around a base model, cohorts, names.
- ranges (``distributions``): ``uniform``, ``loguniform``, ``intrange`` (all ``Distribution``)
  and ``Categorical``; a space with a range is sampled or searched, not listed.
- space files (``files``): ``build_space`` from ``[base]``/``[choices]``/``[when]`` tables,
  ``load_space_file``, ``to_toml``.
- ready spaces (``builtin``): ``paper_space`` and the built-in space of ``jrobust run``.
"""

from jrobust._src.space.builtin import BUILTIN_RACE, default_spec, paper_space
from jrobust._src.space.distributions import (
    Categorical,
    Distribution,
    intrange,
    loguniform,
    uniform,
)
from jrobust._src.space.files import (
    DATA_KEYS,
    RACE_KEYS,
    ZOO_MODELS,
    SpaceError,
    build_model,
    build_space,
    load_space_file,
    parse_space_text,
    to_toml,
    with_overrides,
)
from jrobust._src.space.product import InfiniteSpaceError, SearchSpace

__all__ = [
    "BUILTIN_RACE",
    "DATA_KEYS",
    "RACE_KEYS",
    "ZOO_MODELS",
    "Categorical",
    "Distribution",
    "InfiniteSpaceError",
    "SearchSpace",
    "SpaceError",
    "build_model",
    "build_space",
    "default_spec",
    "intrange",
    "load_space_file",
    "loguniform",
    "paper_space",
    "parse_space_text",
    "to_toml",
    "uniform",
    "with_overrides",
]
