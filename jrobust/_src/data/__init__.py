"""Populations (the data instances sample from) and their sources.

Public through ``jrobust.data``; this package init is empty on purpose (each name
is imported from the module that defines it).
"""
