"""The shipped catalog, and the loader refusing every unsafe or malformed variation of it."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest
import yaml

from shared.config import DEFAULT_CATALOG
from shared.errors import ConfigError
from shared.policy import Catalog

SHIPPED: dict[str, Any] = yaml.safe_load(DEFAULT_CATALOG.read_text(encoding="utf-8"))


def load(data: dict[str, Any]) -> Catalog:
    return Catalog.from_yaml(yaml.safe_dump(data), origin="test.yaml")


def refused(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        load(data)
    return str(caught.value)


def shipped() -> dict[str, Any]:
    return copy.deepcopy(SHIPPED)


class TestShippedCatalog:
    catalog = Catalog.load(DEFAULT_CATALOG)

    def test_version(self):
        assert self.catalog.version == 1

    def test_kafka_read_only_is_auto_approved(self):
        entry = self.catalog.policy("AliyunKafkaReadOnlyAccess")
        assert entry.auto_approve and entry.approvers == 0 and not entry.high_risk

    @pytest.mark.parametrize("name", ["AliyunKafkaFullAccess", "ReadOnlyAccess"])
    def test_one_approver_entries(self, name):
        entry = self.catalog.policy(name)
        assert entry.approvers == 1 and not entry.auto_approve and not entry.high_risk

    @pytest.mark.parametrize(
        "name", ["AdministratorAccess", "AliyunRAMFullAccess", "AliyunSTSAssumeRoleAccess"]
    )
    def test_break_glass_entries(self, name):
        entry = self.catalog.policy(name)
        assert entry.high_risk and entry.approvers == 2 and not entry.auto_approve
        assert entry.max_duration == timedelta(hours=12)

    def test_ram_full_access_is_account_scope_only(self):
        assert self.catalog.policy("AliyunRAMFullAccess").scopes == ["account"]

    def test_every_entry_is_time_bound(self):
        entries = [*self.catalog.policies.values(), *self.catalog.templates.values()]
        assert all(timedelta(0) < entry.max_duration <= timedelta(days=90) for entry in entries)

    def test_kafka_templates(self):
        readonly = self.catalog.template("kafka-instance-readonly")
        operator = self.catalog.template("kafka-instance-operator")
        assert readonly.auto_approve and not operator.auto_approve and operator.approvers == 1
        for template in (readonly, operator):
            assert (
                template.params_schema["properties"]["instance_id"]["pattern"]
                == "^alikafka_[a-z]+-[a-z0-9-]+$"
            )

    def test_unknown_names(self):
        assert self.catalog.policy("AliyunECSFullAccess") is None
        assert self.catalog.template("kafka-everything") is None


class TestLoaderRefuses:
    def test_missing_file(self, tmp_path):
        with pytest.raises(ConfigError, match="cannot be read"):
            Catalog.load(tmp_path / "absent.yaml")

    def test_invalid_yaml(self):
        with pytest.raises(ConfigError, match="not valid YAML"):
            Catalog.from_yaml("version: 1\npolicies: [unclosed")

    def test_duplicate_keys(self):
        text = DEFAULT_CATALOG.read_text(encoding="utf-8")
        doubled = text.replace(
            "  AliyunKafkaFullAccess:\n",
            "  AliyunKafkaReadOnlyAccess:\n    description: again\n  AliyunKafkaFullAccess:\n",
        )
        with pytest.raises(ConfigError, match="duplicate key 'AliyunKafkaReadOnlyAccess'"):
            Catalog.from_yaml(doubled)

    @pytest.mark.parametrize("document", ["", "[]", "42"])
    def test_not_a_mapping(self, document):
        with pytest.raises(ConfigError):
            Catalog.from_yaml(document)

    def test_unknown_field_is_named(self):
        data = shipped()
        data["policies"]["ReadOnlyAccess"]["aproovers"] = 1
        assert "policies.ReadOnlyAccess.aproovers: not an accepted field" in refused(data)

    def test_origin_is_named(self):
        data = shipped()
        data["version"] = 0
        assert refused(data).startswith("policy catalog test.yaml: version")

    @pytest.mark.parametrize(
        ("change", "message"),
        [
            ({"auto_approve": True}, "auto_approve: true goes with approvers: 0"),
            ({"approvers": 0}, "auto_approve: true goes with approvers: 0"),
            ({"max_duration": "P1M"}, "months and years"),
            ({"max_duration": "P0D"}, "longer than zero"),
            ({"scopes": []}, "scopes"),
            ({"scopes": ["account", "account"]}, "listed once each"),
            ({"scopes": ["global"]}, "scopes"),
            ({"approvers": "1"}, "approvers"),
            ({"approvers": 9}, "approvers"),
            ({"type": "Managed"}, "type"),
        ],
    )
    def test_unsafe_policy_entries(self, change, message):
        data = shipped()
        data["policies"]["ReadOnlyAccess"].update(change)
        assert message in refused(data)

    @pytest.mark.parametrize(
        ("change", "message"),
        [
            ({"approvers": 1}, "at least 2 approvers"),
            ({"max_duration": "P2D"}, "at most 24 hours"),
        ],
    )
    def test_unsafe_high_risk_entries(self, change, message):
        data = shipped()
        data["policies"]["AdministratorAccess"].update(change)
        assert message in refused(data)

    @pytest.mark.parametrize(
        "name", ["AdministratorAccess", "AliyunRAMFullAccess", "AliyunSTSAssumeRoleAccess"]
    )
    def test_known_high_risk_policies_must_be_marked(self, name):
        data = shipped()
        data["policies"][name].update(high_risk=False)
        assert "high-risk by definition" in refused(data)


class TestTemplateChecks:
    def template(self, **change: Any) -> dict[str, Any]:
        data = shipped()
        data["templates"]["kafka-instance-operator"].update(change)
        return data

    def test_document_is_checked(self):
        document = {"Version": "1", "Statement": [{"Effect": "Permit", "Action": "x:y", "Resource": "*"}]}
        assert "document.Statement[0].Effect" in refused(self.template(document=document))

    def test_document_version(self):
        document = {
            "Version": 1,
            "Statement": [{"Effect": "Allow", "Action": "alikafka:ListTopic", "Resource": "*"}],
        }
        assert "document.Version" in refused(self.template(document=document))

    def test_not_action_is_not_accepted_in_templates(self):
        document = {"Version": "1", "Statement": [{"Effect": "Allow", "NotAction": "ram:*", "Resource": "*"}]}
        assert "NotAction" in refused(self.template(document=document))

    def test_invalid_json_schema(self):
        assert "not a valid JSON schema" in refused(self.template(params_schema={"type": "objekt"}))

    def test_schema_must_close_additional_properties(self):
        schema = {
            "type": "object",
            "required": ["instance_id"],
            "properties": {"instance_id": {"type": "string"}},
        }
        assert "additionalProperties: false" in refused(self.template(params_schema=schema))

    def test_placeholders_must_be_required(self):
        schema = {
            "type": "object",
            "additionalProperties": False,
            "properties": {"instance_id": {"type": "string"}},
        }
        assert "placeholders not required" in refused(self.template(params_schema=schema, example={}))

    def test_example_must_render(self):
        assert "example does not render" in refused(self.template(example={"instance_id": "not-a-kafka-id"}))

    def test_high_risk_document_must_be_declared(self):
        document = {
            "Version": "1",
            "Statement": [{"Effect": "Allow", "Action": "ram:*", "Resource": "${instance_id}"}],
        }
        assert "mark it high_risk" in refused(self.template(document=document))

    def test_declared_high_risk_template_loads(self):
        document = {
            "Version": "1",
            "Statement": [{"Effect": "Allow", "Action": "ram:*", "Resource": "${instance_id}"}],
        }
        catalog = load(
            self.template(
                document=document, high_risk=True, approvers=2, max_duration="PT8H", scopes=["account"]
            )
        )
        assert catalog.template("kafka-instance-operator").high_risk

    @pytest.mark.parametrize("name", ["Kafka-Operator", "kafka operator", "-kafka", "k" * 64])
    def test_template_names(self, name):
        data = shipped()
        data["templates"][name] = data["templates"].pop("kafka-instance-operator")
        assert "templates" in refused(data)


class TestKeyRotationDays:
    """A catalog entry may turn automatic AccessKey rotation on for the users holding its grant."""

    def test_absent_by_default(self):
        catalog = Catalog.load(DEFAULT_CATALOG)
        entries = [*catalog.policies.values(), *catalog.templates.values()]
        assert all(entry.key_rotation_days is None for entry in entries)

    def test_accepted_within_cloud_configs_90_days(self):
        data = yaml.safe_load(DEFAULT_CATALOG.read_text(encoding="utf-8"))
        data["policies"]["AliyunKafkaFullAccess"]["key_rotation_days"] = 30
        assert Catalog.from_yaml(yaml.safe_dump(data)).policy("AliyunKafkaFullAccess").key_rotation_days == 30

    @pytest.mark.parametrize(
        ("value", "reason"),
        [
            (0, "greater than or equal to 1"),
            (91, "less than or equal to 90"),
            ("30", "integer"),
            (True, "integer"),
        ],
    )
    def test_refused_naming_the_field(self, value, reason):
        data = yaml.safe_load(DEFAULT_CATALOG.read_text(encoding="utf-8"))
        data["policies"]["AliyunKafkaFullAccess"]["key_rotation_days"] = value
        with pytest.raises(
            ConfigError, match=r"policies\.AliyunKafkaFullAccess\.key_rotation_days"
        ) as refused:
            Catalog.from_yaml(yaml.safe_dump(data))
        assert reason in str(refused.value)
