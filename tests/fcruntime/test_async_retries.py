"""FC's asynchronous-invocation semantics in the local runtime: s.yaml's `asyncInvokeConfig` retries
a failed attempt under the same request id, then parks the event in the failed-events queue, which
lists it (never its payload) and replays it by request id; a synchronous invocation is never retried."""

from __future__ import annotations

import json
import logging
import os
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import fc2
import pytest
import requests
from fc2.fc_exceptions import FcError
from typer.testing import CliRunner

from local.cli import app
from local.emulator.core import DEFAULT_ROOT_KEY_ID, DEFAULT_ROOT_KEY_SECRET
from local.fcruntime.asyncinvoke import JOURNAL_NAME, RETRY_SECONDS_ENV, retry_seconds_from
from local.fcruntime.runtime import CREDENTIAL_ENV, DEFAULT_FUNCTIONS_DIR, DEFAULT_S_YAML, FcRuntime
from local.fcruntime.signing import StaticKeys
from local.fcruntime.spec import load_functions
from local.testing import ROOT_CREDENTIALS
from shared.cloud.fc import FcGateway
from shared.cloud.ratelimit import TokenBucket
from shared.cloud.retry import CloudRunner
from shared.config import Settings
from shared.errors import ConfigError
from shared.fc import FcCredentials

BACKOFF = 0.05  # the first retry's wait; then 0.1 s, 0.2 s
MARKER = "sealed-box-ciphertext-that-must-stay-out-of-logs"

S_YAML = """
edition: 3.0.0
name: retry-project
vars:
  async: &async
    maxAsyncEventAgeInSeconds: 60
    maxAsyncRetryAttempts: 3
    destinationConfig:
      onFailure:
        destination: acs:mns:cn-hangzhou:${config('AccountID')}:/queues/ramflow-failed-events/messages
resources:
  flaky:
    component: fc3
    props: {functionName: flaky, runtime: python3.12, code: ./build/flaky, handler: index.handler, timeout: 5,
            asyncInvokeConfig: *async}
  broken:
    component: fc3
    props: {functionName: broken, runtime: python3.12, code: ./build/broken, handler: index.handler, timeout: 5,
            asyncInvokeConfig: *async}
  fragile:
    component: fc3
    props: {functionName: fragile, runtime: python3.12, code: ./build/fragile, handler: index.handler, timeout: 5,
            asyncInvokeConfig: {maxAsyncRetryAttempts: 0}}
  slow:
    component: fc3
    props: {functionName: slow, runtime: python3.12, code: ./build/slow, handler: index.handler, timeout: 1,
            asyncInvokeConfig: {maxAsyncRetryAttempts: 1}}
"""

# Both record every attempt: (request id, payload, when). flaky fails the first two attempts of a request.
FLAKY = """
import time

attempts = []


def handler(event, context):
    attempts.append((context.request_id, event, time.monotonic()))
    if sum(1 for rid, _, _ in attempts if rid == context.request_id) <= 2:
        raise RuntimeError("not yet")
    return "done"
"""

BROKEN = """
import time

attempts = []
healed = False


def handler(event, context):
    attempts.append((context.request_id, event, time.monotonic()))
    if not healed:
        raise ValueError("still broken")
    return "mended"
"""

# Its first attempt outlives the 1 s timeout by 0.25 s; it records how many of its attempts ran at once.
SLOW = """
import threading
import time

attempts = []
ended = []
running = 0
peak = 0
_lock = threading.Lock()


def handler(event, context):
    global running, peak
    with _lock:
        running += 1
        peak = max(peak, running)
        attempts.append((context.request_id, event, time.monotonic()))
        first = len(attempts) == 1
    try:
        if first:
            time.sleep(1.25)
        return "done"
    finally:
        with _lock:
            running -= 1
            ended.append(time.monotonic())
"""


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "s.yaml").write_text(S_YAML)
    functions = tmp_path / "functions"
    for folder, code in {"flaky": FLAKY, "broken": BROKEN, "fragile": BROKEN, "slow": SLOW}.items():
        (functions / folder).mkdir(parents=True)
        (functions / folder / "index.py").write_text(textwrap.dedent(code))
    return tmp_path / "s.yaml", functions


def start_runtime(project: tuple[Path, Path], workdir: Path, **options: Any) -> FcRuntime:
    s_yaml, functions = project
    return FcRuntime(
        keys=StaticKeys({DEFAULT_ROOT_KEY_ID: DEFAULT_ROOT_KEY_SECRET}, "5123456789012345"),
        s_yaml=s_yaml,
        functions_dir=functions,
        workdir=workdir,
        **{"async_retry_seconds": BACKOFF, **options},
    ).start()


@pytest.fixture
def runtime(project: tuple[Path, Path], tmp_path: Path) -> Iterator[FcRuntime]:
    served = start_runtime(project, tmp_path)
    try:
        yield served
    finally:
        served.stop()


def attempts(runtime: FcRuntime, function: str) -> list[tuple[str, bytes, float]]:
    instance = runtime.instance(function)
    assert instance is not None
    return list(instance.module.attempts)


def eventually(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll `check` until it holds or the deadline passes."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def invoke_async(runtime: FcRuntime, function: str, payload: bytes) -> str:
    client = fc2.Client(
        endpoint=runtime.endpoint, accessKeyID=DEFAULT_ROOT_KEY_ID, accessKeySecret=DEFAULT_ROOT_KEY_SECRET
    )
    reply = client.invoke_function(
        "ramflow", function, payload=payload, headers={"x-fc-invocation-type": "Async"}
    )
    assert reply.data in (b"", ""), "async: 202 and no body"
    return str(reply.headers["X-Fc-Request-Id"])


def failed_events(runtime: FcRuntime) -> list[dict[str, Any]]:
    reply = requests.get(f"{runtime.endpoint}/fcruntime-api/failed-events", timeout=10)
    assert reply.status_code == 200, reply.text
    return list(reply.json()["failed_events"])


def journal(workdir: Path) -> list[dict[str, Any]]:
    path = workdir / JOURNAL_NAME
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_an_async_invocation_that_fails_twice_is_retried_under_its_request_id_and_completes_once(
    runtime: FcRuntime,
) -> None:
    """Through the FC 3.0 SDK, as user-offboarded hands on its units: 202 at once, then attempts
    after 0.05 s and 0.1 s (doubling), the third succeeds, and nothing is parked."""
    gateway = FcGateway(
        Settings(fc_endpoint=runtime.endpoint), ROOT_CREDENTIALS, CloudRunner(TokenBucket(100))
    )
    accepted = gateway.invoke("flaky", b'{"unit": 1}', asynchronous=True)
    assert accepted.error_type is None and accepted.payload == b""

    assert eventually(lambda: len(attempts(runtime, "flaky")) >= 3), attempts(runtime, "flaky")
    assert runtime.async_invocations.wait_settled(5)
    tried = attempts(runtime, "flaky")
    assert len(tried) == 3  # two failures, one success, no fourth
    assert len({rid for rid, _, _ in tried}) == 1  # one request id for every attempt
    assert all(event == b'{"unit": 1}' for _, event, _ in tried)
    first, second, third = (when for _, _, when in tried)
    assert second - first >= BACKOFF * 0.9 and third - second >= 2 * BACKOFF * 0.9
    assert runtime.async_invocations.parked() == [] and failed_events(runtime) == []


def test_an_async_invocation_that_always_fails_is_tried_1_plus_max_retries_times_then_parked(
    runtime: FcRuntime, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    payload = json.dumps({"sealed": MARKER}).encode()
    request_id = invoke_async(runtime, "broken", payload)

    assert eventually(lambda: bool(runtime.async_invocations.parked())), attempts(runtime, "broken")
    assert [rid for rid, _, _ in attempts(runtime, "broken")] == [request_id] * 4  # 1 + maxAsyncRetryAttempts
    listed = failed_events(runtime)
    assert len(listed) == 1
    parked = listed[0]
    assert {k: parked[k] for k in ("function", "request_id", "attempts", "error_type", "reason")} == {
        "function": "broken",
        "request_id": request_id,
        "attempts": 4,
        "error_type": "ValueError",
        "reason": "retries-exhausted",
    }
    assert parked["destination"] == "ramflow-failed-events"  # s.yaml's onFailure queue
    assert parked["payload_bytes"] == len(payload)
    lines = journal(tmp_path)
    assert [(line["state"], line["request_id"], line["attempts"]) for line in lines] == [
        ("parked", request_id, 4)
    ]
    # the payload is in no listing, journal line or log record
    assert MARKER not in json.dumps(listed) and MARKER not in (tmp_path / JOURNAL_NAME).read_text()
    assert MARKER not in caplog.text and f"{request_id} parked" in caplog.text


def test_max_async_retry_attempts_0_parks_the_event_after_its_first_failure(runtime: FcRuntime) -> None:
    request_id = invoke_async(runtime, "fragile", b"{}")
    assert eventually(lambda: bool(runtime.async_invocations.parked()))
    assert [rid for rid, _, _ in attempts(runtime, "fragile")] == [request_id]
    (parked,) = failed_events(runtime)
    assert (parked["function"], parked["attempts"], parked["destination"]) == ("fragile", 1, None)


def test_a_parked_event_is_replayed_by_request_id_with_its_payload(
    runtime: FcRuntime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = b'{"id": "evt-7"}'
    request_id = invoke_async(runtime, "broken", payload)
    assert eventually(lambda: bool(runtime.async_invocations.parked()))
    replay = f"{runtime.endpoint}/fcruntime-api/failed-events/{request_id}/replay"

    unknown = requests.post(f"{runtime.endpoint}/fcruntime-api/failed-events/nope/replay", timeout=10)
    assert unknown.status_code == 404 and unknown.json()["Code"] == "FailedEventNotFound"
    assert requests.get(replay, timeout=10).status_code == 405

    still = requests.post(replay, timeout=10).json()  # the cause is not fixed yet: it stays parked
    assert (still["status"], still["parked"], still["attempts"], still["error_type"]) == (
        "failed",
        True,
        5,
        "ValueError",
    )
    assert [e["request_id"] for e in failed_events(runtime)] == [request_id]

    instance = runtime.instance("broken")
    assert instance is not None
    monkeypatch.setattr(instance.module, "healed", True)  # the cause fixed
    done = requests.post(replay, timeout=10).json()
    assert done["status"] == "completed" and done["parked"] is False and done["function"] == "broken"
    assert failed_events(runtime) == []
    assert requests.post(replay, timeout=10).status_code == 404  # replayed once only

    tried = attempts(runtime, "broken")
    assert len(tried) == 6 and all(event == payload for _, event, _ in tried)
    assert tried[-1][0] == done["replay_request_id"] != request_id  # a replay is a new invocation
    assert [line["state"] for line in journal(tmp_path)] == ["parked", "replay-failed", "replayed"]


def test_a_synchronous_invocation_is_never_retried(runtime: FcRuntime) -> None:
    """The same failing function and payload: synchronously one attempt and the error to the caller;
    asynchronously (run meanwhile, through its whole retry schedule) four attempts and parked."""
    client = fc2.Client(
        endpoint=runtime.endpoint, accessKeyID=DEFAULT_ROOT_KEY_ID, accessKeySecret=DEFAULT_ROOT_KEY_SECRET
    )
    with pytest.raises(FcError) as caught:
        client.invoke_function("ramflow", "broken", payload=b"{}")
    assert json.loads(caught.value.message)["errorType"] == "ValueError"
    sync_id = attempts(runtime, "broken")[0][0]

    async_id = invoke_async(runtime, "broken", b"{}")
    assert eventually(lambda: bool(runtime.async_invocations.parked()))
    assert runtime.async_invocations.wait_settled(5)
    tried = [rid for rid, _, _ in attempts(runtime, "broken")]
    assert tried.count(sync_id) == 1 and tried.count(async_id) == 4
    assert [e.request_id for e in runtime.async_invocations.parked()] == [async_id]


def test_an_event_older_than_max_async_event_age_is_parked_instead_of_retried(
    project: tuple[Path, Path], tmp_path: Path
) -> None:
    """maxAsyncEventAgeInSeconds (60 here): the event's clock reads 0 when accepted, 61 at its retry."""
    readings = iter([0.0])
    served = start_runtime(project, tmp_path, clock=lambda: next(readings, 61.0))
    try:
        request_id = invoke_async(served, "broken", b"{}")
        assert eventually(lambda: bool(served.async_invocations.parked()))
        assert [rid for rid, _, _ in attempts(served, "broken")] == [request_id]
        (parked,) = failed_events(served)
        assert (parked["attempts"], parked["reason"]) == (1, "max-event-age")
    finally:
        served.stop()


def test_stopping_the_runtime_drops_the_retries_it_was_waiting_for(
    project: tuple[Path, Path], tmp_path: Path
) -> None:
    served = start_runtime(project, tmp_path, async_retry_seconds=30.0)
    try:
        invoke_async(served, "broken", b"{}")
        assert eventually(lambda: len(attempts(served, "broken")) == 1)
    finally:
        served.stop()
    assert served.async_invocations.wait_settled(5)  # not 30 s later
    assert len(attempts(served, "broken")) == 1 and served.async_invocations.parked() == []


def test_a_retry_after_a_timeout_starts_only_once_the_timed_out_attempt_has_ended(runtime: FcRuntime) -> None:
    """FC kills an instance that timed out; a thread cannot be killed, so the retry waits for it to
    end: two attempts of one event (one request id, the idempotency owner) never run at once."""
    request_id = invoke_async(runtime, "slow", b"{}")
    assert eventually(lambda: len(attempts(runtime, "slow")) == 2)
    assert runtime.async_invocations.wait_settled(5)
    instance = runtime.instance("slow")
    assert instance is not None
    module = instance.module
    assert module.peak == 1
    (first, _, _), (retry, _, retried_at) = module.attempts
    assert first == retry == request_id
    assert retried_at >= module.ended[0]  # the retry began after the timed-out attempt ended
    assert runtime.async_invocations.parked() == []  # the retry succeeded


SESSION = FcCredentials("LTAI-local-test-key", "local-test-secret", "local-test-token")


class GatedCredentials:
    """One session for every function; once `armed`, the next get() waits for `release`."""

    def __init__(self) -> None:
        self.armed = False
        self.entered = threading.Event()
        self.release = threading.Event()

    def get(self) -> FcCredentials | None:
        if self.armed:
            self.armed = False
            self.entered.set()
            self.release.wait(5)
        return SESSION


@pytest.fixture
def clean_credential_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in CREDENTIAL_ENV:
        monkeypatch.delenv(key, raising=False)


def credential_env_left() -> list[str]:
    """The names (never the values) of the credential variables in the process environment."""
    return [key for key in CREDENTIAL_ENV if key in os.environ]


@pytest.mark.usefixtures("clean_credential_env")
def test_a_stopped_runtime_refuses_to_invoke_and_leaves_no_credentials_in_the_environment(
    project: tuple[Path, Path], tmp_path: Path
) -> None:
    served = start_runtime(project, tmp_path, credentials=GatedCredentials())
    assert credential_env_left() == list(CREDENTIAL_ENV)  # python3.12 reads its session there
    served.stop()
    assert credential_env_left() == []
    with pytest.raises(RuntimeError, match="stopped"):
        served.invoke("flaky", b"{}")
    assert credential_env_left() == []


@pytest.mark.usefixtures("clean_credential_env")
@pytest.mark.parametrize(
    ("grace", "tried"),
    [
        (5.0, 2),  # stop waits for the retry, which runs, then restores the environment
        (0.1, 1),  # stop waits 0.1 s only: the retry, released later, is refused before it sets anything
    ],
)
def test_an_async_retry_under_way_when_the_runtime_stops_leaves_no_credentials_in_the_environment(
    project: tuple[Path, Path], tmp_path: Path, grace: float, tried: int
) -> None:
    """The retry is past its wait, fetching its session (for 0.6 s), when stop() comes: the session
    never reaches the environment after stop() restored it."""
    gate = GatedCredentials()
    served = start_runtime(
        project, tmp_path, credentials=gate, async_retry_seconds=0.2, stop_grace_seconds=grace
    )
    release = threading.Timer(0.6, gate.release.set)
    try:
        invoke_async(served, "broken", b"{}")
        assert eventually(lambda: len(attempts(served, "broken")) == 1)
        gate.armed = True
        assert gate.entered.wait(5)  # the retry has begun
    finally:
        release.start()
        served.stop()
    release.join()
    assert served.async_invocations.wait_settled(5)
    assert credential_env_left() == []
    assert len(attempts(served, "broken")) == tried
    assert served.async_invocations.parked() == []  # a stopped runtime drops the event


def test_an_event_the_runtime_fails_to_deliver_is_parked_as_a_runtime_error(
    runtime: FcRuntime, tmp_path: Path
) -> None:
    """A fault of the runtime's own (here a wait past what threading allows) parks the event."""
    runtime.async_invocations.retry_seconds = 1e10  # past the setting's bound: Event.wait overflows
    request_id = invoke_async(runtime, "broken", b"{}")
    assert eventually(lambda: bool(runtime.async_invocations.parked()), timeout=3)
    (parked,) = failed_events(runtime)
    assert (parked["request_id"], parked["reason"], parked["attempts"], parked["error_type"]) == (
        request_id,
        "runtime-error",
        1,
        "OverflowError",
    )
    assert [(line["state"], line["reason"]) for line in journal(tmp_path)] == [("parked", "runtime-error")]


def test_ramflow_failed_events_lists_and_replays(runtime: FcRuntime, monkeypatch: pytest.MonkeyPatch) -> None:
    request_id = invoke_async(runtime, "broken", json.dumps({"sealed": MARKER}).encode())
    assert eventually(lambda: bool(runtime.async_invocations.parked()))
    cli = CliRunner()

    listed = cli.invoke(app, ["failed-events", "--fc", runtime.endpoint, "--json"])
    assert listed.exit_code == 0, listed.output
    assert [(e["request_id"], e["attempts"]) for e in json.loads(listed.stdout)] == [(request_id, 4)]
    table = cli.invoke(app, ["failed-events", "--fc", runtime.endpoint], env={"COLUMNS": "240"})
    assert request_id in table.stdout and "ramflow-failed-events" in table.stdout
    assert MARKER not in listed.output + table.output

    again = cli.invoke(app, ["failed-events", "--fc", runtime.endpoint, "--replay", request_id])
    assert again.exit_code == 1 and "failed again with ValueError after 5 attempts" in again.output
    instance = runtime.instance("broken")
    assert instance is not None
    monkeypatch.setattr(instance.module, "healed", True)
    done = cli.invoke(app, ["failed-events", "--fc", runtime.endpoint, "--replay", request_id])
    assert done.exit_code == 0 and f"replayed {request_id} (broken): completed" in done.output
    gone = cli.invoke(app, ["failed-events", "--fc", runtime.endpoint, "--replay", request_id])
    assert gone.exit_code == 1 and "no parked event has that request id" in gone.output
    assert MARKER not in again.output + done.output + gone.output

    nobody = cli.invoke(app, ["failed-events", "--fc", "http://127.0.0.1:9"])
    assert nobody.exit_code == 1 and "nothing answers there" in nobody.output


# --- configuration ---------------------------------------------------------------------------------------


def test_the_projects_lifecycle_functions_retry_3_times_then_go_to_the_failed_events_queue() -> None:
    functions = load_functions(DEFAULT_S_YAML, DEFAULT_FUNCTIONS_DIR)
    for name in ("user-requested", "access-approved", "key-rotation", "access-revoked", "user-offboarded"):
        config = functions[name].async_invoke
        assert (config.max_retry_attempts, config.max_event_age_seconds) == (3, 86400), name
        assert config.failure_destination == "ramflow-failed-events", name
    assert functions["token-vendor"].async_invoke.failure_destination is None  # FC's defaults, no queue


@pytest.mark.parametrize(
    ("setting", "field"),
    [
        ("maxAsyncRetryAttempts: 9", "maxAsyncRetryAttempts"),
        ("maxAsyncRetryAttempts: three", "maxAsyncRetryAttempts"),
        ("maxAsyncEventAgeInSeconds: 0", "maxAsyncEventAgeInSeconds"),
        ("maxAsyncEventAgeInSeconds: 604801", "maxAsyncEventAgeInSeconds"),  # FC 3.0: [1, 604800]
    ],
)
def test_a_bad_async_invoke_config_names_the_field(tmp_path: Path, setting: str, field: str) -> None:
    (tmp_path / "s.yaml").write_text(
        "edition: 3.0.0\nresources:\n  f:\n    component: fc3\n"
        f"    props: {{functionName: f, asyncInvokeConfig: {{{setting}}}}}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_functions(tmp_path / "s.yaml", tmp_path)
    assert f"function f: asyncInvokeConfig.{field}: must be a whole number" in str(caught.value)


def test_max_async_event_age_takes_fc_s_largest_value(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(
        "edition: 3.0.0\nresources:\n  f:\n    component: fc3\n"
        "    props: {functionName: f, asyncInvokeConfig: {maxAsyncEventAgeInSeconds: 604800}}\n"
    )
    assert load_functions(tmp_path / "s.yaml", tmp_path)["f"].async_invoke.max_event_age_seconds == 604800


def test_the_retry_interval_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(RETRY_SECONDS_ENV, raising=False)
    assert retry_seconds_from() == 1.0
    assert retry_seconds_from({RETRY_SECONDS_ENV: "0.25"}) == 0.25
    monkeypatch.setenv(RETRY_SECONDS_ENV, "0.5")
    assert retry_seconds_from() == 0.5
    assert retry_seconds_from({RETRY_SECONDS_ENV: "3600"}) == 3600.0
    for bad in ("soon", "-1", "nan", "3601", "1e10", "LTAI-pasted-here-by-mistake"):
        with pytest.raises(ConfigError) as caught:
            retry_seconds_from({RETRY_SECONDS_ENV: bad})
        message = str(caught.value)
        assert RETRY_SECONDS_ENV in message and "from 0 to 3600" in message
        assert bad not in message  # the value is not echoed: it may be something pasted by mistake
