"""ImsGateway: user tags by logon name, and the users carrying a tag."""

from __future__ import annotations

import pytest

from local.emulator.core import Emulator
from shared.cloud import Cloud
from shared.errors import EntityNotFound

MANAGED = {"managed-by": "ramflow", "ticket": "ITSM-1042", "owner": "alice@example.com"}


@pytest.fixture
def users(cloud: Cloud) -> list[str]:
    names = ["alice.kafka", "alice.ops", "bob.kafka"]
    for name in names:
        cloud.ram.create_user(name)
    return names


def test_tag_list_untag(cloud: Cloud, users: list[str]) -> None:
    cloud.ims.tag_user("alice.kafka", MANAGED)
    assert cloud.ims.list_user_tags("alice.kafka") == MANAGED
    cloud.ims.tag_user("alice.kafka", {"ticket": "ITSM-2000"})
    assert cloud.ims.list_user_tags("alice.kafka")["ticket"] == "ITSM-2000"
    cloud.ims.untag_user("alice.kafka", ["ticket", "not-there"])
    assert cloud.ims.list_user_tags("alice.kafka") == {"managed-by": "ramflow", "owner": "alice@example.com"}
    assert cloud.ims.list_user_tags("bob.kafka") == {}


def test_users_are_named_in_the_account_domain(cloud: Cloud, users: list[str], emulator: Emulator) -> None:
    cloud.ims.tag_user("alice.kafka", {"team": "payments"})
    sent = next(c.params for c in emulator.recorder.calls if c.action == "TagResources")
    assert sent["ResourcePrincipalName.1"] == f"alice.kafka@{emulator.account.alias}.onaliyun.com"
    assert sent["Tag.1.Key"] == "team" and sent["Tag.1.Value"] == "payments"


def test_the_alias_is_read_once(cloud: Cloud, users: list[str], calls) -> None:
    for name in users:
        cloud.ims.tag_user(name, {"team": "payments"})
    assert len(calls("GetAccountAlias")) == 1


def test_users_with_tag_follow_every_page(cloud: Cloud, users: list[str], calls) -> None:
    for name in ("alice.kafka", "alice.ops"):
        cloud.ims.tag_user(name, MANAGED)
    cloud.ims.tag_user("bob.kafka", {**MANAGED, "owner": "bob@example.com"})
    cloud.ims.page_size = 2

    assert cloud.ims.users_with_tag("owner", "alice@example.com") == ["alice.kafka", "alice.ops"]
    assert len(calls("ListTagResources")) == 3  # 6 tag rows, two a page
    assert cloud.ims.users_with_tag("owner", "nobody@example.com") == []


def test_tagging_a_missing_user(cloud: Cloud) -> None:
    with pytest.raises(EntityNotFound):
        cloud.ims.tag_user("nobody", {"team": "x"})
    with pytest.raises(EntityNotFound):
        cloud.ims.list_user_tags("nobody")


def test_empty_changes_make_no_call(cloud: Cloud, users: list[str], emulator: Emulator) -> None:
    cloud.ims.tag_user("alice.kafka", {})
    cloud.ims.untag_user("alice.kafka", [])
    assert emulator.recorder.actions() == ["CreateUser"] * 3
