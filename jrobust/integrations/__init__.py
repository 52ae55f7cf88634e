"""Front ends from other libraries onto jrobust's engine, one module each, each an optional
extra that this package does not import:

* ``jrobust.integrations.optuna``: an Optuna study's trials trained as jrobust instances
  (``pip install "jrobust[optuna]"``; see docs/search.md, "Optuna as a front end").
"""
