"""Demonstrations: the Zarr store, scripted-expert collection, and the frozen-feature cache."""
