"""A rotated secret is sealed to whoever holds the current key: the delivery key of the ticket that
produced the credential, carried forward by each rotation — never the key of a later ticket of the
same user, filed by someone who may not hold this key."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.errors import SealedSecretUnreadable
from shared.flows.keys import resume, rotate
from shared.sealing import generate_keypair, open_sealed
from shared.store.records import AccessKeyRecord
from tests.flows.test_keys import OWNER, USER, make, provisioned_key
from tests.flows.test_offboard_world import World

pytest_plugins = ["local.testing"]

MORE = [{"template": "kafka-instance-readonly", "params": {"instance_id": "alikafka_post-cn-7mz2"}}]


@pytest.fixture
def two_tickets(emulator, root_clients, cloud_settings) -> tuple[World, str, str]:
    """The key made by the first ticket (its holder: `first`); a second ticket, with another delivery
    key (`second`), adds a grant to the same user and makes no key."""
    first, first_public = generate_keypair()
    world = make(
        emulator,
        root_clients,
        cloud_settings,
        first_public,
        key_rotation_overlap=timedelta(days=1),
        key_rotation_delete_after=timedelta(days=1),
    )
    provisioned_key(world, first)
    second, second_public = generate_keypair()
    world.public_key = second_public
    assert world.provision(USER, OWNER, grants=MORE).credential is None
    return world, first, second


def _opens(private: str, sealed: str | None) -> bool:
    assert sealed is not None
    try:
        return bool(open_sealed(private, sealed))
    except SealedSecretUnreadable:
        return False


def test_the_secret_goes_to_the_holder_of_the_current_key_not_the_latest_ticket(two_tickets) -> None:
    world, first, second = two_tickets
    rotation = rotate(world.runtime(), USER, reason="age", requested_by="reconcile")
    assert rotation is not None and rotation.state == "delivered"
    assert _opens(first, rotation.sealed_secret) and not _opens(second, rotation.sealed_secret)


def test_each_rotation_carries_the_holder_forward(two_tickets) -> None:
    world, first, second = two_tickets
    rt = world.runtime()
    rotate(rt, USER, reason="age", requested_by="reconcile")
    for _ in range(2):  # through the overlap and the deletion
        world.clock.advance(timedelta(days=1, hours=1))
        resume(rt, USER)
    done = rt.store.ledger.get_rotation(USER)
    assert done is not None and done.state == "completed"
    credential = rt.store.ledger.get_user(USER).credential
    assert isinstance(credential, AccessKeyRecord) and credential.ticket_id is None
    assert (
        credential.recipient == done.recipient and credential.delivery_public_key == done.delivery_public_key
    )

    again = rotate(rt, USER, reason="age", requested_by="reconcile")
    assert again is not None and again.old_key_id == credential.access_key_id
    assert _opens(first, again.sealed_secret) and not _opens(second, again.sealed_secret)


def test_a_credential_recorded_without_its_holder_falls_back_to_its_own_ticket(two_tickets) -> None:
    world, first, second = two_tickets
    rt = world.runtime()

    def forget_holder(user) -> None:  # as recorded before the holder was kept with the credential
        user.credential = user.credential.model_copy(update={"delivery_public_key": None, "recipient": None})

    rt.store.ledger.update_user(USER, forget_holder)
    rotation = rotate(rt, USER, reason="age", requested_by="reconcile")
    assert rotation is not None
    assert _opens(first, rotation.sealed_secret) and not _opens(second, rotation.sealed_secret)
