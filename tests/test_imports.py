"""Cold start: a handler module imports the SDK clients its flows call and nothing it never uses.

Each handler is imported in a fresh interpreter (an import is once per process) and its
`sys.modules` inspected. `bench/cold_start.py` measures the cost against the same `SDK_CLIENTS`.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cold_start import ALL_SDK_CLIENTS, SDK_CLIENTS

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = sorted(p.parent.name for p in (ROOT / "functions").glob("*/index.py"))
STORE_DRIVERS = ("redis", "tablestore")  # chosen by RAMFLOW_STORE at run time, never at import


def loaded_by(module: str, *, packages: bool = True) -> set[str]:
    """The top-level packages (or with `packages=False` every module) in `sys.modules` after a
    fresh interpreter imports `module`."""
    names = "{name.partition('.')[0] for name in sys.modules}" if packages else "set(sys.modules)"
    code = f"import json, sys\nimport {module}\nprint(json.dumps(sorted({names})))\n"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return set(json.loads(done.stdout))


def test_every_function_is_listed() -> None:
    assert sorted(SDK_CLIENTS) == FUNCTIONS


@pytest.mark.parametrize("function", FUNCTIONS)
def test_handler_imports_no_sdk_it_does_not_call(function: str) -> None:
    loaded = loaded_by(f"functions.{function}.index")
    unused = set(ALL_SDK_CLIENTS) - set(SDK_CLIENTS[function])
    assert sorted(loaded & unused) == []
    assert sorted(loaded & set(STORE_DRIVERS)) == []
    if not SDK_CLIENTS[function]:  # no cloud call at all: not even the SDK core
        assert sorted(loaded & {"alibabacloud_tea_openapi", "Tea", "darabonba"}) == []


def test_token_vendor_loads_no_event_models_store_or_template_validator() -> None:
    """The vendor routes no event, keeps no state, and checks template parameters only when an
    entitlement names a template."""
    loaded = loaded_by("functions.token_vendor.index", packages=False)
    assert sorted(loaded & {"jsonschema", "shared.models.events", "shared.store", "sqlite3"}) == []


@pytest.mark.parametrize("package", ["shared.cloud", "shared.models", "shared.policy", "shared.store"])
def test_lazy_package_names_resolve(package: str) -> None:
    module = importlib.import_module(package)
    for name in module.__all__:  # each loads from its own module (a typo would raise AttributeError)
        assert getattr(module, name) is not None, name
    with pytest.raises(AttributeError, match="no_such_name"):
        module.no_such_name  # noqa: B018
