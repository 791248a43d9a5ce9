"""Citadel's benchmarks: `make bench` (all sections) or `python -m bench SECTION ...`."""
