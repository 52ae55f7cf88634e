"""The sampling model of ``jrobust.search``: irace's (Lopez-Ibanez et al., "The irace package:
Iterated racing for automatic algorithm configuration", Operations Research Perspectives 3, 2016).

Every numeric parameter (``uniform``, ``loguniform``, ``intrange``) is sampled in the unit
coordinates of ``Distribution.to_unit`` (log space for log ranges) from a normal truncated to
``[0, 1]`` around the value of a *parent*, one of the elites of the previous iteration drawn with
a probability that falls with its rank (``rank_weights``). All numeric parameters share one width
(the normal's standard deviation), 0.5 at the start, multiplied by ``(1 / N_new) ** (1 / d)``
every iteration (``N_new`` new candidates, ``d`` numeric parameters): the volume the candidates
spread over shrinks by about ``1 / N_new`` per iteration. Every elite carries one probability
vector per categorical parameter; at the start of iteration ``j`` of ``N_iter`` it moves toward
the elite's own value (``p <- p (1 - (j - 1) / N_iter)``, plus ``(j - 1) / N_iter`` on its value)
and its children draw from it and inherit it. The first iteration samples uniformly.

When the new candidates of an iteration collapse onto near-duplicates (every pair within
``COLLAPSE_TOLERANCE`` of each other on every numeric parameter in unit coordinates, with equal
categoricals), the model restarts softly, as irace does: the width grows back to its value of two
iterations before (``width * N_new ** (2 / d)``, at most the width of iteration 2), every
probability vector of the parents is flattened toward its largest entry
(``p <- 0.9 p + 0.1 max(p)``, normalised), and the candidates are drawn again.

The model is data (``SamplingModel``); the functions here change it and draw from it with a
``numpy.random.Generator`` only, so a search is deterministic for its seed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jrobust._src.space.distributions import Categorical, Distribution

__all__ = [
    "COLLAPSE_TOLERANCE",
    "INITIAL_WIDTH",
    "SamplingModel",
    "collapsed",
    "rank_weights",
    "sample_children",
    "sample_uniform",
    "shifted",
]

#: The width (standard deviation in unit coordinates) of the numeric parameters at the start.
INITIAL_WIDTH = 0.5

#: Candidates closer than this on every numeric parameter (in unit coordinates, with equal
#: categoricals) are near-duplicates; new candidates that are all near-duplicates of each other
#: trigger a soft restart.
COLLAPSE_TOLERANCE = 1e-3

# Draws of a truncated normal before the value is clipped to the unit interval (a width far
# above 1 is never reached, so nearly every draw lands inside at the first or second try).
_TRIES = 100


@dataclasses.dataclass
class SamplingModel:
    """What the search samples from: the widths of the numeric parameters and, per elite, the
    probability vectors of the categorical ones.

    Attributes:
      parameters: the space's parameters (``SearchSpace.parameters``), in order.
      width: the standard deviation, in unit coordinates, of every numeric parameter's normal.
      probabilities: global model id -> parameter -> probability of each choice.
    """

    parameters: dict[str, Distribution | Categorical]
    width: float = INITIAL_WIDTH
    probabilities: dict[int, dict[str, np.ndarray]] = dataclasses.field(default_factory=dict)

    @property
    def numeric(self) -> list[str]:
        """The numeric parameters (ranges), in order."""
        return [p for p, d in self.parameters.items() if isinstance(d, Distribution)]

    @property
    def categorical(self) -> list[str]:
        """The categorical parameters (lists of choices), in order."""
        return [p for p, d in self.parameters.items() if isinstance(d, Categorical)]

    def uniform_probabilities(self) -> dict[str, np.ndarray]:
        """A flat probability vector per categorical parameter."""
        return {
            p: np.full(len(self.parameters[p]), 1.0 / len(self.parameters[p]))
            for p in self.categorical
        }

    def shrink(self, n_new: int) -> None:
        """The width of the next iteration: times ``(1 / n_new) ** (1 / d)``."""
        d = len(self.numeric)
        if d and n_new > 1:
            self.width *= (1.0 / n_new) ** (1.0 / d)

    def shift(
        self,
        elites: Sequence[int],
        values: Mapping[int, Mapping[str, Any]],
        j: int,
        n_iterations: int,
    ) -> None:
        """Move each elite's probability vectors toward its own values, for iteration ``j``."""
        for e in elites:
            probs = self.probabilities.setdefault(e, self.uniform_probabilities())
            for p in self.categorical:
                k = self.parameters[p].index(values[e][p])
                probs[p] = shifted(probs[p], k, j, n_iterations)

    def soft_restart(self, parents: Sequence[int], n_new: int) -> None:
        """Widen the width back to what it was two iterations before (at most the width of
        iteration 2, ``INITIAL_WIDTH * (1 / n_new) ** (1 / d)``), as irace does, and flatten the
        parents' probability vectors."""
        d = len(self.numeric)
        if d and n_new > 1:
            self.width = min(
                self.width * n_new ** (2.0 / d), INITIAL_WIDTH * (1.0 / n_new) ** (1.0 / d)
            )
        for e in parents:
            probs = self.probabilities.get(e, {})
            for p, vector in probs.items():
                flat = 0.9 * vector + 0.1 * vector.max()
                probs[p] = flat / flat.sum()


def shifted(vector: np.ndarray, k: int, j: int, n_iterations: int) -> np.ndarray:
    """A categorical probability vector moved toward choice ``k`` for iteration ``j`` of
    ``n_iterations`` (irace's update: ``p <- p (1 - s) + s`` on ``k``, ``s = (j - 1) / N``),
    normalised."""
    step = min(max(j - 1, 0) / n_iterations, 1.0)
    moved = vector * (1.0 - step)
    moved[k] += step
    return moved / moved.sum()


def rank_weights(n: int) -> np.ndarray:
    """irace's probability of drawing the elite of rank ``r`` (1 = best) of ``n`` as a parent:
    ``(n - r + 1) / (n (n + 1) / 2)``.

    Example:
      >>> rank_weights(3).tolist()
      [0.5, 0.3333333333333333, 0.16666666666666666]
    """
    ranks = np.arange(1, n + 1)
    return (n - ranks + 1) / (n * (n + 1) / 2)


def sample_uniform(model: SamplingModel, rng: np.random.Generator, n: int) -> list[dict[str, Any]]:
    """``n`` independent uniform draws of every parameter (unit coordinates for ranges)."""
    draws = {p: d.sample(rng, n) for p, d in model.parameters.items()}
    return [{p: _plain(draws[p][i]) for p in model.parameters} for i in range(n)]


def sample_children(
    model: SamplingModel,
    elites: Sequence[int],
    values: Mapping[int, Mapping[str, Any]],
    rng: np.random.Generator,
    n: int,
) -> list[tuple[dict[str, Any], int]]:
    """``n`` new candidates, each ``(values, parent)``: the parent is an elite drawn by
    ``rank_weights`` (``elites`` best first); each numeric value a truncated normal around the
    parent's, each categorical value a draw from the parent's probability vector."""
    weights = rank_weights(len(elites))
    out = []
    for _ in range(n):
        parent = int(elites[int(rng.choice(len(elites), p=weights))])
        drawn: dict[str, Any] = {}
        for p, dist in model.parameters.items():
            if isinstance(dist, Distribution):
                centre = float(dist.to_unit(values[parent][p]))
                drawn[p] = _plain(dist.from_unit(_truncated_normal(rng, centre, model.width)))
            else:
                probs = model.probabilities[parent][p]
                drawn[p] = dist.choices[int(rng.choice(len(dist), p=probs))]
        out.append((drawn, parent))
    return out


def collapsed(model: SamplingModel, candidates: Sequence[Mapping[str, Any]]) -> bool:
    """Whether two or more candidates are all near-duplicates of each other (see the module
    docstring)."""
    if len(candidates) < 2:
        return False
    for p, dist in model.parameters.items():
        if isinstance(dist, Distribution):
            units = np.asarray([dist.to_unit(c[p]) for c in candidates], float)
            if units.max() - units.min() > COLLAPSE_TOLERANCE:
                return False
        else:
            first = dist.index(candidates[0][p])
            if any(dist.index(c[p]) != first for c in candidates[1:]):
                return False
    return True


def _truncated_normal(rng: np.random.Generator, centre: float, width: float) -> float:
    """One draw of a normal around ``centre`` truncated to ``[0, 1]`` (by rejection)."""
    for _ in range(_TRIES):
        u = rng.normal(centre, width)
        if 0.0 <= u <= 1.0:
            return float(u)
    return float(np.clip(u, 0.0, 1.0))


def _plain(value: Any) -> Any:
    """A numpy scalar as a Python number (choices are returned as they are)."""
    return value.item() if isinstance(value, np.generic) else value
