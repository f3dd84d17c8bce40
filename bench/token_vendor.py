"""Token-vendor benchmarks: vend latency from the warm cache vs. with an STS call, and requests per
second through `ramflow serve`. A plain script, not a test: numbers go to bench/README.md.

    .venv/bin/python -m bench.token_vendor [--latency-ms 20] [--requests 400] [--seconds 10] [--clients 8]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import requests

from local.dev import mint_dev_token
from local.fcruntime.stack import LocalStack
from shared.cloud.clients import CloudCredentials
from shared.config import Settings
from shared.flows.vend import VendRequest

ROOT = Path(__file__).resolve().parents[1]


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {
        "n": len(ordered),
        "mean": statistics.fmean(ordered),
        "p50": pick(0.50),
        "p95": pick(0.95),
        "p99": pick(0.99),
    }


def timed(fn: Callable[[], None], n: int, *, pause: float = 0.0) -> list[float]:
    """`pause` (untimed) between calls keeps STS misses under the functions' own rate limit."""
    samples = []
    for _ in range(n):
        time.sleep(pause)
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def latency(latency_ms: float, n: int) -> dict[str, dict[str, float]]:
    """Through the HTTP trigger of an in-process stack (the emulator adds `latency_ms` to each call)."""
    results: dict[str, dict[str, float]] = {}
    with LocalStack(emulator_options={"latency_ms": latency_ms}) as stack:
        assert stack.runtime is not None and stack.emulator is not None
        url = stack.runtime.url("token-vendor")
        token = mint_dev_token("demo-app", ttl=3600)
        session = requests.Session()
        function = stack.runtime._instances["token-vendor"].module.handler.__wrapped__.__self__

        def get() -> None:
            reply = session.get(url, params={"token": token}, timeout=30)
            assert reply.status_code == 200, reply.text

        get()  # warm the instance: module import, JWKS, SDK client, first session
        results["warm cache (HTTP trigger)"] = percentiles(timed(get, n))

        vendor = function.vendor_for(Settings.from_env())
        before = stack.emulator.recorder.count()["AssumeRole"]

        def miss() -> None:
            vendor.cache.clear()
            get()

        pause = 1.5 / Settings.from_env().rate_limit_qps  # RAMFLOW_RATE_LIMIT_QPS from s.yaml
        label = f"STS call, {latency_ms:g} ms emulator latency (HTTP trigger)"
        results[label] = percentiles(timed(miss, n // 4, pause=pause))
        made = stack.emulator.recorder.count()["AssumeRole"] - before
        assert made == n // 4, f"expected one AssumeRole per miss, saw {made}"

        request = VendRequest(token=token)
        assert stack.runtime.functions is not None  # the vendor's own role session, as FC hands it
        session = stack.runtime.credentials_for(stack.runtime.functions["token-vendor"])
        assert session is not None
        own_role = CloudCredentials(session.access_key_id, session.access_key_secret, session.security_token)
        sts = function.sts_for(Settings.from_env(), own_role)
        vendor.vend(request, lambda: sts)
        results["warm cache (flow only, no HTTP)"] = percentiles(
            timed(lambda: vendor.vend(request, lambda: sts), n)
        )
    return results


def throughput(seconds: float, clients: int) -> dict[str, float]:
    """Requests per second through a `ramflow serve` process, all served from the warm cache."""
    process = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "ramflow"), "serve", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        endpoint = None
        for line in process.stdout:
            found = re.search(r"ready on (http://127\.0\.0\.1:\d+)", line)
            if found:
                endpoint = found.group(1)
                break
        if endpoint is None:
            raise RuntimeError("ramflow serve did not start")
        threading.Thread(target=lambda: process.stdout and process.stdout.read(), daemon=True).start()
        url = f"{endpoint}/token-vendor/"
        token = mint_dev_token("demo-app", ttl=3600)
        requests.get(url, params={"token": token}, timeout=30).raise_for_status()

        counts = [0] * clients
        errors = [0] * clients
        stop = time.perf_counter() + seconds

        def worker(i: int) -> None:
            session = requests.Session()
            while time.perf_counter() < stop:
                reply = session.get(url, params={"token": token}, timeout=30)
                if reply.status_code == 200:
                    counts[i] += 1
                else:
                    errors[i] += 1

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
        return {
            "clients": clients,
            "seconds": round(elapsed, 2),
            "requests": sum(counts),
            "errors": sum(errors),
            "rps": sum(counts) / elapsed,
        }
    finally:
        process.terminate()
        process.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--json", action="store_true", help="print the raw numbers as JSON")
    args = parser.parse_args()

    lat = latency(args.latency_ms, args.requests)
    rps = throughput(args.seconds, args.clients)
    if args.json:
        print(json.dumps({"latency_ms": lat, "throughput": rps}, indent=2))
        return
    print("| vend | n | mean ms | p50 ms | p95 ms | p99 ms |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, r in lat.items():
        print(f"| {name} | {r['n']} | {r['mean']:.2f} | {r['p50']:.2f} | {r['p95']:.2f} | {r['p99']:.2f} |")
    print()
    print(
        f"`ramflow serve`, warm cache: {rps['rps']:.0f} requests/s "
        f"({rps['requests']} in {rps['seconds']} s, {rps['clients']} keep-alive clients, {rps['errors']} errors)"
    )


if __name__ == "__main__":
    main()
