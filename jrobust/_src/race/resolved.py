"""``ResolvedRace``: a race's settings resolved once, then passed around as one object.

The rule, the statistic, the ranking statistic and the warm-up are derived from ``RaceSettings``
here and nowhere else; every step of the race reads them from this object.
"""

from __future__ import annotations

import dataclasses

from jrobust._src.rules import Rule
from jrobust._src.settings import RaceSettings
from jrobust._src.stats import Statistic, get_statistic

__all__ = ["ResolvedRace"]


@dataclasses.dataclass(frozen=True, eq=False)
class ResolvedRace:
    """The settings of one race with every default filled in and every name resolved.

    Attributes:
      settings: the resolved ``RaceSettings`` (``warmup`` and ``instances_per_round`` set).
      rule: the elimination rule; statistic: what it eliminates by; rank_by: what ranks
        (``statistic`` unless set); warmup: instances per model before anything leaves.
    """

    settings: RaceSettings
    rule: Rule
    statistic: Statistic
    rank_by: Statistic
    warmup: int

    @classmethod
    def of(cls, settings: RaceSettings, *, batched: bool) -> ResolvedRace:
        """Resolve ``settings`` for a race whose rounds are trained together (``batched``:
        jrobust's engine; ``instances_per_round`` defaults to ``"auto"``) or one instance at a
        time by an evaluator or the caller (it defaults to 1, the paper's)."""
        settings = settings.resolved(evaluator=not batched)
        rule = settings.make_rule()
        statistic = get_statistic(settings.statistic)
        rank_by = get_statistic(settings.rank_by) if settings.rank_by is not None else statistic
        return cls(settings, rule, statistic, rank_by, settings.warmup_for(rule))

    @property
    def n_stages(self) -> int:
        """The racing stages: one per fidelity size (one without ``fidelity``)."""
        return len(self.settings.fidelity) if self.settings.fidelity else 1
