"""s.yaml → the functions the local runtime serves: names, folders, handlers, environment, triggers."""

from __future__ import annotations

from pathlib import Path

import pytest

from local.fcruntime.runtime import DEFAULT_FUNCTIONS_DIR, DEFAULT_S_YAML
from local.fcruntime.spec import UNRESOLVED, load_functions, resolve
from shared.errors import ConfigError

FUNCTION_NAMES = {
    "user-requested",
    "access-approved",
    "key-rotation",
    "access-revoked",
    "user-offboarded",
    "reconcile",
    "token-vendor",
    "webhook-ingress",
    "credential-pickup",
}


def test_the_projects_s_yaml() -> None:
    functions = load_functions(DEFAULT_S_YAML, DEFAULT_FUNCTIONS_DIR)

    assert set(functions) == FUNCTION_NAMES
    vendor = functions["token-vendor"]
    assert vendor.folder == DEFAULT_FUNCTIONS_DIR / "token_vendor"
    assert vendor.module_file == DEFAULT_FUNCTIONS_DIR / "token_vendor" / "index.py"
    assert vendor.handler_name == "handler"
    assert vendor.present
    assert vendor.http is not None
    assert vendor.role_name == "ramflow-fn-token-vendor"
    assert "GET" in vendor.http.methods and "POST" in vendor.http.methods
    # ${env(...)} / ${config(...)} are deploy-time values: left out, for local settings to supply.
    assert all("${" not in value for f in functions.values() for value in f.environment.values())
    assert all(f.timeout >= 30 for f in functions.values())


def test_vars_resolution() -> None:
    variables = {
        "region": "cn-shanghai",
        "env": {"A": "${vars.region}", "B": "${env('X')}"},
        "loop": "${vars.loop}",
    }
    assert resolve("${vars.env}", variables) == {"A": "cn-shanghai"}
    assert resolve("fc.${vars.region}.aliyuncs.com", variables) == "fc.cn-shanghai.aliyuncs.com"
    assert resolve("${vars.missing}", variables) is UNRESOLVED
    assert resolve(["${config('x')}", 3], variables) == [3]
    with pytest.raises(ConfigError):
        resolve("${vars.loop}", variables)


def test_triggers(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(
        """
resources:
  a: {component: fc3, props: {functionName: a, handler: main.entry,
      triggers: [{triggerName: t, triggerType: http, triggerConfig: {authType: function, methods: [get]}}]}}
  b: {component: fc3, props: {functionName: b, triggers: [{triggerName: tick, triggerType: timer, triggerConfig: {}}]}}
  webhook-ingress: {component: fc3, props: {functionName: webhook-ingress}}
  not-fc: {component: fc2, props: {functionName: old}}
"""
    )
    functions = load_functions(tmp_path / "s.yaml", tmp_path)
    assert set(functions) == {"a", "b", "webhook-ingress"}
    assert functions["a"].http is not None and functions["a"].http.auth_type == "function"
    assert functions["a"].http.methods == ("GET",)
    assert functions["a"].module_file == tmp_path / "a" / "main.py"
    assert functions["b"].http is None
    assert functions["webhook-ingress"].http is not None  # declared by DESIGN, triggers not written yet
    assert not functions["a"].present


def test_unreadable_s_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_functions(tmp_path / "missing.yaml", tmp_path)
    (tmp_path / "bad.yaml").write_text("- just\n- a list\n")
    with pytest.raises(ConfigError):
        load_functions(tmp_path / "bad.yaml", tmp_path)
