"""Coverage-guided fuzzing (atheris) of every reader of bytes from outside the process.

``targets`` holds one target per reader and says what a clean outcome is for it;
``engine`` runs one target under libFuzzer in its own process; ``python -m fuzz`` runs them
all, each in a subprocess, and prints the executions per target as JSON. ``seeds`` writes
the committed seed corpus in ``corpus/``.

This package imports nothing from ``engauge`` here, so that ``engine`` can import the
readers under atheris' instrumentation.
"""
