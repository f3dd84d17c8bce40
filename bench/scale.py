"""Organisation-scale benchmarks at the deployed budget (`RAMFLOW_RATE_LIMIT_QPS` = 20): each result
is a ratio taken in one run. A plain script, not a test: numbers go to bench/README.md.

    .venv/bin/python -m bench.scale [--reconcile-users 200 400] [--layoff-users 60] [--workers 1 5 10]

- **reconcile**: a full drift sweep of N managed users (a key, a policy and a group each, made
  straight in the emulator's state, ledger records in the store), 20 ms per call, the emulator
  limiting the account to 20 calls/s. Wall time against the budget-bound (calls ÷ 20/s), and the
  calls per user; extrapolated to 1,000 and 5,000 users against the 15-minute interval.
- **layoff**: N one-user `user.offboarded` events queued in Redis and taken by K worker processes
  (each runs the `user-offboarded` handler; an event the handler hands back is queued again, as FC
  retries an asynchronous invocation), sharing one Redis store and one emulator limited to 20
  calls/s. Events ending `partial`; useful calls (answered, not throttled) ÷ (limit × wall); the
  time until the last user has no way in (login profile gone, keys inactive or deleted) against
  the bound (those disable calls ÷ 20/s).
- **one user** at the deployed budget: a rich leaver (25 calls in 6 dependency levels) at
  `max_concurrency` 1, 8 and 16: wall ÷ the dependency-level bound (6 × 20 ms) and ÷ sequential.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import time
import uuid
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import redis

from bench.offboarding import Bench
from local.emulator.core import DEFAULT_ROOT_KEY_ID, DEFAULT_ROOT_KEY_SECRET, Emulator
from local.emulator.server import EmulatorServer
from shared.cloud.ratelimit import BURST_SECONDS
from shared.flows.reconcile import reconcile
from shared.runtime import Runtime
from shared.store import StateStore, UserRecord

QPS = 20.0
LATENCY_MS = 20.0
INTERVAL = 900.0
REPO = Path(__file__).resolve().parents[1]
EVENT = json.loads((REPO / "events" / "user-offboarded.json").read_text())


def seed_user(emulator: Emulator, name: str, owner: str) -> None:
    """Made straight in the emulator's state (the setup is not measured): key, policy, group."""
    ram = emulator.account.ram
    if "staff" not in ram.groups:
        ram.create_group("staff")
    ram.create_user(name)
    ram.users[name].tags.update({"managed-by": "ramflow", "owner": owner, "ticket": "T-bench"})
    ram.create_access_key(name)
    ram.attach_policy("User", name, "System", "AliyunKafkaReadOnlyAccess")
    ram.add_user_to_group(name, "staff")


# --- reconcile --------------------------------------------------------------------------------------
def reconcile_sweep(store_url: str, users: int) -> dict[str, float]:
    with EmulatorServer(Emulator()) as server:
        emulator = server.emulator
        store = StateStore.from_url(store_url)
        for index in range(users):
            name = f"r{index:05d}"
            seed_user(emulator, name, "team@example.com")
            store.ledger.save_user(
                UserRecord(user_name=name, owner="team@example.com", access_mode="programmatic")
            )
        bench = Bench(server, store)
        rt = bench.runtime(rate_limit_qps=QPS, max_concurrency=8)
        emulator.faults.set_qps(QPS, start_full=True)
        emulator.faults.latency_ms = LATENCY_MS
        seq = emulator.recorder.last_seq
        started = time.perf_counter()
        report = reconcile(rt, actor="bench")
        wall = time.perf_counter() - started
        calls = emulator.recorder.since(seq)
        store.close()
    actions = Counter(c.action for c in calls)
    per_user = sum(
        actions[a] for a in ("ListAccessKeys", "ListPoliciesForUser", "ListGroupsForUser", "GetLoginProfile")
    )
    sweep = report.sweep or {}
    return {
        "users": users,
        "calls": len(calls),
        "per_user": per_user / users,
        "bulk": len(calls) - per_user,
        "throttled": sum(1 for c in calls if c.outcome.startswith("Throttling")),
        "wall": wall,
        "bound": len(calls) / QPS,
        "checked": sweep.get("checked", 0),
    }


def reconcile_bench(store_url: str, sizes: list[int]) -> None:
    print(f"\nreconcile sweep, {QPS:g} calls/s budget and emulator limit, {LATENCY_MS:g} ms per call")
    print(
        f"{'users':>6} {'calls':>6} {'per user':>9} {'bulk':>5} {'wall s':>7} {'bound s':>8} {'wall/bound':>10} {'throttled':>9}"
    )
    rows = [reconcile_sweep(store_url, n) for n in sizes]
    for r in rows:
        print(
            f"{r['users']:>6.0f} {r['calls']:>6.0f} {r['per_user']:>9.2f} {r['bulk']:>5.0f} {r['wall']:>7.1f} "
            f"{r['bound']:>8.1f} {r['wall'] / r['bound']:>10.3f} {r['throttled']:>9.0f}"
        )
    ratio = max(r["wall"] / r["bound"] for r in rows)
    per_user = max(r["per_user"] for r in rows)
    bulk_per_user = max(r["bulk"] / r["users"] for r in rows)
    print(
        "extrapolated (calls = users × (per-user + bulk per user), wall = bound × the worst wall/bound above):"
    )
    for users in (1000, 5000):
        calls = users * (per_user + bulk_per_user)
        bound = calls / QPS
        print(
            f"  {users:>5} users: {calls:>7.0f} calls, bound {bound:>6.0f} s, wall ≈ {bound * ratio:>6.0f} s "
            f"= {bound * ratio / INTERVAL:.2f} × the {INTERVAL:.0f} s interval"
        )


# --- the layoff: K worker processes, one Redis, one emulator -------------------------------------
def worker(endpoint: str, store_url: str, queue: str, results: str) -> None:
    """Takes events off the queue and runs the user-offboarded handler, as FC would invoke it."""
    os.environ.update(
        {
            "RAMFLOW_CLOUD_ENDPOINT": endpoint,
            "RAMFLOW_STORE": store_url,
            "RAMFLOW_RATE_LIMIT_QPS": str(QPS),
            "ALIBABA_CLOUD_ACCESS_KEY_ID": DEFAULT_ROOT_KEY_ID,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": DEFAULT_ROOT_KEY_SECRET,
            "RAMFLOW_ACCOUNT_ALIAS": "ramflow-demo",
            "RAMFLOW_ALLOW_UNSCOPED_USERS": "true",  # the seeded users carry no managed-user prefix
        }
    )
    import logging

    logging.disable(logging.CRITICAL)
    from local.invoke import invoke
    from shared.handler import FlowFailed
    from shared.runtime import Runtime

    client = redis.Redis.from_url(store_url.split("?")[0], decode_responses=True)

    class AsyncQueue:
        """FC's asynchronous invocation queue, as the job's units see it: the same Redis list."""

        def invoke(self, function: str, payload: bytes, *, asynchronous: bool = False) -> None:
            client.rpush(queue, payload.decode())

    queued = AsyncQueue()
    Runtime.functions = property(lambda self: queued)  # type: ignore[assignment,method-assign]
    while True:
        item = client.blpop([queue], timeout=1)
        if item is None:
            if client.get(queue + ":done"):
                return
            continue
        raw = item[1]
        body = raw.encode() if isinstance(raw, str) else raw
        event_id = json.loads(body)["id"]
        try:
            reply = invoke("user-offboarded", body)
            client.hset(results, event_id, reply["status"])
        except FlowFailed as exc:  # handed back: FC retries the asynchronous invocation
            client.hincrby(results + ":retries", exc.result.status, 1)
            client.rpush(queue, raw)


def layoff(redis_url: str, users: int, workers: int, shape: str = "events") -> dict[str, float]:
    """`events`: one HR event per user. `job`: one owner with every user, one HR event, which the
    first worker turns into a job whose per-user units go through the same queue (FC's asynchronous
    invocations), taken by whichever worker is free."""
    namespace = f"bench-scale:{uuid.uuid4().hex[:8]}:"
    store_url = f"{redis_url}?namespace={namespace}"
    queue, results = namespace + "queue", namespace + "results"
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    names = [f"l{index:04d}" for index in range(users)]
    store = StateStore.from_url(store_url)
    with EmulatorServer(Emulator()) as server:
        emulator = server.emulator
        for name in names:
            seed_user(emulator, name, "layoff@example.com" if shape == "job" else f"{name}@example.com")
        emulator.faults.set_qps(QPS, start_full=True)
        emulator.faults.latency_ms = LATENCY_MS
        if shape == "job":
            event = dict(EVENT, id=f"layoff-{namespace}job")
            event["data"] = {"owner": "layoff@example.com", "hr_event_id": "WD-LAYOFF", "grace": "P0D"}
            client.rpush(queue, json.dumps(event))
        for index, name in enumerate(names if shape == "events" else []):
            event = dict(EVENT, id=f"layoff-{namespace}{index}")
            event["data"] = {"user_name": name, "hr_event_id": "WD-LAYOFF", "grace": "P0D"}
            client.rpush(queue, json.dumps(event))
        context = multiprocessing.get_context("spawn")
        procs = [
            context.Process(target=worker, args=(server.endpoint, store_url, queue, results))
            for _ in range(workers)
        ]
        for proc in procs:
            proc.start()
        # the clock starts when the first call arrives (the workers' start-up is not measured)
        while emulator.recorder.last_seq == 0:
            time.sleep(0.01)
        started = emulator.recorder.calls[0].started
        while not finished(client, results, store, users, shape):
            time.sleep(0.2)
        client.set(queue + ":done", "1")
        for proc in procs:
            proc.join()
        calls = list(emulator.recorder.calls)
    statuses = Counter(client.hvals(results))
    retries = client.hgetall(results + ":retries")
    store.close()
    for key in client.scan_iter(match=namespace + "*"):
        client.delete(key)
    wall = max(c.started for c in calls) - started
    ok = [c for c in calls if not c.outcome.startswith("Throttling")]
    disable = [c for c in calls if c.action in ("DeleteLoginProfile", "UpdateAccessKey", "DeleteAccessKey")]
    no_way_in = max(c.started for c in disable) - started
    return {
        "workers": workers,
        "users": users,
        "events": users if shape == "events" else 1,
        "completed": statuses.get("completed", 0),
        "partial": statuses.get("partial", 0),
        "handed_back": sum(int(v) for v in retries.values()),
        "calls": len(calls),
        "throttled": len(calls) - len(ok),
        "wall": wall,
        "useful": len(ok) / (QPS * wall),
        "no_way_in": no_way_in,
        "disable_bound": len(disable) / QPS,
    }


def finished(client: redis.Redis, results: str, store: StateStore, users: int, shape: str) -> bool:
    if shape == "events":
        return int(client.hlen(results)) >= users
    jobs = store.jobs.all()
    return bool(jobs) and all(job.wave == "finished" for job in jobs)


def layoff_bench(redis_url: str, users: int, worker_counts: list[int], shape: str = "events") -> None:
    what = (
        f"{users} one-user events"
        if shape == "events"
        else f"one owner with {users} users, as a job of units"
    )
    print(f"\nlayoff: {what}, {QPS:g} calls/s account limit, {LATENCY_MS:g} ms per call")
    print(
        f"{'K':>3} {'completed':>9} {'partial':>7} {'handed back':>11} {'calls':>6} {'throttled':>9} {'wall s':>7} "
        f"{'useful/limit':>12} {'no way in s':>11} {'bound s':>7} {'ratio':>6}"
    )
    for k in worker_counts:
        r = layoff(redis_url, users, k, shape)
        print(
            f"{k:>3} {r['completed']:>9.0f} {r['partial']:>7.0f} {r['handed_back']:>11.0f} {r['calls']:>6.0f} "
            f"{r['throttled']:>9.0f} {r['wall']:>7.1f} {r['useful']:>12.3f} {r['no_way_in']:>11.1f} "
            f"{r['disable_bound']:>7.1f} {r['no_way_in'] / r['disable_bound']:>6.2f}"
        )
    print(
        f"  extrapolated to 500 events: wall and time to no way in scale with the calls (budget-bound): × {500 / users:.1f}"
    )


# --- one user at the deployed budget ---------------------------------------------------------------
def one_user(runs: int) -> None:
    from bench.offboarding import DEPTH, offboard_one

    print(f"\none leaver at the deployed budget ({QPS:g} calls/s), {LATENCY_MS:g} ms per call")
    bound = DEPTH * LATENCY_MS / 1000
    with EmulatorServer(Emulator()) as server:
        bench = Bench(server, StateStore.from_url("memory://"))
        original = bench.runtime

        def at_budget(**settings: object) -> Runtime:
            return original(**{**settings, "rate_limit_qps": QPS})

        bench.runtime = at_budget  # type: ignore[method-assign]
        medians: dict[int, float] = {}
        print(
            f"{'max_concurrency':>16} {'calls':>6} {'median ms':>10} {'x level bound':>14} {'x sequential':>13}"
        )
        for concurrency in (1, 8, 16):
            samples = []
            for _ in range(runs):
                time.sleep(1.0)  # a quiet second: every run starts with the budget's burst
                samples.append(offboard_one(bench, LATENCY_MS, concurrency))
            medians[concurrency] = statistics.median(t for t, _ in samples)
            calls = samples[0][1]
            budget_bound = max(bound, (calls - QPS * BURST_SECONDS) / QPS)
            print(
                f"{concurrency:>16} {calls:>6} {medians[concurrency] * 1000:>10.0f} "
                f"{medians[concurrency] / bound:>14.2f} {medians[concurrency] / budget_bound:>15.2f} "
                f"{medians[concurrency] / medians[1]:>13.2f}"
            )
        print(
            f"  level bound {DEPTH} × {LATENCY_MS:g} ms = {bound * 1000:.0f} ms; budget bound: the calls beyond "
            f"the {QPS * BURST_SECONDS:g}-call burst at {QPS:g}/s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reconcile-users", type=int, nargs="+", default=[200, 400])
    parser.add_argument("--layoff-users", type=int, default=60)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 5, 10])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--redis", default=os.environ.get("RAMFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    )
    parser.add_argument("--only", choices=["reconcile", "layoff", "job", "one"], action="append")
    args = parser.parse_args()
    only = set(args.only or ["reconcile", "layoff", "job", "one"])
    print(
        f"scale benchmark, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, load average {os.getloadavg()[0]:.1f}"
    )
    if "one" in only:
        one_user(args.runs)
    if "reconcile" in only:
        reconcile_bench(f"{args.redis}?namespace=bench-scale:{uuid.uuid4().hex[:8]}:", args.reconcile_users)
    if "layoff" in only:
        layoff_bench(args.redis, args.layoff_users, args.workers)
    if "job" in only:
        layoff_bench(args.redis, args.layoff_users, args.workers, shape="job")


if __name__ == "__main__":
    main()
