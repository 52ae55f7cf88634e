"""Search spaces: the product space, space files (TOML) and ready spaces.

- ``SearchSpace`` (``product``): the product of choices around a base model, cohorts, names.
- ranges (``distributions``): ``uniform``, ``loguniform``, ``intrange`` (all ``Distribution``)
  and ``Categorical``; a space with a range is sampled or searched, not listed.
- space files (``files``): ``build_space`` from ``[base]``/``[choices]``/``[when]`` tables,
  ``load_space_file``, ``to_toml``.
- ready spaces (``builtin``): ``paper_space`` and the built-in space of ``jrobust run``.

Public through ``jrobust.space``; this package init is empty on purpose (each name
is imported from the module that defines it).
"""
