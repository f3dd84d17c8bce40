"""The four payload models: the DESIGN.md shapes exactly, every rule with its field path."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from pydantic import ValidationError

from shared.errors import ValidationFailed
from shared.models import (
    AccessApproved,
    AccessRevoked,
    PolicyGrant,
    TemplateGrant,
    UserOffboarded,
    UserRequested,
    parse_data,
    parse_events,
)
from tests.models.factories import envelope, user_requested_data, without


def parse(data, type: str = "ramflow.user.requested"):
    [event] = parse_events(envelope(data, type=type))
    return parse_data(event)


def refused(data, type: str = "ramflow.user.requested") -> list[dict[str, str]]:
    with pytest.raises(ValidationFailed) as caught:
        parse(data, type)
    return caught.value.errors


def reasons_for(field: str, errors: list[dict[str, str]]) -> list[str]:
    found = [error["reason"] for error in errors if error["field"] == field]
    assert found, f"no error for {field}: {errors}"
    return found


class TestDispatch:
    def test_user_requested_example_from_the_design(self):
        request = parse(user_requested_data())
        assert isinstance(request, UserRequested)
        assert request.user.logon_name == "alice.kafka"
        assert request.duration == timedelta(days=30)
        assert (
            isinstance(request.grants[0], PolicyGrant) and request.grants[0].resource_group == "rg-aek2xl5qw"
        )
        assert isinstance(request.grants[1], TemplateGrant)
        assert request.grants[1].params == {"instance_id": "alikafka_post-cn-7mz2"}

    @pytest.mark.parametrize(
        ("type", "data", "model"),
        [
            (
                "ramflow.access.approved",
                {"ticket_id": "ITSM-1042", "approvers": ["dave@example.com"]},
                AccessApproved,
            ),
            ("ramflow.access.revoked", {"ticket_id": "ITSM-1042", "reason": "moved team"}, AccessRevoked),
            (
                "ramflow.user.offboarded",
                {"owner": "alice@example.com", "hr_event_id": "WD-778"},
                UserOffboarded,
            ),
        ],
    )
    def test_each_type_has_its_model(self, type, data, model):
        assert isinstance(parse(data, type), model)

    def test_unknown_type(self):
        [error] = refused({}, type="ramflow.user.deleted")
        assert error["field"] == "type" and "ramflow.user.requested" in error["reason"]

    def test_missing_data(self):
        raw = envelope(type="ramflow.access.revoked")
        del raw["data"]
        [event] = parse_events(raw)
        with pytest.raises(ValidationFailed) as caught:
            parse_data(event)
        assert caught.value.errors == [{"field": "data", "reason": "required"}]

    @pytest.mark.parametrize("data", [[user_requested_data()], "text", 42])
    def test_data_must_be_an_object(self, data):
        assert refused(data) == [{"field": "data", "reason": "must be a JSON object"}]

    def test_unknown_fields_are_refused(self):
        errors = refused(user_requested_data(admin=True, user={"is_admin": True}))
        assert {"field": "data.admin", "reason": "not an accepted field"} in errors
        assert {"field": "data.user.is_admin", "reason": "not an accepted field"} in errors

    def test_all_errors_are_reported_at_once(self):
        errors = refused(user_requested_data(ticket_id="", requester="nobody", access_mode="both"))
        assert {error["field"] for error in errors} == {
            "data.ticket_id",
            "data.requester",
            "data.access_mode",
        }

    def test_models_are_immutable(self):
        request = parse(user_requested_data())
        with pytest.raises(ValidationError):
            request.ticket_id = "ITSM-1"


class TestNames:
    @pytest.mark.parametrize("name", ["a", "a" * 64, "alice.kafka", "svc_orders-1", "A.B_C-D"])
    def test_valid_logon_names(self, name):
        assert parse(user_requested_data(user={"logon_name": name})).user.logon_name == name

    @pytest.mark.parametrize(
        "name",
        [
            "",
            "a" * 65,
            "alice kafka",
            "alice@corp",
            "ａlice",
            "alice\n",
            "../etc",
            "a;rm -rf /",
            "${instance_id}",
            "ali*",
        ],
    )
    def test_invalid_logon_names(self, name):
        [reason] = reasons_for(
            "data.user.logon_name", refused(user_requested_data(user={"logon_name": name}))
        )
        assert reason == "must be 1 to 64 of A-Z a-z 0-9 . _ -"

    def test_display_name_length_and_unicode(self):
        assert parse(user_requested_data(user={"display_name": "陈爱丽"})).user.display_name == "陈爱丽"
        assert parse(user_requested_data(user={"display_name": "x" * 128}))
        assert reasons_for(
            "data.user.display_name", refused(user_requested_data(user={"display_name": "x" * 129}))
        )

    @pytest.mark.parametrize("text", ["Alice\u202eneC", "Alice\x00", "Alice\r\nInjected: yes", "   "])
    def test_display_name_without_control_or_bidi_characters(self, text):
        assert reasons_for(
            "data.user.display_name", refused(user_requested_data(user={"display_name": text}))
        )

    @pytest.mark.parametrize("ticket", ["ITSM-1042", "JIRA:OPS-7", "a.b_c-d", "x" * 64])
    def test_valid_ticket_ids(self, ticket):
        assert parse(user_requested_data(ticket_id=ticket)).ticket_id == ticket

    @pytest.mark.parametrize("ticket", ["", "x" * 65, "ITSM 1042", "ITSM/1042", "ITSM-1042'--", 1042])
    def test_invalid_ticket_ids(self, ticket):
        assert reasons_for("data.ticket_id", refused(user_requested_data(ticket_id=ticket)))


class TestEmails:
    @pytest.mark.parametrize("email", ["a.b+c@sub.example.co", "x_y%z@example-corp.com", "A@B.CD"])
    def test_valid(self, email):
        assert parse(user_requested_data(requester=email)).requester == email.lower()

    @pytest.mark.parametrize(
        "email",
        [
            "alice",
            "alice@",
            "@example.com",
            "alice@localhost",
            "alice@@example.com",
            "alice example@example.com",
            "a" * 65 + "@example.com",
            "alice@exa_mple.com",
            "alice.@example.com",
            ".alice@example.com",
            "алиса@example.com",
            "alice@example.com\n",
            "alice@-example.com",
        ],
    )
    def test_invalid(self, email):
        [reason] = reasons_for("data.requester", refused(user_requested_data(requester=email)))
        assert reason == "must be an email address such as 'alice@example.com'"

    def test_owner_is_required(self):
        data = user_requested_data()
        del data["user"]["owner"]
        assert reasons_for("data.user.owner", refused(data)) == ["required"]


class TestAccessMode:
    @pytest.mark.parametrize("mode", ["console", "programmatic"])
    def test_one_mode(self, mode):
        assert parse(user_requested_data(access_mode=mode)).access_mode == mode

    @pytest.mark.parametrize("mode", ["both", ["console"], ["console", "programmatic"], "Console", None, ""])
    def test_anything_else_names_the_rule(self, mode):
        [reason] = reasons_for("data.access_mode", refused(user_requested_data(access_mode=mode)))
        assert "one access mode per user" in reason


class TestGrants:
    def test_policy_and_template_together(self):
        grant = {
            "policy": "AliyunKafkaReadOnlyAccess",
            "type": "System",
            "template": "kafka-instance-readonly",
        }
        [reason] = reasons_for("data.grants[0]", refused(user_requested_data(grants=[grant])))
        assert "exactly one of 'policy' or 'template'" in reason

    @pytest.mark.parametrize("grant", [{}, {"type": "System"}, "AliyunKafkaReadOnlyAccess", ["policy"]])
    def test_neither_policy_nor_template(self, grant):
        assert reasons_for("data.grants[0]", refused(user_requested_data(grants=[grant])))

    @pytest.mark.parametrize("policy_type", ["system", "Managed", None])
    def test_policy_type_is_system_or_custom(self, policy_type):
        grant = {"policy": "AliyunKafkaReadOnlyAccess", "type": policy_type}
        assert reasons_for("data.grants[0].type", refused(user_requested_data(grants=[grant])))

    def test_template_grants_take_no_type(self):
        grant = {
            "template": "kafka-instance-readonly",
            "type": "Custom",
            "params": {"instance_id": "alikafka_x-1"},
        }
        assert reasons_for("data.grants[0].type", refused(user_requested_data(grants=[grant])))

    @pytest.mark.parametrize("group", ["rg_1", "rg-", "RG-abc", "rg-abc/def", "rg-" + "a" * 65])
    def test_resource_group_ids(self, group):
        grant = {"policy": "AliyunKafkaReadOnlyAccess", "type": "System", "resource_group": group}
        assert reasons_for("data.grants[0].resource_group", refused(user_requested_data(grants=[grant])))

    @pytest.mark.parametrize("name", ["Aliyun Kafka", "Aliyun*", "x" * 129, ""])
    def test_policy_names(self, name):
        assert reasons_for(
            "data.grants[0].policy", refused(user_requested_data(grants=[{"policy": name, "type": "System"}]))
        )

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"instance_id": {"nested": "x"}}, "data.grants[0].params.instance_id"),
            ({"instance_id": 1.5}, "data.grants[0].params.instance_id"),
            ({"instance_id": "x" * 257}, "data.grants[0].params.instance_id"),
            ({"Instance-Id": "x"}, "data.grants[0].params.Instance-Id"),
            ({f"p{index}": "x" for index in range(21)}, "data.grants[0].params"),
        ],
    )
    def test_params(self, params, field):
        grant = {"template": "kafka-instance-readonly", "params": params}
        assert reasons_for(field, refused(user_requested_data(grants=[grant])))

    def test_at_least_one_grant(self):
        assert reasons_for("data.grants", refused(user_requested_data(grants=[])))

    def test_at_most_twenty_grants(self):
        grants = [
            {"template": "kafka-instance-readonly", "params": {"instance_id": f"alikafka_x-{i}"}}
            for i in range(21)
        ]
        [reason] = reasons_for("data.grants", refused(user_requested_data(grants=grants)))
        assert "at most 20" in reason

    def test_duplicate_grants(self):
        grant = {"policy": "AliyunKafkaReadOnlyAccess", "type": "System"}
        assert reasons_for("data.grants", refused(user_requested_data(grants=[grant, dict(grant)]))) == [
            "the same grant is listed twice"
        ]

    def test_grants_must_be_a_list(self):
        assert reasons_for("data.grants", refused(user_requested_data(grants={"policy": "ReadOnlyAccess"})))


class TestDurations:
    @pytest.mark.parametrize(
        ("text", "expected"), [("P30D", timedelta(days=30)), ("PT12H", timedelta(hours=12))]
    )
    def test_iso_durations(self, text, expected):
        assert parse(user_requested_data(duration=text)).duration == expected

    def test_duration_is_optional(self):
        assert parse(without(user_requested_data(), "duration")).duration is None

    @pytest.mark.parametrize(
        ("text", "reason"),
        [
            ("P0D", "must be longer than zero"),
            ("PT0S", "must be longer than zero"),
            ("-P1D", "must be an ISO-8601 duration such as 'P30D', 'PT12H' or 'P1DT6H'"),
            ("P1M", "months and years have no fixed length; use days, e.g. 'P30D'"),
            ("P1Y", "months and years have no fixed length; use days, e.g. 'P30D'"),
            ("30 days", "must be an ISO-8601 duration such as 'P30D', 'PT12H' or 'P1DT6H'"),
            (3600, "must be an ISO-8601 duration string such as 'P30D' or 'PT12H'"),
            ("P99999D", "must not exceed ten years (P3650D)"),
        ],
    )
    def test_refused_durations(self, text, reason):
        assert reasons_for("data.duration", refused(user_requested_data(duration=text))) == [reason]


class TestTags:
    def test_seventeen_tags_leave_room_for_ramflows_three(self):
        tags = {f"k{index}": "v" for index in range(17)}
        assert parse(user_requested_data(user={"tags": tags})).user.tags == tags

    @pytest.mark.parametrize(
        "tags",
        [
            {f"k{index}": "v" for index in range(18)},
            {"managed-by": "me"},
            {"Owner": "mallory@example.com"},
            {"TICKET": "ITSM-1"},
            {"acs:rm:rgId": "x"},
            {"aliyun-team": "x"},
            {"Aliyun": "x"},
            {"k" * 129: "v"},
            {"team": "v" * 129},
            {"": "v"},
            {"https://evil": "v"},
            {"team": "pay\u202ements"},
        ],
    )
    def test_refused_tags(self, tags):
        assert reasons_for("data.user.tags", refused(user_requested_data(user={"tags": tags})))

    def test_reserved_key_reason_names_the_rule(self):
        [reason] = reasons_for(
            "data.user.tags", refused(user_requested_data(user={"tags": {"Managed-By": "x"}}))
        )
        assert reason == "tag key 'managed-by' is set by ramflow itself"

    def test_tag_values_are_strings(self):
        assert reasons_for("data.user.tags.team", refused(user_requested_data(user={"tags": {"team": 7}})))


class TestDeliveryKey:
    @pytest.mark.parametrize(
        "key",
        [
            "not base64!",
            base64.b64encode(b"k" * 31).decode(),
            base64.b64encode(b"k" * 33).decode(),
            base64.b64encode(bytes(32)).decode(),
            base64.urlsafe_b64encode(b"\xfb" * 32).decode(),
            "",
            " " + base64.b64encode(b"k" * 32).decode(),
        ],
    )
    def test_refused_keys(self, key):
        assert reasons_for("data.delivery_public_key", refused(user_requested_data(delivery_public_key=key)))

    def test_key_is_required(self):
        errors = refused(without(user_requested_data(), "delivery_public_key"))
        assert reasons_for("data.delivery_public_key", errors) == ["required"]


class TestFreeText:
    def test_injection_like_text_is_only_text(self):
        text = "'; DROP TABLE users; -- <script>alert(1)</script> ${instance_id} {{7*7}}"
        assert parse(user_requested_data(justification=text)).justification == text

    def test_justification_length(self):
        assert reasons_for("data.justification", refused(user_requested_data(justification="x" * 1025)))


class TestApproved:
    def approved(self, **changes):
        return {"ticket_id": "ITSM-1042", "approvers": ["dave@example.com"], **changes}

    def test_break_glass_defaults_to_false(self):
        assert parse(self.approved(), "ramflow.access.approved").break_glass is False

    @pytest.mark.parametrize("value", ["true", 1, "yes", None])
    def test_break_glass_is_a_real_boolean(self, value):
        errors = refused(self.approved(break_glass=value), "ramflow.access.approved")
        assert reasons_for("data.break_glass", errors)

    @pytest.mark.parametrize(
        "approvers",
        [
            [],
            ["dave@example.com", "Dave@Example.com"],
            [f"a{index}@example.com" for index in range(11)],
            "dave@example.com",
        ],
    )
    def test_approvers_non_empty_distinct_bounded_list(self, approvers):
        assert reasons_for(
            "data.approvers", refused(self.approved(approvers=approvers), "ramflow.access.approved")
        )

    def test_approvers_are_normalised(self):
        approval = parse(self.approved(approvers=["Dave@Example.COM"]), "ramflow.access.approved")
        assert approval.approvers == ["dave@example.com"]

    def test_invalid_approver_is_located(self):
        errors = refused(self.approved(approvers=["dave@example.com", "nope"]), "ramflow.access.approved")
        assert reasons_for("data.approvers[1]", errors)


class TestRevoked:
    def test_reason_is_required(self):
        errors = refused({"ticket_id": "ITSM-1042"}, "ramflow.access.revoked")
        assert reasons_for("data.reason", errors) == ["required"]


class TestOffboarded:
    def test_by_owner_with_default_grace(self):
        event = parse({"owner": "Alice@Example.com", "hr_event_id": "WD-778"}, "ramflow.user.offboarded")
        assert event.owner == "alice@example.com" and event.user_name is None and event.grace == timedelta(0)

    def test_by_user_name_with_grace(self):
        event = parse(
            {"user_name": "alice.kafka", "hr_event_id": "WD-778", "grace": "P7D"}, "ramflow.user.offboarded"
        )
        assert event.user_name == "alice.kafka" and event.grace == timedelta(days=7)

    @pytest.mark.parametrize(
        "data",
        [
            {"hr_event_id": "WD-778"},
            {"owner": "alice@example.com", "user_name": "alice.kafka", "hr_event_id": "WD-778"},
        ],
    )
    def test_exactly_one_target(self, data):
        assert refused(data, "ramflow.user.offboarded") == [
            {"field": "data", "reason": "give exactly one of 'owner' or 'user_name'"}
        ]

    @pytest.mark.parametrize("grace", ["-P1D", "P1M", "soon"])
    def test_grace_is_a_non_negative_duration(self, grace):
        data = {"owner": "alice@example.com", "hr_event_id": "WD-778", "grace": grace}
        assert reasons_for("data.grace", refused(data, "ramflow.user.offboarded"))

    def test_hr_event_id_is_required(self):
        assert reasons_for(
            "data.hr_event_id", refused({"owner": "alice@example.com"}, "ramflow.user.offboarded")
        )


class TestHostileValues:
    def test_huge_values_are_not_echoed(self):
        secret = "SECRET-" + "z" * 5000
        errors = refused(user_requested_data(ticket_id=secret, requester=secret, user={"logon_name": secret}))
        text = json.dumps(errors)
        assert "SECRET-" not in text and len(text) < 1000

    def test_hostile_keys_are_not_echoed(self):
        key = "<img src=x onerror=alert(1)>" * 10
        errors = refused({**user_requested_data(), key: "x"})
        assert errors == [{"field": "data[?]", "reason": "not an accepted field"}]

    def test_wrong_container_types(self):
        errors = refused(user_requested_data() | {"user": ["alice"]})
        assert reasons_for("data.user", errors)
