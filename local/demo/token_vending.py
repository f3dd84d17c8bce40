"""Demo part: an application gets scoped STS credentials through `credentials_uri` and uses them."""

from __future__ import annotations

import json

import fc2
import requests
from alibabacloud_credentials.client import Client as CredentialClient
from alibabacloud_credentials.models import Config as CredentialConfig
from alibabacloud_sts20150401.client import Client as StsClient
from alibabacloud_tea_openapi.utils_models import Config as OpenApiConfig
from rich.table import Table

from local.demo import Demo
from local.dev import mint_dev_token
from local.emulator.core import DEFAULT_ROOT_KEY_ID, DEFAULT_ROOT_KEY_SECRET
from local.fcruntime.stack import LocalStack
from local.seed import DEV_CONFIG


def run(demo: Demo) -> None:
    demo.section("Token vending: applications never hold a permanent AccessKey")
    workdir = demo.workdir / "serve"
    workdir.mkdir(exist_ok=True)
    with LocalStack(DEV_CONFIG, emulator_server=demo.server, workdir=workdir) as stack:
        runtime = stack.runtime
        assert runtime is not None and stack.seeded is not None
        vendor = runtime.url("token-vendor")
        demo.say(f"`ramflow serve` runs every function of functions/ on {runtime.endpoint}; seeded roles:")
        roles = Table("role", "ARN")
        for name, arn in stack.seeded.roles.items():
            roles.add_row(name, arn)
        demo.console.print(roles)

        token = mint_dev_token("demo-app", ttl=900)
        demo.say("demo-app holds a JWT from its identity provider (here: `ramflow dev-token --sub demo-app`)")
        demo.say(
            f"and points the standard credential chain at the vendor: credentials_uri = {vendor}?token=<JWT>"
        )

        before = demo.emulator.recorder.count()["AssumeRole"]
        credential = CredentialClient(
            CredentialConfig(
                type="credentials_uri", credentials_uri=f"{vendor}?token={token}&role=kafka-reader"
            )
        )
        sts = StsClient(
            OpenApiConfig(
                credential=credential,
                endpoint=stack.cloud_endpoint.removeprefix("http://"),
                protocol="http",
                region_id="cn-hangzhou",
            )
        )
        identity = sts.get_caller_identity().body
        key_id = credential.get_credential().access_key_id
        session = demo.emulator.sts_sessions[key_id]
        demo.show(
            "demo-app calls STS GetCallerIdentity with the vended credentials",
            f"{identity.identity_type}  {identity.arn}\n"
            f"AccessKeyId {key_id} (secret and token never printed), expires in "
            f"{int(session.expires_at - demo.emulator.clock())} s\n"
            f"session policy: {json.dumps(session.session_policy, separators=(',', ':'))}",
        )

        again = CredentialClient(
            CredentialConfig(
                type="credentials_uri", credentials_uri=f"{vendor}?token={token}&role=kafka-reader"
            )
        )
        same = again.get_credential().access_key_id == key_id
        assumed = demo.emulator.recorder.count()["AssumeRole"] - before
        demo.say(
            f"A second instance of the app asks too: {'the same' if same else 'a new'} session from the "
            f"vendor's warm cache; {assumed} AssumeRole call(s) in all."
        )

        refusals = Table("request", "HTTP", "Code", "STS calls")
        cases = [
            ("demo-app asks for kafka-operator", {"token": token, "role": "kafka-operator"}),
            ("expired token", {"token": mint_dev_token("demo-app", ttl=-300)}),
            ("duration=99999", {"token": token, "duration": "99999"}),
            ("no token", {}),
        ]
        for label, params in cases:
            mark = demo.emulator.recorder.last_seq
            reply = requests.get(vendor, params=params, timeout=10)
            calls = sum(1 for c in demo.emulator.recorder.since(mark) if c.service == "sts")
            refusals.add_row(label, str(reply.status_code), reply.json()["Code"], str(calls))
        demo.console.print(refusals)

        client = fc2.Client(
            endpoint=runtime.endpoint,
            accessKeyID=DEFAULT_ROOT_KEY_ID,
            accessKeySecret=DEFAULT_ROOT_KEY_SECRET,
        )
        reply = client.invoke_function("ramflow", "token-vendor", payload=json.dumps({"token": token}))
        body = json.loads(reply.data)
        demo.say(
            f"The same vendor through FC's InvokeFunction API (aliyun-fc2, signed): Code={body['Code']}, "
            f"AccessKeyId={body['AccessKeyId']}"
        )
