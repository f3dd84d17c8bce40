"""`ramflow` and an unmodified SDK application, each run as its own process, as a shell runs them.

The demo and the requester's tests both show the same thing: what the requester types, and an
application that knows nothing of ramflow finding the unsealed key through the default chain.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# An application using the DEFAULT credential chain of alibabacloud-credentials, nothing of ramflow:
# the chain finds ~/.aliyun/config.json and the profile named by ALIBABA_CLOUD_PROFILE.
CALLER_IDENTITY = textwrap.dedent(
    """
    import sys
    from alibabacloud_credentials.client import Client as CredentialClient
    from alibabacloud_sts20150401.client import Client as StsClient
    from alibabacloud_tea_openapi.models import Config

    host, protocol = sys.argv[1], sys.argv[2]
    sts = StsClient(Config(credential=CredentialClient(), endpoint=host, protocol=protocol))
    print(sts.get_caller_identity().body.arn)
    """
)


def ramflow(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`ramflow ARGS` as its own process; `env` is added to this process's environment."""
    return subprocess.run(
        [sys.executable, "-c", "from local.cli import app; app()", *args],
        cwd=REPO,
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )


def caller_identity_with_profile(
    home: Path, profile: str, endpoint: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """GetCallerIdentity from a process whose HOME holds the profile (no key in its environment)."""
    scheme, _, host = endpoint.partition("://")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALIBABA_CLOUD_", "ALICLOUD_"))}
    env.update(
        {"HOME": str(home), "ALIBABA_CLOUD_PROFILE": profile, "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true"}
    )
    return subprocess.run(
        [sys.executable, "-c", CALLER_IDENTITY, host, scheme],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
