"""Benchmarks (not tests): ``python -m bench`` runs them all and prints markdown for docs/BENCHMARKS.md."""
