"""`make bench`: every benchmark, one after the other, each in a fresh process, sized so the whole
run stays under 10 minutes on the 2-core machine (user counts scaled down; bench/README.md shows the
extrapolation to the full figures).

Each can also run alone with its own defaults (`python -m bench.<name> --help`); bench/README.md
records the numbers.
"""

from __future__ import annotations

import subprocess
import sys
import time

BENCHMARKS: list[tuple[str, list[str]]] = [
    ("bench.cold_start", ["--rounds", "4"]),
    ("bench.offboarding", ["--runs", "3"]),
    ("bench.token_vendor", []),
    ("bench.scale", ["--reconcile-users", "100", "200", "--runs", "2"]),
]


def main() -> int:
    began = time.monotonic()
    failed = []
    for name, args in BENCHMARKS:
        print(f"\n=== {name} {' '.join(args)} ===", flush=True)
        # a process of its own: its worker processes can import it by name, and one benchmark's
        # state (clocks, warm instances, limiters) never leaks into the next
        if subprocess.run([sys.executable, "-m", name, *args], check=False).returncode != 0:
            failed.append(name)
    print(f"\nmake bench: {time.monotonic() - began:.0f} s in all", flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
