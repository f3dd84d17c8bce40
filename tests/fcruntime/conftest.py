"""A throwaway project (s.yaml + functions/) served by the local runtime on the test's emulator."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from local.emulator.server import EmulatorServer
from local.fcruntime.stack import LocalStack
from local.seed import DevConfig

S_YAML = """
edition: 3.0.0
name: probe-project
vars:
  region: cn-hangzhou
  role: acs:ram::${config('AccountID')}:role/ramflow-fn-token-vendor
  environment:
    PROBE_PLAIN: hello-${vars.region}
    PROBE_FROM_DEPLOY: ${env('PROBE_FROM_DEPLOY', 'not-locally')}
resources:
  probe:
    component: fc3
    props:
      region: ${vars.region}
      functionName: probe
      runtime: python3.12
      code: ./build/probe
      handler: index.handler
      timeout: 5
      memorySize: 256
      role: ${vars.role}
      environmentVariables: ${vars.environment}
      triggers:
        - triggerName: web
          triggerType: http
          triggerConfig: {authType: anonymous, methods: [GET, POST]}
  probe-py310:
    component: fc3
    props: {functionName: probe-py310, runtime: python3.10, code: ./build/probe_py310, handler: index.handler,
            role: "${vars.role}"}
  boom:
    component: fc3
    props:
      functionName: boom
      runtime: python3.12
      code: ./build/boom
      handler: index.handler
      triggers: [{triggerName: web, triggerType: http, triggerConfig: {authType: anonymous}}]
  sleepy:
    component: fc3
    props: {functionName: sleepy, runtime: python3.12, code: ./build/sleepy, handler: index.handler, timeout: 1}
  ghost:
    component: fc3
    props: {functionName: ghost, runtime: python3.12, code: ./build/ghost, handler: index.handler}
"""

PROBE = """
import base64, json, os

calls = 0


def handler(event, context):
    global calls
    calls += 1
    creds = getattr(context, "credentials", None)
    try:
        decoded = json.loads(event)
    except ValueError:
        decoded = base64.b64encode(event).decode()
    info = {
        "event": decoded,
        "event_type": type(event).__name__,
        "calls": calls,
        "request_id": context.request_id,
        "function": context.function.name,
        "timeout": context.function.timeout,
        "memory": context.function.memory,
        "context_key": creds.access_key_id if creds else None,
        "env_key": os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_ID"),
        "env_secret": os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET"),
        "env_token": os.environ.get("ALIBABA_CLOUD_SECURITY_TOKEN"),
        "plain": os.environ.get("PROBE_PLAIN"),
        "from_deploy": os.environ.get("PROBE_FROM_DEPLOY"),
        "endpoint": os.environ.get("RAMFLOW_CLOUD_ENDPOINT"),
    }
    if isinstance(decoded, dict) and "requestContext" in decoded:
        return {"statusCode": 201, "headers": {"X-Probe": "yes"}, "isBase64Encoded": False, "body": json.dumps(info)}
    return json.dumps(info)
"""

BOOM = """
def handler(event, context):
    raise RuntimeError("the probe failed on purpose")
"""

SLEEPY = """
import time


def handler(event, context):
    time.sleep(3)
    return "late"
"""


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "s.yaml").write_text(S_YAML)
    functions = tmp_path / "functions"
    for folder, code in {"probe": PROBE, "probe_py310": PROBE, "boom": BOOM, "sleepy": SLEEPY}.items():
        (functions / folder).mkdir(parents=True)
        (functions / folder / "index.py").write_text(textwrap.dedent(code))
    return tmp_path / "s.yaml", functions


def project_stack(
    config: DevConfig, emulator_server: EmulatorServer, project: tuple[Path, Path], workdir: Path
) -> LocalStack:
    """A local stack serving the throwaway project (not yet started: use it in `with`)."""
    s_yaml, functions = project
    return LocalStack(
        config, emulator_server=emulator_server, s_yaml=s_yaml, functions_dir=functions, workdir=workdir
    )


@pytest.fixture
def stack(
    emulator_server: EmulatorServer, project: tuple[Path, Path], tmp_path: Path
) -> Iterator[LocalStack]:
    with project_stack(DevConfig.load(), emulator_server, project, tmp_path) as running:
        yield running


@pytest.fixture
def endpoint(stack: LocalStack) -> str:
    assert stack.runtime is not None
    return stack.runtime.endpoint
