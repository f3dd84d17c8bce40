"""The world the revoke / offboard / reconcile tests build: users made by the provisioning flow,
then changed by hand through the official SDK (keys, login profiles, MFA, groups, policies), as
people do out of band. No tests live here; the other test_offboard*/revoke*/reconcile* modules
import it."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_resourcemanager20200331 import models as rm_models

from local.emulator.core import Emulator
from local.testing import ROOT_CREDENTIALS
from shared.cloud.clients import CloudClients
from shared.config import Settings
from shared.errors import FlowFailed
from shared.flows.provision import approve, request
from shared.handler import Flow, process_event
from shared.models.events import (
    ACCESS_APPROVED,
    ACCESS_REVOKED,
    USER_OFFBOARDED,
    USER_REQUESTED,
    AccessApproved,
    CloudEvent,
    UserRequested,
)
from shared.models.results import Result
from shared.runtime import Runtime
from shared.sealing import generate_keypair
from shared.store import StateStore

APPROVER = "dave@example.com"
REQUESTER = "carol@example.com"
SYSTEM_POLICY = "AliyunKafkaReadOnlyAccess"
TEMPLATE = {"template": "kafka-instance-readonly", "params": {"instance_id": "alikafka_post-cn-7mz2"}}


class Clock:
    """The ledger's clock, moved by hand: durations and grace periods pass without sleeping."""

    def __init__(self) -> None:
        self.now = datetime.now(timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass
class World:
    emulator: Emulator
    clients: CloudClients
    settings: Settings
    clock: Clock = field(default_factory=Clock)
    store: StateStore | None = None
    public_key: str = field(default_factory=lambda: generate_keypair()[1])

    def __post_init__(self) -> None:
        self.store = self.store or StateStore.from_url(self.settings.store)

    @property
    def ram(self) -> Any:
        return self.emulator.account.ram

    def runtime(self, **overrides: Any) -> Runtime:
        """A fresh runtime (its own Cloud and stats) on the same store, clock and account."""
        settings = self.settings.model_copy(update=overrides)
        assert self.store is not None
        return Runtime(settings, ROOT_CREDENTIALS, self.store, clock=self.clock)

    # --- provisioning, as the approval workflow would drive it ------------------------------------
    def provision(
        self,
        name: str,
        owner: str,
        *,
        ticket: str | None = None,
        mode: str = "programmatic",
        grants: list[dict[str, Any]] | None = None,
        duration: str | None = None,
    ) -> Result:
        ticket = ticket or f"T-{uuid.uuid4().hex[:8]}"
        data = UserRequested.model_validate(
            {
                "ticket_id": ticket,
                "requester": REQUESTER,
                "user": {"logon_name": name, "owner": owner, "email": owner},
                "access_mode": mode,
                "grants": grants if grants is not None else [{"policy": SYSTEM_POLICY, "type": "System"}],
                "justification": "tests",
                "delivery_public_key": self.public_key,
                **({"duration": duration} if duration else {}),
            }
        )
        rt = self.runtime()
        result = request(data, event(USER_REQUESTED, data.model_dump(mode="json")), rt)
        if result.status == "pending_approval":
            approval = AccessApproved(ticket_id=ticket, approvers=[APPROVER])
            result = approve(approval, event(ACCESS_APPROVED, approval.model_dump(mode="json")), rt)
        assert result.status == "completed", result
        return result

    # --- out of band, through the official SDK, as a person would ---------------------------------
    def add_key(self, name: str) -> str:
        request = ram_models.CreateAccessKeyRequest(user_name=name)
        return str(self.clients.ram.create_access_key(request).body.access_key.access_key_id)

    def add_login_profile(self, name: str) -> None:
        self.clients.ram.create_login_profile(
            ram_models.CreateLoginProfileRequest(user_name=name, password="Hand-made-Passw0rd!")
        )

    def bind_mfa(self, name: str) -> str:
        device = self.clients.ram.create_virtual_mfadevice(
            ram_models.CreateVirtualMFADeviceRequest(virtual_mfadevice_name=f"{name}-phone".replace(".", "-"))
        ).body.virtual_mfadevice
        self.clients.ram.bind_mfadevice(
            ram_models.BindMFADeviceRequest(
                user_name=name,
                serial_number=device.serial_number,
                authentication_code_1="123456",
                authentication_code_2="654321",
            )
        )
        return str(device.serial_number)

    def add_to_group(self, name: str, group: str) -> None:
        if group not in self.ram.groups:
            self.clients.ram.create_group(ram_models.CreateGroupRequest(group_name=group))
        self.clients.ram.add_user_to_group(ram_models.AddUserToGroupRequest(user_name=name, group_name=group))

    def attach(self, name: str, policy: str, policy_type: str = "System") -> None:
        self.clients.ram.attach_policy_to_user(
            ram_models.AttachPolicyToUserRequest(user_name=name, policy_name=policy, policy_type=policy_type)
        )

    def custom_policy(self, policy: str) -> str:
        document = '{"Version":"1","Statement":[{"Effect":"Allow","Action":"ecs:Describe*","Resource":"*"}]}'
        self.clients.ram.create_policy(
            ram_models.CreatePolicyRequest(policy_name=policy, policy_document=document)
        )
        return policy

    def attach_in_group(
        self, name: str, resource_group: str, policy: str, policy_type: str = "System"
    ) -> None:
        self.clients.resource_manager.attach_policy(
            rm_models.AttachPolicyRequest(
                resource_group_id=resource_group,
                policy_name=policy,
                policy_type=policy_type,
                principal_name=f"{name}@{self.emulator.account.alias}.onaliyun.com",
                principal_type="IMSUser",
            )
        )

    def resource_group(self, name: str = "payments") -> str:
        request = rm_models.CreateResourceGroupRequest(name=name, display_name=name)
        return str(self.clients.resource_manager.create_resource_group(request).body.resource_group.id)

    def unmanaged_user(self, name: str, owner: str) -> None:
        """A user made by hand, even carrying an `owner` tag, but never `managed-by=ramflow`."""
        self.clients.ram.create_user(ram_models.CreateUserRequest(user_name=name))
        self.ram.users[name].tags.update({"owner": owner})

    # --- what RAM holds now ----------------------------------------------------------------------
    def holds(self, name: str) -> dict[str, Any] | None:
        """Everything the user has, straight from the emulator's state; None when it is gone."""
        user = self.ram.users.get(name)
        if user is None:
            return None
        return {
            "login_profile": user.login_profile is not None,
            "keys": {k: v.status for k, v in user.access_keys.items()},
            "policies": sorted(
                f"{a.policy_type}:{a.policy_name}@{a.resource_group_id or 'account'}"
                for a in user.policies.values()
            ),
            "groups": sorted(user.groups),
            "mfa": user.mfa_serial_number,
        }

    def custom_policies(self) -> set[str]:
        return set(self.ram.policies["Custom"])

    # --- crashes ---------------------------------------------------------------------------------
    def process_with_crash(
        self, n: int, event: CloudEvent, flows: Mapping[str, Flow], rt: Runtime
    ) -> tuple[Result, bool]:
        """Processes `event` with cloud call n failing after it took effect (a crash between the cloud
        acting and ramflow hearing of it): (the result, whether there was a call n to fail)."""
        seq = self.emulator.recorder.last_seq
        self.emulator.faults.fail_nth_call(n, when="after")
        try:
            result = process_event(event, flows, rt, owner="first", lease_until=2e9)
        except FlowFailed as failed:
            result = failed.result
        fired = any(c.outcome == "InternalError" for c in self.emulator.recorder.since(seq))
        self.emulator.faults.clear()
        return result, fired


def event(event_type: str, data: dict[str, Any], source: str = "tests.example.com") -> CloudEvent:
    return CloudEvent.model_validate(
        {"specversion": "1.0", "id": str(uuid.uuid4()), "source": source, "type": event_type, "data": data}
    )


def offboarded(**data: Any) -> CloudEvent:
    return event(USER_OFFBOARDED, {"hr_event_id": "WD-778", **data}, source="hr.example.com")


def revoked(ticket: str) -> CloudEvent:
    return event(ACCESS_REVOKED, {"ticket_id": ticket, "reason": "moved team"})


def make_world(
    emulator: Emulator, root_clients: CloudClients, cloud_settings: Settings, **settings: Any
) -> World:
    defaults: dict[str, Any] = {"rate_limit_qps": 1000.0, "account_alias": None}
    return World(emulator, root_clients, cloud_settings.model_copy(update={**defaults, **settings}))


Check = Callable[[World], None]
