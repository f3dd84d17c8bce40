"""GetAccessKeyLastUsed through the official SDK, the emulator's one clock, and its HTTP control surface."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import requests
from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_tea_openapi.exceptions import ClientException

from local.emulator.server import EmulatorServer
from shared.cloud.clients import CloudClients, CloudCredentials

DAY = 86_400


def _date(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


def _user_with_key(root: CloudClients, name: str) -> CloudClients:
    root.ram.create_user(ram_models.CreateUserRequest(user_name=name))
    key = root.ram.create_access_key(ram_models.CreateAccessKeyRequest(user_name=name)).body.access_key
    return CloudClients(root.settings, CloudCredentials(key.access_key_id, key.access_key_secret))


def _last_used(root: CloudClients, name: str, key_id: str) -> str | None:
    request = ram_models.GetAccessKeyLastUsedRequest(user_name=name, user_access_key_id=key_id)
    return root.ram.get_access_key_last_used(request).body.access_key_last_used.last_used_date


def test_last_used_is_empty_until_the_key_signs_a_call_then_follows_the_clock(
    root_clients: CloudClients, emulator_server: EmulatorServer
) -> None:
    own = _user_with_key(root_clients, "etl")
    key_id = own.credentials.access_key_id
    assert _last_used(root_clients, "etl", key_id) is None
    own.sts.get_caller_identity()
    first = _date(_last_used(root_clients, "etl", key_id))
    assert abs(first.timestamp() - emulator_server.emulator.clock()) < 5

    emulator_server.emulator.advance(10 * DAY)
    assert _date(_last_used(root_clients, "etl", key_id)) == first  # asking is not using
    own.ram.list_access_keys(ram_models.ListAccessKeysRequest())
    assert _date(_last_used(root_clients, "etl", key_id)) - first >= timedelta(days=10)


def test_a_refused_signature_does_not_count_as_use(root_clients: CloudClients) -> None:
    own = _user_with_key(root_clients, "etl")
    forged = CloudClients(root_clients.settings, CloudCredentials(own.credentials.access_key_id, "wrong"))
    with pytest.raises(ClientException):
        forged.sts.get_caller_identity()
    assert _last_used(root_clients, "etl", own.credentials.access_key_id) is None


def test_a_user_asks_about_its_own_key_without_a_user_name(root_clients: CloudClients) -> None:
    own = _user_with_key(root_clients, "etl")
    request = ram_models.GetAccessKeyLastUsedRequest(user_access_key_id=own.credentials.access_key_id)
    assert own.ram.get_access_key_last_used(request).body.access_key_last_used.last_used_date


@pytest.mark.parametrize(
    "request_fields, code",
    [
        (
            {"user_name": "etl", "user_access_key_id": "LTAI5tNoSuchKey000000000"},
            "EntityNotExist.User.AccessKey",
        ),
        ({"user_name": "nobody", "user_access_key_id": "LTAI5tNoSuchKey000000000"}, "EntityNotExist.User"),
        ({"user_name": "etl"}, "MissingParameter"),
    ],
)
def test_get_access_key_last_used_refusals(root_clients: CloudClients, request_fields, code) -> None:
    _user_with_key(root_clients, "etl")
    with pytest.raises(ClientException) as info:
        root_clients.ram.get_access_key_last_used(ram_models.GetAccessKeyLastUsedRequest(**request_fields))
    assert info.value.code.startswith(code)


def test_another_users_key_is_not_found_under_this_user(root_clients: CloudClients) -> None:
    other = _user_with_key(root_clients, "other")
    _user_with_key(root_clients, "etl")
    request = ram_models.GetAccessKeyLastUsedRequest(
        user_name="etl", user_access_key_id=other.credentials.access_key_id
    )
    with pytest.raises(ClientException) as info:
        root_clients.ram.get_access_key_last_used(request)
    assert info.value.code == "EntityNotExist.User.AccessKey"


def test_one_clock_creation_dates_and_sts_expiry_move_together(
    root_clients: CloudClients, emulator_server: EmulatorServer
) -> None:
    """Advancing the clock (over HTTP) moves creation dates and expires STS sessions alike."""
    control = emulator_server.endpoint + "/emulator-api"
    root_clients.ram.create_user(ram_models.CreateUserRequest(user_name="before"))
    before = _date(
        root_clients.ram.get_user(ram_models.GetUserRequest(user_name="before")).body.user.create_date
    )
    moved = requests.post(control + "/clock/advance", json={"duration": "P91D"}, timeout=5).json()
    assert moved["offset_seconds"] == 91 * DAY
    assert abs(_date(moved["now"]) - before - timedelta(days=91)) < timedelta(seconds=5)
    after = root_clients.ram.create_user(
        ram_models.CreateUserRequest(user_name="after")
    ).body.user.create_date
    assert _date(after) - before >= timedelta(days=91)
    own = _user_with_key(root_clients, "etl")
    key = root_clients.ram.list_access_keys(ram_models.ListAccessKeysRequest(user_name="etl")).body
    assert _date(key.access_keys.access_key[0].create_date) - before >= timedelta(days=91)
    assert own.sts.get_caller_identity().body.user_id  # the key works at the moved time

    session = emulator_server.emulator.issue_sts_session(
        account_id=emulator_server.emulator.default_account_id,
        role_name="r",
        role_id="1",
        session_name="s",
        duration_seconds=3600,
        session_policy=None,
    )
    sts = CloudClients(
        root_clients.settings,
        CloudCredentials(session.access_key_id, session.access_key_secret, session.security_token),
    )
    assert sts.sts.get_caller_identity().body.arn
    requests.post(control + "/clock/advance", json={"duration": "PT1H"}, timeout=5).raise_for_status()
    with pytest.raises(ClientException) as info:
        sts.sts.get_caller_identity()
    assert info.value.code == "InvalidSecurityToken.Expired"


def test_control_surface_reset_and_recorder(
    root_clients: CloudClients, emulator_server: EmulatorServer
) -> None:
    control = emulator_server.endpoint + "/emulator-api"
    root_clients.ram.create_user(ram_models.CreateUserRequest(user_name="gone"))
    requests.post(control + "/clock/advance", json={"duration": "P1D"}, timeout=5).raise_for_status()
    calls = requests.get(control + "/recorder", params={"action": "CreateUser"}, timeout=5).json()
    assert [c["action"] for c in calls["calls"]] == ["CreateUser"]
    assert calls["calls"][0]["params"]["UserName"] == "gone"
    since = requests.get(control + "/recorder", params={"since": calls["last_seq"]}, timeout=5).json()
    assert since["calls"] == []

    assert requests.post(control + "/reset", timeout=5).json()["offset_seconds"] == 0
    with pytest.raises(ClientException) as info:  # the root key still works; the user is gone
        root_clients.ram.get_user(ram_models.GetUserRequest(user_name="gone"))
    assert info.value.code == "EntityNotExist.User"
    after = requests.get(control + "/recorder", timeout=5).json()["calls"]
    assert [c["action"] for c in after] == ["GetUser"]


def test_control_surface_arms_a_fault_for_a_client_in_another_process(
    root_clients: CloudClients, emulator_server: EmulatorServer
) -> None:
    control = emulator_server.endpoint + "/emulator-api"
    armed = requests.post(
        control + "/faults", json={"fail_nth_call": 1, "when": "after", "actions": ["CreateUser"]}, timeout=5
    )
    assert armed.status_code == 200
    with pytest.raises(Exception):  # noqa: B017 - the SDK raises its server exception for the 500
        root_clients.ram.create_user(ram_models.CreateUserRequest(user_name="half"))
    assert "half" in emulator_server.emulator.account.ram.users  # it took effect, the reply was lost


@pytest.mark.parametrize(
    "method, path, body, status, field",
    [
        ("POST", "/clock/advance", {"duration": "P1M"}, 400, "duration"),
        ("POST", "/clock/advance", {}, 400, "duration"),
        ("POST", "/clock/advance", {"duration": "-P1D"}, 400, "duration"),
        ("GET", "/recorder?since=x", None, 400, "since"),
        ("POST", "/faults", {"fail_nth_call": 0}, 400, "fail_nth_call"),
        ("GET", "/reset", None, 405, "method"),
        ("GET", "/nothing-here", None, 404, "path"),
    ],
)
def test_control_surface_refusals_name_the_field(
    emulator_server: EmulatorServer, method, path, body, status, field
) -> None:
    before = emulator_server.emulator.clock_offset
    reply = requests.request(method, emulator_server.endpoint + "/emulator-api" + path, json=body, timeout=5)
    assert reply.status_code == status
    assert reply.json()["field"] == field
    assert emulator_server.emulator.clock_offset == before


def test_serve_against_a_separate_emulator_follows_its_clock(emulator_server: EmulatorServer) -> None:
    """`ramflow serve --cloud URL` of a `ramflow emulator`: the functions' clock is the emulator's."""
    from local.fcruntime.stack import RemoteEmulatorClock

    clock = RemoteEmulatorClock.probe(emulator_server.endpoint)
    assert clock is not None and abs(clock() - emulator_server.emulator.clock()) < 5
    clock.refresh = 0.0
    emulator_server.emulator.advance(3 * DAY)
    assert abs(clock() - emulator_server.emulator.clock()) < 5
    assert RemoteEmulatorClock.probe("http://127.0.0.1:9") is None  # nothing listens: the wall clock
