"""Offboarding benchmarks: how close one leaver's offboarding comes to its dependency-depth lower
bound, against one-call-at-a-time; and bulk throughput as a fraction of the account's QPS limit.
A plain script, not a test: numbers go to bench/README.md.

    .venv/bin/python -m bench.offboarding [--latency-ms 50] [--runs 5] [--users 100] [--qps 100]

One leaver: a user holding 2 AccessKeys, a login profile, a bound MFA device, 3 groups, system and
custom policies at account scope and a resource-group grant — offboarded by owner (the HR event),
with `--latency-ms` added to every cloud call by the emulator. Its calls form 6 dependency levels:
find the owner's users (ListTagResources, then ListUsers), read what each holds, disable/detach/
leave, delete the user and its MFA device (and see who uses the custom policy), delete the policy.
No schedule can finish in less than 6 × latency.

Bulk: `--users` managed users of one owner, the emulator refusing more than `--qps` calls per
second (`Throttling.User`), ramflow's shared rate limiter set to the same rate.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from local.emulator.core import DEFAULT_ROOT_KEY_ID, DEFAULT_ROOT_KEY_SECRET, Emulator
from local.emulator.server import EmulatorServer
from shared.cloud.clients import CloudCredentials
from shared.cloud.ratelimit import limiters
from shared.config import Settings
from shared.flows.offboard import run_offboarding
from shared.models.events import UserOffboarded
from shared.runtime import Runtime
from shared.store import GrantRecord, StateStore, TicketRecord, UserRecord

ROOT = CloudCredentials(DEFAULT_ROOT_KEY_ID, DEFAULT_ROOT_KEY_SECRET)
DEPTH = 6
CUSTOM = "ramflow-kafka-instance-readonly-0123456789ab"
DOCUMENT = '{"Version":"1","Statement":[{"Effect":"Allow","Action":"alikafka:ListTopic","Resource":"*"}]}'


@dataclass
class Bench:
    server: EmulatorServer
    store: StateStore
    serial: int = 0

    @property
    def emulator(self) -> Emulator:
        return self.server.emulator

    def runtime(self, **settings: object) -> Runtime:
        base = Settings(cloud_endpoint=self.server.endpoint, store="memory://", rate_limit_qps=1000.0)
        return Runtime(base.model_copy(update=settings), ROOT, self.store)

    def rich_user(self, owner: str) -> str:
        """Made straight in the emulator's state and the ledger: the setup is not measured."""
        self.serial += 1
        ram, rm = self.emulator.account.ram, self.emulator.account.resource_manager
        name = f"leaver{self.serial}"
        ram.create_user(name)
        ram.users[name].tags.update({"managed-by": "ramflow", "owner": owner, "ticket": f"T-{self.serial}"})
        ram.create_access_key(name)
        ram.create_access_key(name)  # "by hand"
        ram.create_login_profile(
            name, "Bench-Passw0rd!x", password_reset_required=True, mfa_bind_required=True
        )
        device = ram.create_virtual_mfa_device(f"{name}-phone")
        ram.bind_mfa_device(name, device.serial_number, "123456", "654321")
        for group in ("g1", "g2", "g3"):
            if group not in ram.groups:
                ram.create_group(group)
            ram.add_user_to_group(name, group)
        if CUSTOM not in ram.policies["Custom"]:
            ram.create_policy(CUSTOM, DOCUMENT)
        group_id = rm.create_resource_group(f"rg{self.serial}", f"rg{self.serial}", time.time()).id
        ram.attach_policy("User", name, "System", "AliyunKafkaReadOnlyAccess")
        ram.attach_policy("User", name, "System", "ReadOnlyAccess")
        ram.attach_policy("User", name, "Custom", CUSTOM)
        ram.attach_policy("User", name, "System", "AliyunKafkaFullAccess", group_id)
        grants = [
            GrantRecord.plan(
                ticket_id=f"T-{self.serial}",
                user_name=name,
                policy_name=CUSTOM,
                policy_type="Custom",
                created_by_ramflow=True,
            )
        ]
        self.store.ledger.save_ticket(
            TicketRecord(
                ticket_id=f"T-{self.serial}",
                requester="r@example.com",
                user_name=name,
                owner=owner,
                access_mode="programmatic",
                request={},
                grants=grants,
                status="completed",
            )
        )
        self.store.ledger.save_user(UserRecord(user_name=name, owner=owner, access_mode="programmatic"))
        return name

    def plain_user(self, owner: str, index: int) -> None:
        ram = self.emulator.account.ram
        name = f"bulk{index:04d}"
        ram.create_user(name)
        ram.users[name].tags.update({"managed-by": "ramflow", "owner": owner, "ticket": "T-bulk"})
        ram.create_access_key(name)
        ram.attach_policy("User", name, "System", "AliyunKafkaReadOnlyAccess")
        if "staff" not in ram.groups:
            ram.create_group("staff")
        ram.add_user_to_group(name, "staff")


def offboard_one(bench: Bench, latency_ms: float, max_concurrency: int) -> tuple[float, int]:
    owner = f"o{bench.serial + 1}@example.com"
    name = bench.rich_user(owner)
    rt = bench.runtime(max_concurrency=max_concurrency)
    bench.emulator.faults.latency_ms = latency_ms
    started = time.perf_counter()
    report = run_offboarding(rt, UserOffboarded(owner=owner, hr_event_id="WD-BENCH"), actor="bench")
    elapsed = time.perf_counter() - started
    bench.emulator.faults.latency_ms = 0.0
    assert report.users[name].state == "deleted" and not report.journal.errors, report.journal.errors
    assert name not in bench.emulator.account.ram.users
    return elapsed, rt.cloud.stats.snapshot()["calls"]


def single(bench: Bench, latency_ms: float, runs: int, concurrencies: list[int]) -> None:
    bound = DEPTH * latency_ms / 1000
    print(
        f"\none leaver, {latency_ms:g} ms per call; lower bound {DEPTH} levels x {latency_ms:g} ms = {bound * 1000:.0f} ms"
    )
    print(
        f"{'max_concurrency':>16} {'calls':>6} {'median ms':>10} {'min ms':>8} {'x bound':>8} {'x sequential':>13}"
    )
    medians: dict[int, float] = {}
    rows = []
    for concurrency in [1, *concurrencies]:
        samples = [offboard_one(bench, latency_ms, concurrency) for _ in range(runs)]
        times = [t for t, _ in samples]
        medians[concurrency] = statistics.median(times)
        rows.append((concurrency, samples[0][1], medians[concurrency], min(times)))
    for concurrency, calls, median, fastest in rows:
        print(
            f"{concurrency if concurrency > 1 else '1 (sequential)':>16} {calls:>6} {median * 1000:>10.0f} "
            f"{fastest * 1000:>8.0f} {median / bound:>8.2f} {median / medians[1]:>13.2f}"
        )


def bulk(bench: Bench, users: int, qps: float, latency_ms: float, max_concurrency: int) -> None:
    owner = "team@example.com"
    for index in range(users):
        bench.plain_user(owner, index)
    limiters.clear()
    rt = bench.runtime(rate_limit_qps=qps, max_concurrency=max_concurrency)
    faults = bench.emulator.faults
    faults.set_qps(qps, start_full=False)  # no burst to start with
    faults.latency_ms = latency_ms
    seq = bench.emulator.recorder.last_seq
    started = time.perf_counter()
    report = run_offboarding(rt, UserOffboarded(owner=owner, hr_event_id="WD-BULK"), actor="bench")
    elapsed = time.perf_counter() - started
    faults.clear()
    stats = rt.cloud.stats.snapshot()
    answered = bench.emulator.recorder.since(seq)
    deleted = sum(1 for o in report.users.values() if o.state == "deleted")
    rate = len(answered) / elapsed
    print(
        f"\nbulk: {users} users, emulator limit {qps:g} calls/s, {latency_ms:g} ms per call, "
        f"max_concurrency {max_concurrency}"
    )
    print(
        f"  {deleted}/{users} deleted, {len(report.journal.errors)} errors; {len(answered)} calls answered in "
        f"{elapsed:.2f} s = {rate:.1f}/s = {rate / qps:.1%} of the limit; "
        f"{stats['throttled']} throttled, {stats['retries']} retries"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--qps", type=float, default=100.0)
    parser.add_argument("--bulk-latency-ms", type=float, default=20.0)
    parser.add_argument("--bulk-concurrency", type=int, default=8)
    args = parser.parse_args()
    print(f"offboarding benchmark, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")
    with tempfile.TemporaryDirectory() as tmp, EmulatorServer(Emulator()) as server:
        bench = Bench(server, StateStore.from_url(f"sqlite:///{tmp}/state.db"))
        single(bench, args.latency_ms, args.runs, args.concurrency)
        bulk(bench, args.users, args.qps, args.bulk_latency_ms, args.bulk_concurrency)


if __name__ == "__main__":
    main()
