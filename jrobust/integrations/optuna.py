"""An Optuna study as the front end of jrobust's engine: ``optimize`` asks a batch of trials,
trains every trial's instances together and tells each trial the statistic of its own instances
(see docs/search.md, "Optuna as a front end"). Needs Optuna: ``pip install "jrobust[optuna]"``.
"""

from jrobust._src.integrations.optuna import optimize

__all__ = ["optimize"]
