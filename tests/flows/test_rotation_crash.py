"""A crash between the create step's two ledger writes (the rotation's record, then the user's)
leaves neither the user's credential on the old key nor the rotation's intent behind: the next step
makes both writes again before anything else."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.errors import StoreError
from shared.flows.keys import resume, rotate
from shared.sealing import generate_keypair
from shared.store.ledger import Ledger
from shared.store.records import AccessKeyRecord
from tests.flows.test_keys import USER, keys, make, provisioned_key

pytest_plugins = ["local.testing"]


def test_a_crash_after_the_rotation_record_is_settled_by_the_next_step(
    emulator, root_clients, cloud_settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    private, public = generate_keypair()
    world = make(
        emulator,
        root_clients,
        cloud_settings,
        public,
        key_rotation_overlap=timedelta(days=1),
        key_rotation_delete_after=timedelta(days=1),
    )
    old = provisioned_key(world, private).credentials.access_key_id
    rt = world.runtime()
    update_user = Ledger.update_user

    def killed(self: Ledger, name: str, change: object) -> object:
        raise StoreError("the invocation was killed")

    monkeypatch.setattr(Ledger, "update_user", killed)
    with pytest.raises(StoreError):
        rotate(rt, USER, requested_by="sec@example.com")
    monkeypatch.setattr(Ledger, "update_user", update_user)
    ledger = rt.store.ledger
    rotation = ledger.get_rotation(USER)
    assert rotation is not None and rotation.state == "delivered" and rotation.new_key_id
    assert ledger.get_user(USER).credential.access_key_id == old  # type: ignore[union-attr]  # the crash

    resume(rt, USER)  # a replay or the next pass, before the overlap ends
    credential = ledger.get_user(USER).credential
    assert isinstance(credential, AccessKeyRecord) and credential.access_key_id == rotation.new_key_id
    assert credential.sealed_secret == rotation.sealed_secret and credential.ticket_id is None
    assert ledger.get_intent(f"access_key/{USER}") is None

    for _ in range(2):
        world.clock.advance(timedelta(days=1, hours=1))
        resume(rt, USER)
    assert ledger.get_rotation(USER).state == "completed"
    assert keys(world) == {rotation.new_key_id: "Active"}
    assert ledger.get_user(USER).credential.access_key_id == rotation.new_key_id  # type: ignore[union-attr]
