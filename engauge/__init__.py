"""Engauge: self-hosted, real-time product analytics."""

__version__ = "0.1.0"
