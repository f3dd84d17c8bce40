"""Running the requester's tools as a requester would: `ramflow` commands and an unmodified SDK."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def ramflow(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """`ramflow ARGS` as its own process (what a shell runs)."""
    return subprocess.run(
        [sys.executable, "-c", "from local.cli import app; app()", *args],
        cwd=REPO,
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=60,
    )


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


def caller_identity_with_profile(home: Path, profile: str, endpoint: str) -> subprocess.CompletedProcess:
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
        timeout=60,
    )
