"""Run one function's handler in this process, exactly as FC would call it."""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from local.fcruntime.spec import FunctionSpec, load_functions
from shared.errors import ConfigError
from shared.fc import FcContext, FcCredentials, FcFunction

REPO = Path(__file__).resolve().parent.parent


def function_specs() -> dict[str, FunctionSpec]:
    return load_functions(REPO / "s.yaml", REPO / "functions")


@cache
def _module(path: Path) -> ModuleType:
    """One warm instance per function per process, as FC keeps a module between invocations."""
    spec = importlib.util.spec_from_file_location(f"ramflow_invoke_{path.parent.name}", path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def invoke(function: str, event: bytes, context: Any = None, credentials: FcCredentials | None = None) -> Any:
    """Call `function`'s handler with `event` bytes; the context is FC-like (carrying `credentials`,
    as FC python3.10 does) unless given."""
    specs = function_specs()
    spec = specs.get(function)
    if spec is None:
        raise ConfigError(f"unknown function {function!r}; s.yaml declares: {', '.join(sorted(specs))}")
    if not spec.present:
        raise ConfigError(f"function {function!r} has no code at {spec.module_file}")
    handler = getattr(_module(spec.module_file), spec.handler_name)
    context = context or FcContext(
        FcFunction(spec.name, spec.handler, spec.memory, spec.timeout), credentials=credentials
    )
    return handler(event, context)
