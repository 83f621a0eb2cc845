"""Imported at start-up by the `clipbridge run` processes of the benchmark's "proposed change" variants only
(PYTHONPATH=bench/site:<repo>): applies the patches named in CLIPBRIDGE_BENCH_PATCHES (see bench/patches.py)."""

import os

from bench.patches import apply

apply(os.environ.get("CLIPBRIDGE_BENCH_PATCHES", ""))
