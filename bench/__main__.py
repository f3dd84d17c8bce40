"""`make bench`: every benchmark with its default settings, one after the other.

Each can also run alone (`python -m bench.<name> --help`); bench/README.md records the numbers.
"""

from __future__ import annotations

import runpy
import sys

BENCHMARKS = ["bench.cold_start", "bench.offboarding", "bench.token_vendor", "bench.scale"]


def main() -> None:
    for name in BENCHMARKS:
        print(f"\n=== {name} ===", flush=True)
        sys.argv = [name]
        runpy.run_module(name, run_name="__main__")


if __name__ == "__main__":
    main()
