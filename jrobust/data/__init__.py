"""Populations (the data instances sample from) and their sources."""

from jrobust.data.population import Population, draw_subsets

__all__ = ["Population", "draw_subsets"]
