"""Behaviour cloning of a head on cached frozen features: inputs, windows, loop, schedule, metrics."""
