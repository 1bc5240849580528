"""s2robot: small frozen vision models that look at more scales (S²) for robot learning."""

__version__ = "0.1.0"
