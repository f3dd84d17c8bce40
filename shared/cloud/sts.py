"""STS (2015-04-01): short-lived credentials for a role, and who the caller is."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from alibabacloud_sts20150401 import models as sts
from pydantic import SecretStr

from shared.cloud.base import CloudModel, SdkGateway
from shared.policy.templates import canonical_json


class StsCredentials(CloudModel):
    """What AssumeRole hands out; repr and str never show the secret or the token.

    `assumed_role_arn` is AssumeRole's `AssumedRoleUser.Arn`, `acs:ram::<account>:role/<role>/<session>`;
    the same session calling GetCallerIdentity is `…:assumed-role/<role>/<session>`, so the two are
    never compared (https://www.alibabacloud.com/help/en/ram/developer-reference/api-sts-2015-04-01-assumerole).
    """

    access_key_id: str
    access_key_secret: SecretStr
    security_token: SecretStr
    expiration: datetime
    assumed_role_arn: str = ""
    assumed_role_id: str = ""


class CallerIdentity(CloudModel):
    account_id: str
    arn: str
    identity_type: str
    principal_id: str = ""
    user_id: str = ""
    role_id: str = ""


class StsGateway(SdkGateway):
    def assume_role(
        self,
        role_arn: str,
        session_name: str,
        duration_seconds: int = 3600,
        policy: dict[str, Any] | None = None,
        external_id: str | None = None,
    ) -> StsCredentials:
        request = sts.AssumeRoleRequest(
            role_arn=role_arn,
            role_session_name=session_name,
            duration_seconds=duration_seconds,
            policy=canonical_json(policy) if policy is not None else None,  # what the vendor measured
            external_id=external_id,
        )
        body = self._call(self._sdk.assume_role, request)
        creds, user = body.credentials, body.assumed_role_user
        return StsCredentials(
            access_key_id=creds.access_key_id,
            access_key_secret=SecretStr(creds.access_key_secret),
            security_token=SecretStr(creds.security_token),
            expiration=creds.expiration,
            assumed_role_arn=(user.arn if user is not None else None) or "",
            assumed_role_id=(user.assumed_role_id if user is not None else None) or "",
        )

    def get_caller_identity(self) -> CallerIdentity:
        body = self._call(self._sdk.get_caller_identity, action="GetCallerIdentity")
        return CallerIdentity(
            account_id=body.account_id,
            arn=body.arn,
            identity_type=body.identity_type,
            principal_id=body.principal_id or "",
            user_id=body.user_id or "",
            role_id=body.role_id or "",
        )
