"""A local Function Compute: every function of `functions/` on one loopback port.

One module instance per function stands for one warm FC instance: module-level caches (a JWKS, a
credential cache, SDK clients) survive between invocations exactly as they would in the cloud.
Handlers are imported by file path under a name unique to this runtime, so two runtimes in one test
process never share an instance.

Routes (what real clients call, unchanged):
- `/<function-name>/<path>` — HTTP trigger, FC 3.0 HTTP event in, `{statusCode, headers, …}` out;
- `POST /2016-08-15/services/<service>/functions/<fn>/invocations` — `aliyun-fc2`, FC signature;
- `/2016-08-15/proxy/<service>/<fn>/<path>` — `aliyun-fc2`'s `do_http_request` to an HTTP trigger;
- `POST /2023-03-30/functions/<fn>/invocations` — the v3 API, ACS3-HMAC-SHA256 signature;
- `GET /` — the endpoints, as JSON;
- `GET /fcruntime-api/failed-events` — asynchronous events that failed FC's retries (no payloads);
  `POST /fcruntime-api/failed-events/<request id>/replay` runs one again (local/fcruntime/asyncinvoke.py).
  Like the emulator's control surface, these are unsigned: the runtime listens on loopback.
"""

from __future__ import annotations

import base64
import importlib.util
import itertools
import json
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from local.emulator.core import EmulatorRequest
from local.fcruntime.asyncinvoke import (
    JOURNAL_NAME,
    AsyncInvocations,
    NotParked,
    ReplayUnderWay,
    RuntimeStopped,
    retry_seconds_from,
)
from local.fcruntime.credentials import CredentialSource, NoCredentials
from local.fcruntime.environ import install_instance_environ, instance_credentials
from local.fcruntime.signing import KeyResolver, verify_fc2
from local.fcruntime.spec import FunctionSpec, load_functions
from local.loopback import LoopbackHTTPServer
from shared.errors import InvokeDenied
from shared.fc import FcContext, FcFunction

log = logging.getLogger("ramflow.fcruntime")

PROJECT_DIR = Path(__file__).resolve().parents[2]
DEFAULT_S_YAML = PROJECT_DIR / "s.yaml"
DEFAULT_FUNCTIONS_DIR = PROJECT_DIR / "functions"
CREDENTIAL_ENV = (
    "ALIBABA_CLOUD_ACCESS_KEY_ID",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
    "ALIBABA_CLOUD_SECURITY_TOKEN",
)
_runtime_ids = itertools.count(1)

_INVOKE_2016 = re.compile(r"^/2016-08-15/services/([^/]+)/functions/([^/]+)/invocations/?$")
_PROXY_2016 = re.compile(r"^/2016-08-15/proxy/([^/]+)/([^/]+)(/.*)?$")
_INVOKE_2023 = re.compile(r"^/2023-03-30/functions/([^/]+)/invocations/?$")
CONTROL_PREFIX = "/fcruntime-api"
_FAILED_EVENTS = re.compile(rf"^{CONTROL_PREFIX}/failed-events/?$")
_REPLAY = re.compile(rf"^{CONTROL_PREFIX}/failed-events/([^/]+)/replay/?$")


@dataclass
class Invocation:
    """The outcome of one handler call, as FC reports it."""

    request_id: str
    value: Any = None
    error_type: str | None = None
    error_message: str = ""
    duration_ms: float = 0.0
    # The handler's run when it outlived the function's timeout: FC kills that instance, a thread
    # here runs on, and a retry of the same event must not start before it ends.
    running: Future[Any] | None = field(default=None, repr=False, compare=False)

    @property
    def failed(self) -> bool:
        return self.error_type is not None

    def wait_ended(self, timeout: float | None) -> bool:
        """Whether the handler has returned, after waiting up to `timeout` seconds for it."""
        if self.running is None:
            return True
        return bool(wait_futures([self.running], timeout=timeout).done)

    def payload(self) -> bytes:
        """The bytes FC returns for a return value: bytes as they are, str encoded, the rest as JSON."""
        if self.failed:
            return json.dumps({"errorMessage": self.error_message, "errorType": self.error_type}).encode()
        value = self.value
        if value is None:
            return b""
        if isinstance(value, bytes | bytearray):
            return bytes(value)
        if isinstance(value, str):
            return value.encode("utf-8")
        return json.dumps(value, separators=(",", ":")).encode("utf-8")


class LocalFunction:
    """One function and its one warm instance (the handler module, imported on first call)."""

    def __init__(self, spec: FunctionSpec, runtime_id: int):
        self.spec = spec
        self._module_name = f"ramflow_fc_{runtime_id}_{spec.name.replace('-', '_')}"
        self._module: ModuleType | None = None
        self._lock = threading.Lock()
        self.invocations = 0

    @property
    def module(self) -> ModuleType:
        with self._lock:
            if self._module is None:
                path = self.spec.module_file
                spec = importlib.util.spec_from_file_location(self._module_name, path)
                if spec is None or spec.loader is None:
                    raise ImportError(f"cannot load {path}")
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
                self._module = module
            return self._module

    def handler(self) -> Callable[[Any, Any], Any]:
        handler = getattr(self.module, self.spec.handler_name, None)
        if not callable(handler):
            raise AttributeError(f"{self.spec.handler} is not a function")
        return handler


@dataclass
class FcRuntime:
    """Serve `functions/` on host:port (port 0 picks one). Use as a context manager.

    `keys` decides who may call the InvokeFunction APIs; `credentials` gives each invocation its
    role's session; `environment` is laid over s.yaml's `environmentVariables` (which all functions
    share here, as one process stands for every instance) and restored on stop. Asynchronous
    invocations are retried as s.yaml's `asyncInvokeConfig` says (`async_invocations`), the first
    retry after `async_retry_seconds` (default `RAMFLOW_LOCAL_ASYNC_RETRY_SECONDS`, else 1 s); those
    that still fail are parked, and written to `<workdir>/failed-events.jsonl` when there is a workdir.
    `stop()` waits up to `stop_grace_seconds` for the asynchronous attempts running then.
    """

    keys: KeyResolver
    credentials: CredentialSource = field(default_factory=NoCredentials)
    environment: Mapping[str, str] = field(default_factory=dict)
    s_yaml: Path = DEFAULT_S_YAML
    functions_dir: Path = DEFAULT_FUNCTIONS_DIR
    host: str = "127.0.0.1"
    port: int = 0
    service_name: str = "ramflow"
    region: str = "cn-hangzhou"
    account_id: str = ""
    functions: dict[str, FunctionSpec] | None = None
    workers: int = 64
    workdir: Path | None = None
    async_retry_seconds: float | None = None
    clock: Callable[[], float] = time.monotonic  # the age of asynchronous events
    stop_grace_seconds: float = 5.0

    def __post_init__(self) -> None:
        self.id = next(_runtime_ids)
        specs = (
            self.functions if self.functions is not None else load_functions(self.s_yaml, self.functions_dir)
        )
        self.functions = dict(specs)
        self._instances = {name: LocalFunction(spec, self.id) for name, spec in specs.items()}
        self._server = _Server((self.host, self.port), self)
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix=f"fc{self.id}")
        self._saved_env: dict[str, str | None] = {}
        self._env_lock = threading.Lock()
        self._stopped = False  # under _env_lock: once set, nothing writes the environment again
        self.async_invocations = AsyncInvocations(
            lambda function, payload, request_id: self.invoke(function, payload, request_id=request_id),
            lambda function: self._instances[function].spec.async_invoke,
            retry_seconds=(
                self.async_retry_seconds
                if self.async_retry_seconds is not None
                else retry_seconds_from(dict(self.environment))
            ),
            journal=Path(self.workdir) / JOURNAL_NAME if self.workdir is not None else None,
            clock=self.clock,
        )

    # --- lifecycle -----------------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        return f"http://{self._server.server_address[0]}:{self._server.server_address[1]}"

    @property
    def bound_port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, function: str) -> str:
        """The HTTP-trigger URL of a function."""
        return f"{self.endpoint}/{function}/"

    def endpoints(self) -> dict[str, Any]:
        return {
            "http_triggers": {
                name: self.url(name)
                for name, spec in sorted((self.functions or {}).items())
                if spec.http is not None
            },
            "invoke_2016_08_15": f"{self.endpoint}/2016-08-15/services/{self.service_name}/functions/<fn>/invocations",
            "invoke_2023_03_30": f"{self.endpoint}/2023-03-30/functions/<fn>/invocations",
            "failed_events": f"{self.endpoint}{CONTROL_PREFIX}/failed-events",
            "functions": {name: spec.present for name, spec in sorted((self.functions or {}).items())},
        }

    def function_arn(self, name: str) -> str:
        """FC 3.0's resource for fc:InvokeFunction: `acs:fc:<region>:<account>:functions/<name>`."""
        return f"acs:fc:{self.region}:{self.account_id}:functions/{name}"

    def credentials_for(self, spec: FunctionSpec) -> Any:
        """The session of the function's own role when the source knows roles, else the one session."""
        for_role = getattr(self.credentials, "for_role", None)
        return for_role(spec.role_name) if callable(for_role) else self.credentials.get()

    def start(self) -> FcRuntime:
        self._apply_environment()
        install_instance_environ()
        if not callable(getattr(self.credentials, "for_role", None)):
            self._set_credential_env(self.credentials.get())
        self._thread = self._server.start_thread(f"fcruntime-{self.id}")
        return self

    def serve_forever(self) -> None:
        self._apply_environment()
        try:
            self._server.serve_forever()
        finally:
            self._restore_environment()

    def stop(self) -> None:
        """No retry begins from now on; those running get `stop_grace_seconds` to end, then
        `invoke` refuses, and the environment is restored with nothing left to set it again."""
        if not self.async_invocations.stop(self.stop_grace_seconds):
            log.warning("runtime %d stops with asynchronous attempts still running", self.id)
        with self._env_lock:
            self._stopped = True
        if self._thread is not None:
            self._server.stop_thread(self._thread, close=False)
            self._thread = None
        self._server.server_close()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._restore_environment()

    def __enter__(self) -> FcRuntime:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _apply_environment(self) -> None:
        merged: dict[str, str] = {}
        for spec in (self.functions or {}).values():
            merged.update(spec.environment)
        merged.update(self.environment)
        with self._env_lock:
            for key, value in merged.items():
                self._saved_env.setdefault(key, os.environ.get(key))
                os.environ[key] = value

    def _restore_environment(self) -> None:
        with self._env_lock:
            for key, old in self._saved_env.items():
                if old is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = old
            self._saved_env.clear()

    def _set_credential_env(self, creds: Any) -> None:
        """FC puts the role's session in the environment too (python3.12 has it only there)."""
        values = (
            (creds.access_key_id, creds.access_key_secret, creds.security_token or "")
            if creds
            else ("", "", "")
        )
        if os.environ.get(CREDENTIAL_ENV[0]) == values[0] and os.environ.get(CREDENTIAL_ENV[2]) == values[2]:
            return
        with self._env_lock:
            if self._stopped:  # stop() has restored the environment, or is about to
                raise RuntimeStopped("the runtime has stopped")
            for key, value in zip(CREDENTIAL_ENV, values, strict=True):
                self._saved_env.setdefault(key, os.environ.get(key))
                if value:
                    os.environ[key] = value
                else:
                    os.environ.pop(key, None)

    # --- invocation ----------------------------------------------------------------------------
    def instance(self, name: str) -> LocalFunction | None:
        """The function's warm instance, or None if s.yaml lacks it or its code is not there yet."""
        found = self._instances.get(name)
        return found if found is not None and found.spec.present else None

    def invoke(
        self, name: str, event: bytes | str | dict[str, Any], *, request_id: str | None = None
    ) -> Invocation:
        """Call a function's handler with `event` (as FC: bytes) and an FC-like context. A handler
        that outlives the function's timeout fails the invocation but runs on (`Invocation.running`).
        Raises RuntimeStopped after `stop()`."""
        if self._stopped:
            raise RuntimeStopped("the runtime has stopped")
        instance = self.instance(name)
        if instance is None:
            raise LookupError(name)
        if isinstance(event, dict):
            event = json.dumps(event)
        payload = event.encode("utf-8") if isinstance(event, str) else event
        spec = instance.spec
        credentials = self.credentials_for(spec)
        if not callable(getattr(self.credentials, "for_role", None)):
            self._set_credential_env(credentials)
        context = FcContext(
            function=FcFunction(spec.name, spec.handler, spec.memory, spec.timeout),
            request_id=request_id or str(uuid.uuid4()),
            # python3.10 hands the session on the context; python3.12 only in the environment.
            credentials=credentials if spec.runtime.startswith("python3.10") else None,
            region=self.region,
            account_id=self.account_id,
        )
        result = Invocation(context.request_id)
        started = time.perf_counter()

        def call() -> Any:
            # This thread is the function's instance: its environment holds its own role's session.
            with instance_credentials(credentials):
                return instance.handler()(payload, context)

        running: Future[Any] | None = None
        try:
            instance.invocations += 1
            running = self._pool.submit(call)
            result.value = running.result(timeout=spec.timeout)
        except FutureTimeout:
            result.error_type = "FunctionTimeoutError"
            result.error_message = f"Function timed out after {spec.timeout} seconds"
            result.running = running
        except Exception as exc:
            result.error_type = type(exc).__name__
            result.error_message = str(exc)
            log.warning("function %s request %s raised %s", name, context.request_id, type(exc).__name__)
        result.duration_ms = (time.perf_counter() - started) * 1000
        return result

    def http_event(
        self,
        *,
        method: str,
        raw_path: str,
        headers: Mapping[str, str],
        query: Mapping[str, list[str]],
        body: bytes,
        source_ip: str,
        request_id: str,
        full_path: str,
        trigger_id: str = "",
    ) -> dict[str, Any]:
        """The FC 3.0 HTTP trigger event (see ../shared/data/fc3/http-trigger-event.json)."""
        try:
            text, is_b64 = body.decode("utf-8"), False
        except UnicodeDecodeError:
            text, is_b64 = base64.b64encode(body).decode("ascii"), True
        now = time.time()
        return {
            "version": "v1",
            "rawPath": raw_path,
            "headers": dict(headers),
            "queryParameters": {k: v[0] if len(v) == 1 else v for k, v in query.items()},
            "body": text,
            "isBase64Encoded": is_b64,
            "requestContext": {
                "accountId": self.account_id,
                "triggerId": trigger_id,
                "domainName": f"127.0.0.1:{self.bound_port}",
                "domainPrefix": "127",
                "requestId": request_id,
                "time": datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "timeEpoch": str(int(now * 1000)),
                "http": {
                    "method": method,
                    "path": full_path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": source_ip,
                    "userAgent": headers.get("User-Agent") or headers.get("user-agent") or "",
                },
            },
        }


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def _json_reply(status: int, body: dict[str, Any], request_id: str, **headers: str) -> Reply:
    return Reply(
        status,
        json.dumps(body).encode(),
        {"Content-Type": "application/json", "X-Fc-Request-Id": request_id, **headers},
    )


def _error(status: int, code: str, message: str, request_id: str, *, fc2: bool = False) -> Reply:
    """An API error as each version spells it: 2016-08-15 `{ErrorCode, ErrorMessage}`, the FC 3.0 API
    and HTTP triggers `{Code, Message, RequestId}`."""
    if fc2:
        return _json_reply(status, {"ErrorCode": code, "ErrorMessage": message}, request_id)
    return _json_reply(status, {"Code": code, "Message": message, "RequestId": request_id}, request_id)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms delayed-ACK stall
    server: _Server

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        reply = self.server.route(
            self.command, self.path, dict(self.headers.items()), body, self.client_address[0]
        )
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's signature
        """No access log: query strings carry tokens (`?token=`), and those never reach a log."""


class _Server(LoopbackHTTPServer):
    """Routes a request to its API, which authenticates and checks it; every route that runs a
    function ends in `_run`, the one invocation path."""

    def __init__(self, address: tuple[str, int], runtime: FcRuntime):
        super().__init__(address, _Handler)
        self.runtime = runtime

    def route(self, method: str, raw: str, headers: dict[str, str], body: bytes, source_ip: str) -> Reply:
        request_id = str(uuid.uuid4())
        parts = urlsplit(raw)
        path = parts.path or "/"
        query = parse_qs(parts.query, keep_blank_values=True)
        try:
            if (m := _INVOKE_2016.match(path)) is not None:
                caller = verify_fc2(
                    self.runtime.keys, method=method, path=path, headers=headers, query=query or None
                )
                service, function = unquote(m.group(1)), unquote(m.group(2))
                return self._invoke_function(
                    caller, function, method, headers, body, request_id, service=service
                )
            if (m := _PROXY_2016.match(path)) is not None:
                service, function, rest = m.group(1), m.group(2), m.group(3) or "/"
                if not self._is_our_service(service):
                    return _error(
                        404, "ServiceNotFound", f"service '{service}' does not exist", request_id, fc2=True
                    )
                verify_fc2(self.runtime.keys, method=method, path=path, headers=headers, query=query)
                return self._http_trigger(
                    function,
                    method,
                    rest,
                    parts.query,
                    headers,
                    query,
                    body,
                    source_ip,
                    request_id,
                    signed=True,
                )
            if (m := _INVOKE_2023.match(path)) is not None:
                flat_query = {k: v[0] for k, v in query.items()}
                caller = self.runtime.keys.authenticate_acs3(
                    EmulatorRequest(method, path, flat_query, headers, body)
                )
                return self._invoke_function(caller, unquote(m.group(1)), method, headers, body, request_id)
            if path == "/":
                return _json_reply(200, self.runtime.endpoints(), request_id)
            if path.startswith(CONTROL_PREFIX + "/"):
                return self._control(method, path, request_id)
            function, _, rest = path.lstrip("/").partition("/")
            return self._http_trigger(
                unquote(function),
                method,
                "/" + rest,
                parts.query,
                headers,
                query,
                body,
                source_ip,
                request_id,
                signed=False,
            )
        except InvokeDenied as denied:
            fc2 = path.startswith("/2016-08-15/")
            return _error(denied.status, denied.code, denied.message, request_id, fc2=fc2)
        except RuntimeStopped:
            fc2 = path.startswith("/2016-08-15/")
            return _error(503, "ServiceUnavailable", "the runtime is stopping", request_id, fc2=fc2)

    def _is_our_service(self, service: str) -> bool:
        return service.split(".")[0] == self.runtime.service_name

    def _invoke_function(
        self,
        caller: Any,
        function: str,
        method: str,
        headers: dict[str, str],
        body: bytes,
        request_id: str,
        *,
        service: str | None = None,
    ) -> Reply:
        """InvokeFunction of either API, once the caller is authenticated: the 2016-08-15 API names a
        service (and spells its errors its own way), the 2023-03-30 one does not."""
        fc2 = service is not None
        if method != "POST":
            return _error(405, "MethodNotAllowed", "use POST", request_id, fc2=fc2)
        if service is not None and not self._is_our_service(service):
            return _error(404, "ServiceNotFound", f"service '{service}' does not exist", request_id, fc2=True)
        if self.runtime.instance(function) is None:
            where = f" in service '{service}'" if service is not None else ""
            return _error(
                404, "FunctionNotFound", f"function '{function}' does not exist{where}", request_id, fc2=fc2
            )
        self.runtime.keys.authorize_invoke(caller, self.runtime.function_arn(function))
        invocation_type = {k.lower(): v for k, v in headers.items()}.get("x-fc-invocation-type", "Sync")
        return self._run(function, body, request_id, asynchronous=invocation_type.lower() == "async")

    def _run(
        self,
        function: str,
        payload: bytes,
        request_id: str,
        *,
        asynchronous: bool = False,
        http: bool = False,
    ) -> Reply:
        """Run one invocation (`FcRuntime.invoke`: the request id, the timeout, a raised error) and
        answer as FC does. InvokeFunction: 202 at once when asynchronous; else 200 with the
        function's bytes, or with the error and `X-Fc-Error-Type`. HTTP trigger: the function's
        HTTP reply, or 502 with the error."""
        if asynchronous:
            self.runtime.async_invocations.submit(function, payload, request_id)
            return Reply(202, b"", {"X-Fc-Request-Id": request_id})
        result = self.runtime.invoke(function, payload, request_id=request_id)
        if result.failed:
            return Reply(
                502 if http else 200,
                result.payload(),
                {
                    "Content-Type": "application/json",
                    "X-Fc-Request-Id": request_id,
                    "X-Fc-Error-Type": "UnhandledInvocationError",
                },
            )
        if http:
            return self._http_reply(result.value, request_id)
        return Reply(
            200, result.payload(), {"X-Fc-Request-Id": request_id, "Content-Type": "application/octet-stream"}
        )

    def _control(self, method: str, path: str, request_id: str) -> Reply:
        """The failed-events queue: list it, or replay one event (the reply says how it went,
        never what the function answered)."""
        queue = self.runtime.async_invocations
        if _FAILED_EVENTS.match(path):
            if method != "GET":
                return _error(405, "MethodNotAllowed", "use GET", request_id)
            return _json_reply(200, {"failed_events": [e.summary() for e in queue.parked()]}, request_id)
        if (m := _REPLAY.match(path)) is not None:
            if method != "POST":
                return _error(405, "MethodNotAllowed", "use POST", request_id)
            wanted = unquote(m.group(1))
            try:
                event, result = queue.replay(wanted)
            except NotParked:
                return _error(
                    404, "FailedEventNotFound", f"no failed event has request id '{wanted}'", request_id
                )
            except ReplayUnderWay:
                return _error(409, "ReplayInProgress", f"'{wanted}' is being replayed already", request_id)
            return _json_reply(
                200,
                {
                    "request_id": event.request_id,
                    "function": event.function,
                    "replay_request_id": result.request_id,
                    "status": "failed" if result.failed else "completed",
                    "error_type": result.error_type,
                    "parked": result.failed,
                    "attempts": event.attempts,
                },
                request_id,
            )
        return _error(404, "NotFound", f"no control route {path}", request_id)

    def _http_trigger(
        self,
        function: str,
        method: str,
        rest: str,
        raw_query: str,
        headers: dict[str, str],
        query: dict[str, list[str]],
        body: bytes,
        source_ip: str,
        request_id: str,
        *,
        signed: bool,
    ) -> Reply:
        runtime = self.runtime
        instance = runtime.instance(function)
        trigger = instance.spec.http if instance is not None else None
        if instance is None or trigger is None:
            return _error(404, "TriggerNotFound", f"no HTTP trigger for '{function}'", request_id)
        if method not in trigger.methods:
            return _error(405, "MethodNotAllowed", f"{method} is not allowed", request_id)
        if trigger.auth_type == "function" and not signed:
            verify_fc2(
                runtime.keys, method=method, path=f"/{function}{rest}", headers=headers, query=query or None
            )
        event = runtime.http_event(
            method=method,
            raw_path=rest,
            headers=headers,
            query=query,
            body=body,
            source_ip=source_ip,
            request_id=request_id,
            full_path=rest + (f"?{raw_query}" if raw_query else ""),
            trigger_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"ramflow/{function}/{trigger.name}")),
        )
        return self._run(function, json.dumps(event).encode(), request_id, http=True)

    @staticmethod
    def _http_reply(value: Any, request_id: str) -> Reply:
        if isinstance(value, bytes | bytearray | str):
            try:
                value = json.loads(value)
            except ValueError:
                text = value if isinstance(value, bytes | bytearray) else value.encode()
                return Reply(200, bytes(text), {"X-Fc-Request-Id": request_id})
        if isinstance(value, dict) and "statusCode" in value:
            raw = value.get("body") or ""
            if value.get("isBase64Encoded"):
                payload = base64.b64decode(raw)
            else:
                payload = raw.encode() if isinstance(raw, str) else json.dumps(raw).encode()
            headers = {str(k): str(v) for k, v in (value.get("headers") or {}).items()}
            headers["X-Fc-Request-Id"] = request_id
            return Reply(int(value["statusCode"]), payload, headers)
        return Reply(
            200,
            json.dumps(value).encode(),
            {"Content-Type": "application/json", "X-Fc-Request-Id": request_id},
        )
