"""Citadel's benchmarks: `make bench` (all sections) or `python -m bench SECTION ...`."""

import os

# One BLAS thread in the bench process and in every gateway it starts (they inherit the
# environment). On two shared cores OpenBLAS's helper threads spin while idle and take the
# CPU the other side of a side-by-side comparison needs: measured, qdrant-local's 10k
# search went from 13 ms to 24 ms and Health/Check from 1.4 to 2.7 ms. Set before numpy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
