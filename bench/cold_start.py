"""Cold start: importing each function's handler vs importing only the SDK clients it needs.

FC loads a handler module once per new instance, before the first invocation can run; what the
module pulls in at import is paid on every cold start. The floor is the official SDK client(s) the
function's flows call, so each handler is compared with a fresh interpreter importing exactly those
(`SDK_CLIENTS`). Every side is a whole fresh process, run alternately (the order rotating each round)
in one run so the machine's drift falls on both; wall time is measured from spawn to exit and
memory is the child's peak RSS (`ru_maxrss` of `wait4`). Target: ≤ 1.2× in wall time and memory.

A handler may load an SDK client on first use instead of at import. So that this never hides a cost,
a third process imports the handler and then its SDK clients ("+ clients"): what an instance holds
once its first invocation has built them, before any work. A plain script, not a test: numbers go to bench/README.md.

    .venv/bin/python -m bench.cold_start [--rounds 6] [--warmup 1] [--only token_vendor ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = 1.2

SDK_CLIENTS: dict[str, tuple[str, ...]] = {
    "user_requested": (
        "alibabacloud_ram20150501",
        "alibabacloud_ims20190815",
        "alibabacloud_resourcemanager20200331",
    ),
    "access_approved": (
        "alibabacloud_ram20150501",
        "alibabacloud_ims20190815",
        "alibabacloud_resourcemanager20200331",
    ),
    "access_revoked": (
        "alibabacloud_ram20150501",
        "alibabacloud_ims20190815",
        "alibabacloud_resourcemanager20200331",
    ),
    "user_offboarded": (
        "alibabacloud_ram20150501",
        "alibabacloud_ims20190815",
        "alibabacloud_resourcemanager20200331",
    ),
    "reconcile": (
        "alibabacloud_ram20150501",
        "alibabacloud_ims20190815",
        "alibabacloud_resourcemanager20200331",
    ),
    "key_rotation": ("alibabacloud_ram20150501",),
    "token_vendor": ("alibabacloud_sts20150401",),
    "webhook_ingress": ("alibabacloud_fc20230330",),
    "credential_pickup": (),
}
"""Function folder → the SDK client packages its flows call on every run: the floor. Clients used
on some paths only are imported then, never at cold start, and are not in the floor: EventBridge
(result destinations configured), and FC InvokeFunction in user-offboarded (an owner's large job
fanned out) and reconcile (an aged key handed to key-rotation)."""

ALL_SDK_CLIENTS = (
    "alibabacloud_ram20150501",
    "alibabacloud_ims20190815",
    "alibabacloud_resourcemanager20200331",
    "alibabacloud_sts20150401",
    "alibabacloud_fc20230330",
    "alibabacloud_eventbridge20200401",
)


def handler_code(function: str) -> str:
    return f"import functions.{function}.index"


def sdk_code(function: str) -> str:
    """The floor: the SDK clients alone (no SDK at all: the bare interpreter)."""
    return "; ".join(f"import {package}.client" for package in SDK_CLIENTS[function]) or "pass"


def loaded_code(function: str) -> str:
    """The handler, then the SDK clients it loads on first use."""
    return f"{handler_code(function)}; {sdk_code(function)}"


@dataclass(frozen=True)
class Sample:
    wall: float  # seconds, spawn to exit
    rss_mib: float  # the child's peak resident set


def run(code: str) -> Sample:
    """One fresh interpreter running `code`, timed from the outside."""
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"`python -c {code!r}` failed with exit code {process.returncode}")
    return Sample(wall, usage.ru_maxrss / 1024)  # Linux reports KiB


def ratio(samples: list[Sample], floor: list[Sample], figure: str) -> float:
    """The median of the pairwise ratios: each pair ran back to back, under the same load."""
    return statistics.median(
        getattr(a, figure) / getattr(b, figure) for a, b in zip(samples, floor, strict=True)
    )


@dataclass
class Comparison:
    function: str
    handler: list[Sample]
    sdk: list[Sample]
    loaded: list[Sample]  # the handler, then its SDK clients

    def ratios(self) -> dict[str, float]:
        return {
            "handler wall": ratio(self.handler, self.sdk, "wall"),
            "handler memory": ratio(self.handler, self.sdk, "rss_mib"),
            "+ clients wall": ratio(self.loaded, self.sdk, "wall"),
            "+ clients memory": ratio(self.loaded, self.sdk, "rss_mib"),
        }


def compare(function: str, rounds: int, warmup: int) -> Comparison:
    """Alternating rounds; the order rotates each round so no side always goes first."""
    sides = [handler_code(function), sdk_code(function), loaded_code(function)]
    for _ in range(warmup):  # byte-code caches and the page cache, for every side
        for code in sides:
            run(code)
    samples: list[list[Sample]] = [[], [], []]
    for i in range(rounds):
        for k in range(len(sides)):
            side = (i + k) % len(sides)
            samples[side].append(run(sides[side]))
    return Comparison(function, *samples)


def median(values: list[float]) -> float:
    return statistics.median(values)


def report(results: list[Comparison]) -> None:
    print(
        "| function | SDK clients alone | handler ms | + clients ms | SDK ms | wall × | + clients wall × "
        "| handler MiB | + clients MiB | SDK MiB | memory × | + clients memory × |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        sdks = (
            ", ".join(p.removeprefix("alibabacloud_") for p in SDK_CLIENTS[r.function])
            or "none (bare python)"
        )
        ms = [median([s.wall for s in side]) * 1000 for side in (r.handler, r.loaded, r.sdk)]
        mib = [median([s.rss_mib for s in side]) for side in (r.handler, r.loaded, r.sdk)]
        x = r.ratios()
        print(
            f"| {r.function} | {sdks} | {ms[0]:.0f} | {ms[1]:.0f} | {ms[2]:.0f} "
            f"| {x['handler wall']:.2f} | {x['+ clients wall']:.2f} "
            f"| {mib[0]:.1f} | {mib[1]:.1f} | {mib[2]:.1f} "
            f"| {x['handler memory']:.2f} | {x['+ clients memory']:.2f} |"
        )
    judged = [r for r in results if SDK_CLIENTS[r.function]]
    if judged:
        print(f"\nworst ratios of the functions with SDK clients (target ≤ {TARGET}):")
        for figure in ("handler wall", "handler memory", "+ clients wall", "+ clients memory"):
            worst = max(judged, key=lambda r: r.ratios()[figure])
            print(f"  {figure}: {worst.ratios()[figure]:.2f} ({worst.function})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=6, help="rounds per function (default 6)")
    parser.add_argument("--warmup", type=int, default=1, help="uncounted rounds first (default 1)")
    parser.add_argument("--only", nargs="+", choices=sorted(SDK_CLIENTS), help="these functions only")
    args = parser.parse_args(argv)
    functions = args.only or list(SDK_CLIENTS)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    results = []
    for function in functions:
        results.append(compare(function, args.rounds, args.warmup))
        print(f"  {function}: done", file=sys.stderr, flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}\n")
    report(results)


if __name__ == "__main__":
    main()
