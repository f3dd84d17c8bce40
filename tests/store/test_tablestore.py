"""What only the Tablestore backend has: its URL, tombstones and purge, the wire it speaks.

The store contract itself runs against Tablestore in test_backend.py, test_idempotency.py and
test_ledger.py (the `tablestore` parameter), through the loopback server in tablestore_fake.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from shared.errors import ConfigError, StoreError
from shared.store import open_store
from shared.store.tablestore import EnvironmentCredentials, TablestoreBackend, create_table
from tests.store.tablestore_fake import FakeTablestore


def rows_of(fake: FakeTablestore, url: str) -> dict[str, dict[str, Any]]:
    table = fake.tables[url.split("/")[3].split("?")[0]]
    return {
        pk[0][1]: {name: value for name, (value, _) in columns.items()} for pk, columns in table.rows.values()
    }


def test_urls_name_the_instance_region_and_table() -> None:
    store = TablestoreBackend.from_url("tablestore://ramflow-prod.cn-shanghai.ots.aliyuncs.com/state")
    custom = TablestoreBackend.from_url(
        "tablestore://ots.internal.example:8443?instance=i1&region=eu-central-1"
    )

    assert (store.client.protocol.instance_name, store.table) == ("ramflow-prod", "state")
    assert store.client._signer.sign_region == "cn-shanghai", "a region turns on V4 signing"
    assert store.client.host == "https://ramflow-prod.cn-shanghai.ots.aliyuncs.com"
    assert (custom.client.protocol.instance_name, custom.client._signer.sign_region, custom.table) == (
        "i1",
        "eu-central-1",
        "ramflow_state",
    )
    assert custom.client.host == "https://ots.internal.example:8443"
    assert isinstance(store.client.credentials_provider, EnvironmentCredentials)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("tablestore:///table", "needs a host"),
        ("tablestore://h.r.ots.aliyuncs.com/t?scheme=ftp", "http or https"),
    ],
)
def test_bad_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        open_store(url)


def test_deletes_leave_tombstones_so_versions_keep_growing(
    tablestore_fake: FakeTablestore, tablestore_url: str
) -> None:
    store = open_store(tablestore_url)
    store.put_if_absent("k", {"n": 1})
    first = store.get("k")
    assert first is not None
    store.delete_if_version("k", first.version)

    tombstone = rows_of(tablestore_fake, tablestore_url)["k"]
    assert set(tombstone) == {"version"} and tombstone["version"] > first.version
    assert store.get("k") is None and store.scan("") == []
    store.put_if_absent("k", {"n": 2})
    second = store.get("k")
    assert second is not None and second.version > tombstone["version"]


def test_purge_removes_tombstones_and_long_expired_rows_only(
    tablestore_fake: FakeTablestore, tablestore_url: str
) -> None:
    now = [1_800_000_000.0]
    store = TablestoreBackend(
        TablestoreBackend.from_url(tablestore_url).client,
        tablestore_url.split("/")[3].split("?")[0],
        clock=lambda: now[0],
    )
    store.put_if_absent("live", {"n": 1})
    store.put_if_absent("timed", {"n": 1}, ttl_seconds=60)
    store.put_if_absent("gone", {"n": 1})
    gone = store.get("gone")
    assert gone is not None
    store.delete_if_version("gone", gone.version)

    now[0] += 3600
    assert store.purge(grace_seconds=86_400) == 0, "nothing is old enough yet"
    now[0] += 2 * 86_400
    assert store.purge(grace_seconds=86_400) == 2

    assert set(rows_of(tablestore_fake, tablestore_url)) == {"live"}
    store.put_if_absent("gone", {"n": 2})
    again = store.get("gone")
    assert again is not None and again.version > gone.version, "a purged key restarts from the clock"


def test_a_wrong_secret_is_refused_by_the_server_and_not_echoed(
    tablestore_fake: FakeTablestore, tablestore_url: str
) -> None:
    wrong = tablestore_url.replace("fake-tablestore-secret", "not-the-secret")

    with pytest.raises(StoreError, match="OTSAuthFailed") as raised:
        open_store(wrong).get("k")

    assert "not-the-secret" not in str(raised.value)


@pytest.mark.parametrize("region", [None, "cn-hangzhou"])
def test_both_signature_versions_work(tablestore_fake: FakeTablestore, region: str | None) -> None:
    url = tablestore_fake.url(f"sig{region or 'v2'}".replace("-", ""), region=region)
    backend = TablestoreBackend.from_url(url)
    create_table(backend.client, backend.table)

    assert backend.put_if_absent("k", {"v": region}) is True
    assert backend.get("k").value == {"v": region}


def test_credentials_come_from_the_environment_on_every_request(
    tablestore_fake: FakeTablestore, tablestore_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ((key_id, secret),) = tablestore_fake.keys.items()
    url = tablestore_url.replace(f"{key_id}:{secret}@", "")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", secret)
    store = open_store(url)
    assert store.put_if_absent("k", {}) is True

    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "rotated-away")
    with pytest.raises(StoreError, match="OTSAuthFailed"):
        store.get("k")
    monkeypatch.delenv("ALIBABA_CLOUD_ACCESS_KEY_ID")
    with pytest.raises(ConfigError, match="ALIBABA_CLOUD_ACCESS_KEY_ID"):
        store.get("k")


def test_a_missing_table_is_a_store_error(tablestore_fake: FakeTablestore) -> None:
    with pytest.raises(StoreError, match="OTSObjectNotExist"):
        open_store(tablestore_fake.url("never_created")).put_if_absent("k", {})


def test_the_fake_checks_conditions_like_tablestore(
    tablestore_fake: FakeTablestore, tablestore_url: str
) -> None:
    """The backend's False comes from the server refusing a condition, not from a local shortcut."""
    store = open_store(tablestore_url)
    store.put_if_absent("k", {"n": 1})
    before = list(tablestore_fake.calls)

    assert store.put_if_absent("k", {"n": 2}) is False
    assert store.put_if_version("k", {"n": 2}, 12345) is False
    assert tablestore_fake.calls[len(before) :] == ["GetRow", "GetRow"], (
        "refused before writing: version read"
    )

    doc = store.get("k")
    assert doc is not None
    assert store.put_if_version("k", {"n": 2}, doc.version) is True
    assert tablestore_fake.calls[-1] == "UpdateRow"
