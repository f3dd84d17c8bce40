"""Read the functions from `s.yaml`, so that what runs locally is what deploys.

Locally a function's code is `functions/<name with _>/` (the packaging step fills `./build/` for the
cloud). `${vars.*}` references are resolved; `${env(...)}` and `${config(...)}` are deploy-time values
the local runtime cannot know, so variables holding them are left out for local settings to supply.
"""

from __future__ import annotations

import copy
import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from shared.errors import ConfigError

# Functions with an HTTP trigger when s.yaml does not (yet) declare triggers for them.
DEFAULT_HTTP_FUNCTIONS = frozenset({"token-vendor", "webhook-ingress"})

_WHOLE_VAR = re.compile(r"^\$\{vars\.([A-Za-z0-9_.-]+)\}$")
_VAR = re.compile(r"\$\{vars\.([A-Za-z0-9_.-]+)\}")
_DESTINATION_NAME = re.compile(r"(?:/queues/|:functions/|/functions/)([A-Za-z0-9_.-]+)")
MAX_EVENT_AGE_SECONDS = 604800  # FC 3.0 PutAsyncInvokeConfig: maxAsyncEventAgeInSeconds in [1, 604800]


class _Unresolved:
    """A value only known at deploy time (`${env(...)}`, `${config(...)}`)."""

    def __repr__(self) -> str:
        return "<unresolved>"


UNRESOLVED = _Unresolved()


@dataclass(frozen=True)
class HttpTrigger:
    name: str = "http"
    auth_type: str = "anonymous"  # anonymous | function | jwt
    methods: tuple[str, ...] = ("GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS")


@dataclass(frozen=True)
class AsyncInvokeConfig:
    """What FC does with a failed asynchronous invocation (s.yaml `asyncInvokeConfig`).

    Without one FC still retries 3 times and keeps an event 86400 s, then discards it. The bounds
    checked here are FC 3.0's PutAsyncInvokeConfig ones, `maxAsyncRetryAttempts` [0, 8] and
    `maxAsyncEventAgeInSeconds` [1, 604800]:
    https://www.alibabacloud.com/help/en/functioncompute/api-fc-2023-03-30-struct-putasyncinvokeconfiginput
    (the fc3 component's schema, tests/data/fc3/props.schema.json, lets the age reach 2592000; the
    API documents the narrower range, and the runtime keeps to it).
    """

    max_retry_attempts: int = 3
    max_event_age_seconds: int = 86400
    on_failure: str | None = None  # the destination's descriptor, deploy-time parts left as written

    @property
    def failure_destination(self) -> str | None:
        """The destination's name: the MNS queue (`…:/queues/<name>/messages`) or function
        (`…:functions/<name>`) it names, else the descriptor as written."""
        if not self.on_failure:
            return None
        found = _DESTINATION_NAME.search(self.on_failure)
        return found.group(1) if found else self.on_failure


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    folder: Path
    handler: str = "index.handler"
    runtime: str = "python3.12"
    timeout: int = 60
    memory: int = 512
    role: str | None = None
    environment: dict[str, str] = field(default_factory=dict)
    http: HttpTrigger | None = None
    async_invoke: AsyncInvokeConfig = field(default_factory=AsyncInvokeConfig)

    @property
    def module_file(self) -> Path:
        module, _, _ = self.handler.rpartition(".")
        return self.folder / (module.replace(".", "/") + ".py")

    @property
    def handler_name(self) -> str:
        return self.handler.rpartition(".")[2]

    @property
    def present(self) -> bool:
        """Others may still be writing a function: until its file exists it answers 404."""
        return self.module_file.is_file()

    @property
    def role_name(self) -> str | None:
        """`acs:ram::<account>:role/<name>` → `<name>` (the account part may be a deploy-time value)."""
        if not self.role:
            return None
        return self.role.rsplit("role/", 1)[-1] or None


def _lookup(variables: dict[str, Any], dotted: str) -> Any:
    node: Any = variables
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return UNRESOLVED
        node = node[part]
    return node


def substitute(text: str, variables: dict[str, Any], depth: int = 0) -> str:
    """`${vars.*}` replaced inside a string; other `${…}` expressions are left as they are."""
    if depth > 10:
        raise ConfigError("s.yaml: ${vars.*} references nest too deeply (a cycle?)")

    def one(match: re.Match[str]) -> str:
        found = _lookup(variables, match.group(1))
        if isinstance(found, str):
            return substitute(found, variables, depth + 1)
        if found is UNRESOLVED or isinstance(found, dict | list):
            return "${unresolved}"
        return str(found)

    return _VAR.sub(one, text)


def resolve(value: Any, variables: dict[str, Any], depth: int = 0) -> Any:
    """Substitute `${vars.*}`; anything still holding `${…}` becomes UNRESOLVED (and is dropped from maps)."""
    if depth > 10:
        raise ConfigError("s.yaml: ${vars.*} references nest too deeply (a cycle?)")
    if isinstance(value, str):
        whole = _WHOLE_VAR.match(value)
        if whole:
            return resolve(_lookup(variables, whole.group(1)), variables, depth + 1)
        text = substitute(value, variables, depth)
        return UNRESOLVED if "${" in text else text
    if isinstance(value, dict):
        resolved = {k: resolve(v, variables, depth + 1) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not UNRESOLVED}
    if isinstance(value, list):
        return [v for v in (resolve(item, variables, depth + 1) for item in value) if v is not UNRESOLVED]
    return value


def _http_trigger(name: str, props: dict[str, Any]) -> HttpTrigger | None:
    triggers = props.get("triggers")
    if triggers is None:
        return HttpTrigger() if name in DEFAULT_HTTP_FUNCTIONS else None
    for trigger in triggers or []:
        if isinstance(trigger, dict) and trigger.get("triggerType") == "http":
            config = trigger.get("triggerConfig") or {}
            methods = tuple(str(m).upper() for m in config.get("methods") or HttpTrigger.methods)
            return HttpTrigger(
                name=str(trigger.get("triggerName") or "http"),
                auth_type=str(config.get("authType") or "anonymous").lower(),
                methods=methods,
            )
    return None


@functools.lru_cache(maxsize=16)
def _parse_project(path: str, mtime_ns: int, size: int) -> Any:
    """s.yaml parsed, once per version of the file (its path, modification time and size): the local
    runtime reads it at each start and `ramflow invoke` at each invocation."""
    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))


def load_functions(s_yaml: str | Path, functions_dir: str | Path) -> dict[str, FunctionSpec]:
    """Every fc3 function of the project, by function name."""
    path = Path(s_yaml)
    try:
        stat = path.stat()
        document = copy.deepcopy(_parse_project(str(path), stat.st_mtime_ns, stat.st_size))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {path}: {type(exc).__name__}") from None
    if not isinstance(document, dict):
        raise ConfigError(f"{path}: not a Serverless Devs project")
    variables = document.get("vars") or {}
    functions: dict[str, FunctionSpec] = {}
    for resource in (document.get("resources") or {}).values():
        if not isinstance(resource, dict) or resource.get("component") != "fc3":
            continue
        props = resolve(resource.get("props") or {}, variables)
        name = props.get("functionName")
        if not isinstance(name, str):
            continue
        env = props.get("environmentVariables") or {}
        functions[name] = FunctionSpec(
            name=name,
            folder=Path(functions_dir) / name.replace("-", "_"),
            handler=str(props.get("handler") or "index.handler"),
            runtime=str(props.get("runtime") or "python3.12"),
            timeout=int(props.get("timeout") or 60),
            memory=int(props.get("memorySize") or 512),
            role=props.get("role")
            if isinstance(props.get("role"), str)
            else _role_fallback(resource, variables),
            environment={str(k): str(v) for k, v in env.items()} if isinstance(env, dict) else {},
            http=_http_trigger(name, props),
            async_invoke=_async_invoke(path, name, resource, variables),
        )
    return functions


def _async_invoke(
    path: Path, name: str, resource: dict[str, Any], variables: dict[str, Any]
) -> AsyncInvokeConfig:
    """`asyncInvokeConfig` read from the raw props, so that a destination holding a deploy-time
    value (`${config('AccountID')}`) is kept, not dropped as unresolved."""
    raw = (resource.get("props") or {}).get("asyncInvokeConfig")
    if isinstance(raw, str) and (whole := _WHOLE_VAR.match(raw)):
        raw = _lookup(variables, whole.group(1))
    if raw is None:
        return AsyncInvokeConfig()
    where = f"{path}: function {name}: asyncInvokeConfig"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a mapping")

    def bounded(key: str, default: int, low: int, high: int) -> int:
        value = resolve(raw.get(key, default), variables)
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ConfigError(f"{where}.{key}: must be a whole number from {low} to {high}, got {value!r}")
        return value

    destinations = raw.get("destinationConfig") or {}
    on_failure = destinations.get("onFailure") if isinstance(destinations, dict) else None
    destination = on_failure.get("destination") if isinstance(on_failure, dict) else on_failure
    if destination is not None and not isinstance(destination, str):
        raise ConfigError(f"{where}.destinationConfig.onFailure.destination: must be a string")
    return AsyncInvokeConfig(
        max_retry_attempts=bounded("maxAsyncRetryAttempts", 3, 0, 8),
        max_event_age_seconds=bounded("maxAsyncEventAgeInSeconds", 86400, 1, MAX_EVENT_AGE_SECONDS),
        on_failure=substitute(destination, variables) if destination else None,
    )


def _role_fallback(resource: dict[str, Any], variables: dict[str, Any]) -> str | None:
    """`acs:ram::${config('AccountID')}:role/x` cannot be resolved, but its role name can."""
    raw = (resource.get("props") or {}).get("role")
    if isinstance(raw, str):
        text = substitute(raw, variables)
        if "role/" in text:
            return "role/" + text.rsplit("role/", 1)[1]
    return None
