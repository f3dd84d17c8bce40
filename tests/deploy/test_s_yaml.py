"""s.yaml is a valid Serverless Devs fc3 project: every function's props validate against the fc3
component's own schema once `${vars.*}`, `${env(...)}` and `${config(...)}` are resolved as `s` would."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator

from shared.config import Settings
from shared.models.events import (
    ACCESS_APPROVED,
    ACCESS_REVOKED,
    KEY_ROTATION_REQUESTED,
    USER_OFFBOARDED,
    USER_REHIRED,
    USER_REQUESTED,
)

REPO = Path(__file__).resolve().parents[2]
# A copy kept in the repository (tests/data/fc3/README.md), so this check runs in every clone and CI.
SCHEMA_PATH = REPO / "tests" / "data" / "fc3" / "props.schema.json"
FUNCTIONS = {
    "user-requested": USER_REQUESTED,
    "access-approved": ACCESS_APPROVED,
    "key-rotation": KEY_ROTATION_REQUESTED,
    "access-revoked": ACCESS_REVOKED,
    "user-offboarded": USER_OFFBOARDED,
    "reconcile": None,
    "token-vendor": None,
    "webhook-ingress": None,
    "credential-pickup": None,
}
ALSO_HANDLES = {
    "user-offboarded": [USER_REHIRED],  # a rehire clears what an offboarding recorded
}
TRIGGER_CONFIG = {"http": "IHttpTriggerConfig", "timer": "ITimerTriggerConfig", "eventbridge": "IEventBridge"}
ACCOUNT_ID = "1234567890123456"

_WHOLE = re.compile(r"^\$\{([^${}]+)\}$")
_ANY = re.compile(r"\$\{([^${}]+)\}")
_ENV = re.compile(r"""env\(\s*['"]([A-Za-z0-9_]+)['"]\s*(?:,\s*['"]([^'"]*)['"]\s*)?\)""")
_CONFIG = re.compile(r"""config\(\s*['"]AccountID['"]\s*\)""")


def _expression(expr: str, variables: dict[str, Any], depth: int) -> Any:
    """One `${...}`: vars.path, env('NAME'[, 'default']) or config('AccountID'), like `s` resolves them."""
    if expr.startswith("vars."):
        node: Any = variables
        for part in expr[len("vars.") :].split("."):
            assert isinstance(node, dict) and part in node, f"s.yaml: ${{{expr}}} names no variable"
            node = node[part]
        return resolve(node, variables, depth + 1)
    env = _ENV.fullmatch(expr)
    if env:
        name, default = env.groups()
        return default if default is not None else f"<{name} from the deploying shell>"
    if _CONFIG.fullmatch(expr):
        return ACCOUNT_ID
    raise AssertionError(f"s.yaml: ${{{expr}}} is not an expression Serverless Devs resolves")


def resolve(value: Any, variables: dict[str, Any], depth: int = 0) -> Any:
    assert depth < 20, "s.yaml: variables refer to each other in a cycle"
    if isinstance(value, str):
        whole = _WHOLE.match(value)
        if whole:
            return _expression(whole.group(1), variables, depth)
        return _ANY.sub(lambda m: str(_expression(m.group(1), variables, depth)), value)
    if isinstance(value, dict):
        return {k: resolve(v, variables, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, variables, depth + 1) for v in value]
    return value


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def project() -> dict[str, Any]:
    return yaml.safe_load((REPO / "s.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def props(project: dict[str, Any]) -> dict[str, dict[str, Any]]:
    variables = project.get("vars") or {}
    return {name: resolve(r["props"], variables) for name, r in project["resources"].items()}


def test_the_project_is_an_fc3_edition_3_project(project: dict[str, Any]) -> None:
    assert project["edition"] == "3.0.0"
    assert {r["component"] for r in project["resources"].values()} == {"fc3"}
    assert set(project["resources"]) == set(FUNCTIONS)


@pytest.mark.parametrize("function", list(FUNCTIONS))
def test_props_validate_against_the_fc3_schema(
    function: str, props: dict[str, dict[str, Any]], schema: dict[str, Any]
) -> None:
    errors = sorted(Draft7Validator(schema).iter_errors(props[function]), key=lambda e: list(e.path))

    assert not errors, [f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors]


@pytest.mark.parametrize("function", list(FUNCTIONS))
def test_each_trigger_config_fits_its_own_trigger_type(
    function: str, props: dict[str, dict[str, Any]], schema: dict[str, Any]
) -> None:
    """The schema accepts any trigger config for any type (anyOf); check the one the type needs."""
    for trigger in props[function]["triggers"]:
        definition = {
            **schema["definitions"][TRIGGER_CONFIG[trigger["triggerType"]]],
            "definitions": schema["definitions"],
        }
        errors = list(Draft7Validator(definition).iter_errors(trigger["triggerConfig"]))
        assert not errors, [e.message for e in errors]


@pytest.mark.parametrize("function", list(FUNCTIONS))
def test_every_function_is_declared_completely(function: str, props: dict[str, dict[str, Any]]) -> None:
    p = props[function]
    folder = function.replace("-", "_")

    assert p["functionName"] == function
    assert p["handler"] == "index.handler"
    assert p["code"] == f"./build/{folder}"
    assert (REPO / "functions" / folder / "index.py").is_file(), "the code `make build` packages"
    assert p["runtime"] in {"python3.10", "python3.12"}
    assert p["role"] == f"acs:ram::{ACCOUNT_ID}:role/ramflow-fn-{function}", "one role per function"
    assert (REPO / "deploy" / f"ramflow-fn-{function}-policy.json").is_file()
    assert (REPO / "deploy" / f"ramflow-fn-{function}-trust.json").is_file()
    assert p["memorySize"] >= 512 and p["timeout"] >= 30
    assert p["environmentVariables"]["RAMFLOW_STORE"]
    assert p["logConfig"]["project"] and p["logConfig"]["logstore"]


@pytest.mark.parametrize(("function", "event_type"), [(f, t) for f, t in FUNCTIONS.items() if t])
def test_lifecycle_functions_get_their_own_event_type_from_eventbridge(
    function: str, event_type: str, props: dict[str, dict[str, Any]]
) -> None:
    (trigger,) = props[function]["triggers"]
    config = trigger["triggerConfig"]

    assert trigger["triggerType"] == "eventbridge"
    assert json.loads(config["eventRuleFilterPattern"]) == {
        "type": [event_type, *ALSO_HANDLES.get(function, [])]
    }
    assert config["eventSinkConfig"]["deliveryOption"]["eventSchema"] == "CloudEvents"
    assert config["triggerEnable"] is True
    failure = props[function]["asyncInvokeConfig"]["destinationConfig"]["onFailure"]["destination"]
    assert failure.startswith("acs:mns:"), "events that keep failing are kept for a replay"


def test_http_and_timer_triggers(props: dict[str, dict[str, Any]]) -> None:
    (ingress,) = props["webhook-ingress"]["triggers"]
    (vendor,) = props["token-vendor"]["triggers"]
    (timer,) = props["reconcile"]["triggers"]

    assert (ingress["triggerType"], ingress["triggerConfig"]["methods"]) == ("http", ["POST"])
    assert ingress["triggerConfig"]["authType"] == "anonymous", "the signature is the authentication"
    assert vendor["triggerType"] == "http" and set(vendor["triggerConfig"]["methods"]) == {"GET", "POST"}
    assert timer["triggerType"] == "timer" and timer["triggerConfig"]["enable"] is True


def test_environment_variables_are_settings_ramflow_reads(props: dict[str, dict[str, Any]]) -> None:
    """A misspelt variable would be silently ignored by the functions: every name must be a setting."""
    known = {
        name
        for f in Settings.model_fields.values()
        for name in re.findall(r"RAMFLOW_[A-Z_]+", f.description or "")
    }

    for function, p in props.items():
        unknown = set(p["environmentVariables"]) - known
        assert not unknown, f"{function}: {sorted(unknown)} are not ramflow settings"
        assert all(isinstance(v, str) for v in p["environmentVariables"].values())
    assert "RAMFLOW_WEBHOOK_SECRET" in props["webhook-ingress"]["environmentVariables"]
    assert "RAMFLOW_ENTITLEMENTS" in props["token-vendor"]["environmentVariables"]
    secrets_elsewhere = [
        f
        for f, p in props.items()
        if f != "webhook-ingress" and "RAMFLOW_WEBHOOK_SECRET" in p["environmentVariables"]
    ]
    assert not secrets_elsewhere, "only the ingress holds the webhook secret"


def test_the_schema_check_catches_a_broken_function(
    props: dict[str, dict[str, Any]], schema: dict[str, Any]
) -> None:
    broken = copy.deepcopy(props["webhook-ingress"])
    broken["memorySize"] = 100
    broken["runtime"] = "python3.13"
    broken["triggers"][0]["triggerType"] = "webhook"
    del broken["handler"]

    messages = [e.message for e in Draft7Validator(schema).iter_errors(broken)]

    assert len(messages) >= 4, messages


def test_unresolvable_expressions_are_reported() -> None:
    with pytest.raises(AssertionError, match="names no variable"):
        resolve("${vars.missing}", {})
    with pytest.raises(AssertionError, match="not an expression"):
        resolve("${file('./x')}", {})
    assert resolve("${env('X', 'fallback')}", {}) == "fallback"
    assert resolve("a-${vars.b}-c", {"b": "B"}) == "a-B-c"
