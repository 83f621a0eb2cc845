"""Benchmarks of clipbridge: `python -m bench.run` from the repository root."""
