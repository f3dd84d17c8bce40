"""The reply shape: statuses, rejections, and credentials that can only ever be ciphertext."""

from __future__ import annotations

import base64
import json

import pytest
from pydantic import BaseModel, ValidationError

from shared.errors import ValidationFailed
from shared.models import AccessKeyReply, LoginProfileReply, Result
from shared.sealing import seal
from tests.models.factories import PUBLIC_KEY

SEALED = seal(PUBLIC_KEY, "the one-time secret")


class TestResult:
    @pytest.mark.parametrize(
        "status", ["completed", "pending_approval", "rejected", "in_progress", "partial", "failed"]
    )
    def test_statuses(self, status):
        assert Result(status=status).to_json() == {
            "status": status,
            "actions": [],
            "errors": [],
            "needs_human": [],
        }

    @pytest.mark.parametrize("status", ["done", "COMPLETED", "", None])
    def test_unknown_status(self, status):
        with pytest.raises(ValidationError):
            Result(status=status)

    def test_rejected_from_error_list(self):
        result = Result.rejected(
            [{"field": "data.ticket_id", "reason": "required"}], ticket_id="ITSM-1", event_id="e1"
        )
        assert result.to_json() == {
            "status": "rejected",
            "ticket_id": "ITSM-1",
            "event_id": "e1",
            "actions": [],
            "errors": [{"field": "data.ticket_id", "reason": "required"}],
            "needs_human": [],
        }

    def test_rejected_from_exception(self):
        failure = ValidationFailed([{"field": "data.grants[0].policy", "reason": "not in the catalog"}])
        result = Result.rejected(failure, user_name="alice.kafka")
        assert [error.model_dump() for error in result.errors] == failure.errors
        assert result.user_name == "alice.kafka"

    def test_to_json_is_json_and_leaves_out_absent_fields(self):
        result = Result(
            status="completed",
            ticket_id="ITSM-1042",
            user_name="alice.kafka",
            actions=["CreateUser", {"action": "AttachPolicyToUser", "policy": "AliyunKafkaReadOnlyAccess"}],
            needs_human=[{"user": "bob", "reason": "not managed by ramflow"}],
            credential=AccessKeyReply(access_key_id="LTAI5tExample", sealed_secret=SEALED),
        )
        body = result.to_json()
        assert json.loads(json.dumps(body)) == body
        assert "plan" not in body and "event_id" not in body
        assert body["credential"] == {
            "kind": "access_key",
            "access_key_id": "LTAI5tExample",
            "sealed_secret": SEALED,
        }

    def test_plan_accepts_a_model(self):
        class Plan(BaseModel):
            ticket_id: str

        result = Result.model_validate({"status": "pending_approval", "plan": Plan(ticket_id="T-1")})
        assert result.to_json()["plan"] == {"ticket_id": "T-1"}

    def test_unknown_fields_are_refused(self):
        with pytest.raises(ValidationError):
            Result.model_validate({"status": "completed", "secret": "x"})


class TestCredentials:
    def test_access_key(self):
        credential = AccessKeyReply(access_key_id="LTAI5tExample", sealed_secret=SEALED)
        assert credential.kind == "access_key"

    def test_login_profile_forces_reset_and_mfa(self):
        credential = LoginProfileReply(
            logon_principal="alice.kafka@corp.onaliyun.com", sealed_password=SEALED
        )
        assert credential.model_dump() == {
            "kind": "login_profile",
            "logon_principal": "alice.kafka@corp.onaliyun.com",
            "sealed_password": SEALED,
            "password_reset_required": True,
            "mfa_bind_required": True,
        }

    @pytest.mark.parametrize("flag", ["password_reset_required", "mfa_bind_required"])
    def test_resets_cannot_be_switched_off(self, flag):
        with pytest.raises(ValidationError):
            LoginProfileReply.model_validate(
                {"logon_principal": "a@corp.onaliyun.com", "sealed_password": SEALED, flag: False}
            )

    @pytest.mark.parametrize(
        "plain",
        [
            "Hunter2!Hunter2!",
            "",
            base64.b64encode(b"short").decode(),
            "Abcdefghijklmnopqrstuvwxyz0123",
            "@@not base64@@",
        ],
    )
    def test_plain_secrets_are_refused(self, plain):
        with pytest.raises(ValidationError) as caught:
            AccessKeyReply(access_key_id="LTAI5tExample", sealed_secret=plain)
        assert "sealed-box ciphertext" in str(caught.value)
        with pytest.raises(ValidationError):
            LoginProfileReply(logon_principal="a@corp.onaliyun.com", sealed_password=plain)

    @pytest.mark.parametrize("principal", ["alice.kafka", "alice@corp.com", "a b@corp.onaliyun.com"])
    def test_logon_principal_shape(self, principal):
        with pytest.raises(ValidationError):
            LoginProfileReply(logon_principal=principal, sealed_password=SEALED)

    def test_result_picks_the_credential_by_kind(self):
        result = Result.model_validate(
            {
                "status": "completed",
                "credential": {
                    "kind": "login_profile",
                    "logon_principal": "a@c.onaliyun.com",
                    "sealed_password": SEALED,
                },
            }
        )
        assert isinstance(result.credential, LoginProfileReply)
