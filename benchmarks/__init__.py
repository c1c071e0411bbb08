"""Measurements of Engauge: ``python -m benchmarks [scenario ...]`` prints JSON and saves it."""
