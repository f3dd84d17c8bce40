"""The safety rules: deny by default, self-approval, break-glass, one access mode per user."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone

import pytest
import yaml

from shared.config import DEFAULT_CATALOG
from shared.errors import GuardDenied, ValidationFailed
from shared.models import AccessApproved, UserRequested
from shared.policy import Catalog, check_access_mode, check_approval, plan_request
from tests.models.factories import user_requested_data, without

CATALOG = Catalog.load(DEFAULT_CATALOG)
NOW = datetime(2025, 3, 3, 9, 0, tzinfo=timezone.utc)
INSTANCE = "alikafka_post-cn-7mz2"
ADMIN = {"policy": "AdministratorAccess", "type": "System"}
READONLY = {"policy": "AliyunKafkaReadOnlyAccess", "type": "System"}


def request(**changes) -> UserRequested:
    return UserRequested.model_validate(user_requested_data(**changes))


def approval(*approvers: str, break_glass: bool = False, ticket_id: str = "ITSM-1042") -> AccessApproved:
    return AccessApproved(ticket_id=ticket_id, approvers=list(approvers), break_glass=break_glass)


def denied(call, *args, **kwargs) -> list[dict[str, str]]:
    with pytest.raises(GuardDenied) as caught:
        call(*args, **kwargs)
    return caught.value.errors


def custom_catalog(**extra_policies) -> Catalog:
    data = yaml.safe_load(DEFAULT_CATALOG.read_text(encoding="utf-8"))
    data["policies"].update(extra_policies)
    return Catalog.from_yaml(yaml.safe_dump(data))


class TestPlan:
    def test_design_example(self):
        plan = plan_request(request(), CATALOG, now=NOW)
        readonly, operator = plan.grants
        assert (readonly.policy_name, readonly.policy_type, readonly.scope, readonly.resource_group) == (
            "AliyunKafkaReadOnlyAccess",
            "System",
            "resource_group",
            "rg-aek2xl5qw",
        )
        assert readonly.auto_approvable and readonly.document is None
        assert operator.policy_name.startswith("ramflow-kafka-instance-operator-")
        assert operator.policy_type == "Custom" and operator.scope == "account"
        assert operator.document["Statement"][0]["Resource"][0] == f"acs:alikafka:*:*:{INSTANCE}"
        assert operator.template == "kafka-instance-operator" and operator.params == {"instance_id": INSTANCE}
        assert not operator.auto_approvable and operator.approvers == 1
        assert [grant.expires_at for grant in plan.grants] == [NOW + timedelta(days=30)] * 2
        assert (plan.required_approvers, plan.auto_approved, plan.high_risk) == (1, False, False)
        assert (plan.ticket_id, plan.user_name, plan.access_mode, plan.catalog_version) == (
            "ITSM-1042",
            "alice.kafka",
            "console",
            1,
        )

    def test_auto_approved_when_every_grant_is(self):
        grants = [READONLY, {"template": "kafka-instance-readonly", "params": {"instance_id": INSTANCE}}]
        plan = plan_request(request(grants=grants), CATALOG, now=NOW)
        assert plan.auto_approved and plan.required_approvers == 0

    def test_one_grant_needing_approval_stops_auto_approval(self):
        plan = plan_request(
            request(grants=[READONLY, {"policy": "ReadOnlyAccess", "type": "System"}]), CATALOG
        )
        assert not plan.auto_approved and plan.required_approvers == 1

    def test_plan_dump_is_the_reply_plan(self):
        dumped = plan_request(request(), CATALOG, now=NOW).model_dump(mode="json")
        assert dumped["grants"][0]["duration"] == "P30D"
        assert dumped["grants"][0]["expires_at"] == "2025-04-02T09:00:00Z"
        assert dumped["auto_approved"] is False

    def test_same_request_same_plan(self):
        assert plan_request(request(), CATALOG, now=NOW) == plan_request(request(), CATALOG, now=NOW)


class TestDenyByDefault:
    def test_policy_not_in_catalog(self):
        errors = denied(
            plan_request, request(grants=[{"policy": "AliyunECSFullAccess", "type": "System"}]), CATALOG
        )
        assert errors == [
            {"field": "data.grants[0].policy", "reason": "'AliyunECSFullAccess' is not in the policy catalog"}
        ]

    def test_template_not_in_catalog(self):
        grants = [{"template": "kafka-everything", "params": {"instance_id": INSTANCE}}]
        errors = denied(plan_request, request(grants=grants), CATALOG)
        assert errors == [
            {
                "field": "data.grants[0].template",
                "reason": "'kafka-everything' is not a template in the policy catalog",
            }
        ]

    def test_policy_type_must_match_the_catalog(self):
        errors = denied(plan_request, request(grants=[{**READONLY, "type": "Custom"}]), CATALOG)
        assert errors == [
            {
                "field": "data.grants[0].type",
                "reason": "'AliyunKafkaReadOnlyAccess' is a System policy in the catalog",
            }
        ]

    def test_scope_not_allowed(self):
        grant = {"policy": "AliyunRAMFullAccess", "type": "System", "resource_group": "rg-aek2xl5qw"}
        errors = denied(plan_request, request(grants=[grant], duration="PT1H"), CATALOG)
        assert errors == [
            {
                "field": "data.grants[0].resource_group",
                "reason": "'AliyunRAMFullAccess' may only be granted at account scope",
            }
        ]

    def test_resource_group_only_entries(self):
        catalog = custom_catalog(
            AliyunKafkaFullAccess={
                "description": "rg only",
                "approvers": 1,
                "auto_approve": False,
                "max_duration": "P7D",
                "scopes": ["resource_group"],
            }
        )
        errors = denied(
            plan_request, request(grants=[{"policy": "AliyunKafkaFullAccess", "type": "System"}]), catalog
        )
        assert errors[0]["field"] == "data.grants[0].resource_group"
        assert "only be granted within a resource group" in errors[0]["reason"]

    def test_template_params_are_checked(self):
        grants = [
            {"template": "kafka-instance-operator", "params": {"instance_id": "alikafka_post-cn-7mz2/*"}}
        ]
        errors = denied(plan_request, request(grants=grants), CATALOG)
        assert errors == [
            {
                "field": "data.grants[0].params.instance_id",
                "reason": "must match ^alikafka_[a-z]+-[a-z0-9-]+$",
            }
        ]

    def test_every_problem_is_reported_at_once(self):
        grants = [
            {"policy": "AliyunECSFullAccess", "type": "System"},
            READONLY,
            {"template": "kafka-instance-operator", "params": {}},
            ADMIN,
        ]
        errors = denied(plan_request, request(grants=grants, duration=None), CATALOG)
        assert [error["field"] for error in errors] == [
            "data.grants[0].policy",
            "data.grants[2].params.instance_id",
            "data.duration",
        ]

    def test_denials_are_validation_failures(self):
        with pytest.raises(ValidationFailed):
            plan_request(request(grants=[{"policy": "Nope", "type": "System"}]), CATALOG)

    def test_too_many_custom_policies(self):
        grants = [
            {"template": "kafka-instance-readonly", "params": {"instance_id": f"alikafka_post-cn-{index}"}}
            for index in range(11)
        ]
        errors = denied(plan_request, request(grants=grants), CATALOG)
        assert errors == [{"field": "data.grants", "reason": "RAM allows at most 10 custom policies"}]

    def test_two_grants_resolving_to_the_same_policy(self):
        # The model refuses literal duplicates; this one slips past it by construction.
        valid = request()
        doubled = UserRequested.model_construct(
            **{**dict(valid), "grants": [valid.grants[0], valid.grants[0]]}
        )
        errors = denied(plan_request, doubled, CATALOG)
        assert errors == [
            {"field": "data.grants", "reason": "two grants resolve to the same policy at the same scope"}
        ]


class TestDurations:
    def test_capped_at_the_catalog_maximum(self):
        plan = plan_request(
            request(grants=[{"policy": "AliyunKafkaFullAccess", "type": "System"}], duration="P60D"),
            CATALOG,
            now=NOW,
        )
        [grant] = plan.grants
        assert grant.duration == timedelta(days=30) and grant.duration_capped
        assert grant.expires_at == NOW + timedelta(days=30)

    def test_without_a_duration_the_catalog_maximum_applies(self):
        plan = plan_request(request(grants=[READONLY], duration=None), CATALOG, now=NOW)
        assert plan.grants[0].duration == timedelta(days=90) and not plan.grants[0].duration_capped

    def test_shorter_request_is_kept(self):
        plan = plan_request(request(grants=[READONLY], duration="PT4H"), CATALOG, now=NOW)
        assert plan.grants[0].expires_at == NOW + timedelta(hours=4)

    def test_each_grant_is_capped_separately(self):
        plan = plan_request(request(grants=[READONLY, ADMIN], duration="P7D"), CATALOG, now=NOW)
        assert [grant.duration for grant in plan.grants] == [timedelta(days=7), timedelta(hours=12)]


class TestHighRisk:
    @pytest.mark.parametrize(
        "name", ["AdministratorAccess", "AliyunRAMFullAccess", "AliyunSTSAssumeRoleAccess"]
    )
    def test_needs_a_duration(self, name):
        errors = denied(
            plan_request, request(grants=[{"policy": name, "type": "System"}], duration=None), CATALOG
        )
        assert errors == [
            {
                "field": "data.duration",
                "reason": f"'{name}' is high-risk: break-glass access needs a duration",
            }
        ]

    def test_plan_is_high_risk_and_never_automatic(self):
        plan = plan_request(request(grants=[READONLY, ADMIN], duration="PT8H"), CATALOG)
        assert plan.high_risk and not plan.auto_approved and plan.required_approvers == 2
        assert [grant.high_risk for grant in plan.grants] == [False, True]

    def test_a_high_risk_template_document_makes_a_high_risk_grant(self):
        data = yaml.safe_load(DEFAULT_CATALOG.read_text(encoding="utf-8"))
        data["templates"]["ram-reader"] = {
            "description": "claims to read, allows ram:*",
            "approvers": 2,
            "auto_approve": False,
            "high_risk": True,
            "max_duration": "PT8H",
            "scopes": ["account"],
            "params_schema": copy.deepcopy(data["templates"]["kafka-instance-readonly"]["params_schema"]),
            "example": {"instance_id": INSTANCE},
            "document": {
                "Version": "1",
                "Statement": [{"Effect": "Allow", "Action": "ram:*", "Resource": "*"}],
            },
        }
        catalog = Catalog.from_yaml(yaml.safe_dump(data))
        grants = [{"template": "ram-reader", "params": {"instance_id": INSTANCE}}]
        assert plan_request(request(grants=grants, duration="PT1H"), catalog).grants[0].high_risk
        assert (
            denied(plan_request, request(grants=grants, duration=None), catalog)[0]["field"]
            == "data.duration"
        )


class TestApproval:
    def test_enough_independent_approvers(self):
        plan = plan_request(request(), CATALOG)
        check_approval(plan, request(), approval("dave@example.com"))

    @pytest.mark.parametrize("requester", ["carol@example.com", "CAROL@example.com", "Carol@Example.Com"])
    def test_requester_may_not_approve(self, requester):
        the_request = request(requester=requester)
        plan = plan_request(the_request, CATALOG)
        errors = denied(check_approval, plan, the_request, approval("carol@example.com", "dave@example.com"))
        assert {
            "field": "data.approvers",
            "reason": "the requester may not approve their own request",
        } in errors

    def test_self_approval_is_refused_even_with_enough_others(self):
        the_request = request(grants=[ADMIN], duration="PT2H")
        plan = plan_request(the_request, CATALOG)
        approvers = ("carol@example.com", "dave@example.com", "erin@example.com")
        errors = denied(check_approval, plan, the_request, approval(*approvers, break_glass=True))
        assert errors == [
            {"field": "data.approvers", "reason": "the requester may not approve their own request"}
        ]

    @pytest.mark.parametrize("approver", ["alice@example.com", "ALICE@example.com"])
    def test_the_person_receiving_access_may_not_approve(self, approver):
        plan = plan_request(request(), CATALOG)
        errors = denied(check_approval, plan, request(), approval(approver.lower()))
        assert {
            "field": "data.approvers",
            "reason": "the person receiving the access may not approve it",
        } in errors

    def test_approvers_count_as_many_as_the_catalog_demands(self):
        catalog = custom_catalog(
            ReadOnlyAccess={
                "description": "two approvers, not high-risk",
                "approvers": 2,
                "auto_approve": False,
                "max_duration": "P7D",
                "scopes": ["account"],
            }
        )
        the_request = request(grants=[READONLY, {"policy": "ReadOnlyAccess", "type": "System"}])
        plan = plan_request(the_request, catalog)
        assert plan.required_approvers == 2
        errors = denied(check_approval, plan, the_request, approval("dave@example.com"))
        assert errors == [
            {"field": "data.approvers", "reason": "needs 2 distinct approvers besides the requester, got 1"}
        ]
        check_approval(plan, the_request, approval("dave@example.com", "erin@example.com"))

    def test_approval_for_another_ticket(self):
        plan = plan_request(request(), CATALOG)
        errors = denied(check_approval, plan, request(), approval("dave@example.com", ticket_id="ITSM-9"))
        assert errors[0]["field"] == "data.ticket_id"


class TestBreakGlass:
    def setup_method(self):
        self.request = request(grants=[ADMIN], duration="PT2H")
        self.plan = plan_request(self.request, CATALOG)

    def test_two_approvers_and_break_glass(self):
        check_approval(
            self.plan, self.request, approval("dave@example.com", "erin@example.com", break_glass=True)
        )

    def test_without_break_glass(self):
        errors = denied(
            check_approval, self.plan, self.request, approval("dave@example.com", "erin@example.com")
        )
        assert errors == [
            {
                "field": "data.break_glass",
                "reason": "high-risk grants (AdministratorAccess) need break_glass: true",
            }
        ]

    def test_one_approver_is_not_enough(self):
        errors = denied(
            check_approval, self.plan, self.request, approval("dave@example.com", break_glass=True)
        )
        assert errors == [
            {"field": "data.approvers", "reason": "needs 2 distinct approvers besides the requester, got 1"}
        ]

    def test_requester_does_not_count_as_the_second(self):
        errors = denied(
            check_approval,
            self.plan,
            self.request,
            approval("dave@example.com", "carol@example.com", break_glass=True),
        )
        assert {
            "field": "data.approvers",
            "reason": "needs 2 distinct approvers besides the requester, got 1",
        } in errors

    def test_the_plan_alone_demands_two_approvers(self):
        lowered = self.plan.model_copy(update={"required_approvers": 1})
        errors = denied(check_approval, lowered, self.request, approval("dave@example.com", break_glass=True))
        assert errors == [
            {"field": "data.approvers", "reason": "needs 2 distinct approvers besides the requester, got 1"}
        ]

    def test_always_time_bound(self):
        untimed = self.request.model_copy(update={"duration": None})
        errors = denied(
            check_approval,
            self.plan,
            untimed,
            approval("dave@example.com", "erin@example.com", break_glass=True),
        )
        assert errors == [{"field": "data.duration", "reason": "high-risk grants are always time-bound"}]

    def test_break_glass_on_an_ordinary_request_is_harmless(self):
        plan = plan_request(request(), CATALOG)
        check_approval(plan, request(), approval("dave@example.com", break_glass=True))


class TestAccessMode:
    @pytest.mark.parametrize(
        ("existing", "requested"), [(None, "console"), (None, "programmatic"), ("console", "console")]
    )
    def test_allowed(self, existing, requested):
        check_access_mode(existing, requested)

    @pytest.mark.parametrize(
        ("existing", "requested"), [("console", "programmatic"), ("programmatic", "console")]
    )
    def test_never_both(self, existing, requested):
        [error] = denied(check_access_mode, existing, requested)
        assert error["field"] == "data.access_mode" and "one access mode per user" in error["reason"]


def test_requests_without_duration_still_plan():
    assert plan_request(UserRequested.model_validate(without(user_requested_data(), "duration")), CATALOG)
