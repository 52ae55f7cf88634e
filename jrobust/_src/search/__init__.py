"""``jrobust.search``: iterated racing over candidates sampled from a space with ranges."""
