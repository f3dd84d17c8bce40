"""`ramflow report`: the access review as CSV, JSON and an HTML page checked in headless Chromium."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from local.cli import app
from local.invoke import invoke
from local.report import Review, safe_store, to_html
from tests.cli.test_read_commands import EVENTS, ledger  # noqa: F401 - the fixture

BREAK_GLASS_USER = "ops-breakglass"


@pytest.fixture
def review_ledger(ledger: str, monkeypatch: pytest.MonkeyPatch) -> str:  # noqa: F811
    """The read commands' ledger plus a break-glass AdministratorAccess grant for 12 hours."""
    monkeypatch.setenv("RAMFLOW_STORE", ledger)
    request = json.loads((EVENTS / "user-requested-programmatic.json").read_text())
    request["id"] = str(uuid.uuid4())
    request["data"].update(
        ticket_id="ITSM-9001",
        user={"logon_name": BREAK_GLASS_USER, "display_name": "Incident", "owner": "olga@example.com"},
        grants=[{"policy": "AdministratorAccess", "type": "System"}],
        duration="PT12H",
        justification="incident 4711",
    )
    assert invoke("user-requested", json.dumps(request).encode())["status"] == "pending_approval"
    approval = json.loads((EVENTS / "access-approved.json").read_text())
    approval["id"] = str(uuid.uuid4())
    approval["data"] = {
        "ticket_id": "ITSM-9001",
        "approvers": ["dave@example.com", "erin@example.com"],
        "break_glass": True,
    }
    assert invoke("access-approved", json.dumps(approval).encode())["status"] == "completed"
    monkeypatch.delenv("RAMFLOW_STORE")
    return ledger


def report(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["report", *args])
    assert "Traceback" not in result.output
    return result.exit_code, result.stdout, result.stderr


def test_csv_and_json_say_who_holds_what_approved_by_whom_and_until_when(review_ledger: str) -> None:
    code, out, _ = report("--store", review_ledger, "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    admin = next(r for r in rows if r["policy_name"] == "AdministratorAccess")
    assert (admin["user_name"], admin["scope"], admin["approvers"]) == (
        BREAK_GLASS_USER,
        "account",
        "dave@example.com;erin@example.com",
    )
    assert admin["high_risk"] == "yes" and admin["expiring"] == "yes" and admin["break_glass"] == "yes"
    assert admin["approved_at"] and admin["expires_at"]
    reader = next(r for r in rows if r["policy_name"] == "AliyunKafkaReadOnlyAccess")
    assert (reader["scope"], reader["high_risk"], reader["expiring"]) == ("rg-aek2xl5qw", "no", "no")
    assert {r["user_name"] for r in rows} == {"alice.kafka", BREAK_GLASS_USER}, "pending tickets hold nothing"

    code, out, _ = report("--store", review_ledger, "--format", "json")
    document = json.loads(out)
    assert document["summary"] == {
        "users": 2,
        "active grants": 3,
        "high-risk": 1,
        "expiring": 1,
        "findings": 0,
    }


def test_drift_found_by_a_read_only_reconcile_is_reported(
    review_ledger: str, emulator_server, monkeypatch
) -> None:
    from alibabacloud_ram20150501 import models as ram_models

    from local.testing import ROOT_CREDENTIALS
    from shared.cloud.clients import CloudClients
    from shared.config import Settings

    ram = CloudClients(Settings(cloud_endpoint=emulator_server.endpoint), ROOT_CREDENTIALS).ram
    ram.attach_policy_to_user(  # by hand, outside any ticket
        ram_models.AttachPolicyToUserRequest(
            policy_type="System", policy_name="AliyunECSFullAccess", user_name="alice.kafka"
        )
    )
    seq = emulator_server.emulator.recorder.last_seq
    code, out, err = report(
        "--store", review_ledger, "--format", "json", "--drift", "--cloud", emulator_server.endpoint
    )
    assert code == 0, err
    alice = next(u for u in json.loads(out)["users"] if u["user_name"] == "alice.kafka")
    assert any("AliyunECSFullAccess" in f["detail"] and f["source"] == "reconcile" for f in alice["findings"])
    calls = emulator_server.emulator.recorder.since(seq)
    assert calls and all(c.action.startswith(("Get", "List")) for c in calls), {c.action for c in calls}


def test_the_store_url_loses_its_password() -> None:
    assert (
        safe_store("redis://:s3cret@r-x.redis.rds.aliyuncs.com:6379/0")
        == "redis://r-x.redis.rds.aliyuncs.com:6379/0"
    )


def test_values_are_escaped_in_the_page() -> None:
    from datetime import datetime, timedelta, timezone

    from local.review import GrantRow, UserView

    now = datetime.now(timezone.utc)
    hostile = "<script>alert(1)</script>"
    grant = GrantRow(
        user_name=hostile, owner="o", access_mode="console", user_status="active", ticket_id="T", ticket_status="completed",
        requester="r", approvers=["a"], approved_at=now, break_glass=False, policy_type="System", policy_name="P",
        scope="account", status="active", granted_at=now, expires_at=None, expiring=False, high_risk=False,
    )  # fmt: skip
    user = UserView(user_name=hostile, owner="o", access_mode="console", status="active", delete_after=None,
                    tickets=["T"], last_change=now, grants=[grant])  # fmt: skip
    page = to_html(
        Review(
            generated_at=now, store="memory://", window=timedelta(days=7), drift_checked=False, users=[user]
        )
    )
    assert hostile not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


# --- the page in a browser ------------------------------------------------------------------------


@pytest.fixture
def browser() -> Iterator[object]:
    """Headless Chromium from Debian's packages (chromium, chromium-driver), driven by Selenium.
    Skipped with the reason when they are absent; under CI=true their absence fails the test."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not binary or not driver_path:
        message = "Chromium is not installed: apt-get install -y chromium chromium-driver (make test does it where apt is available)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    try:
        yield driver
    finally:
        driver.quit()


def test_the_html_page_loads_without_errors_shows_the_rows_and_sorts(
    review_ledger: str,
    browser,
    tmp_path: Path,
) -> None:
    from selenium.webdriver.common.by import By

    page = tmp_path / "review.html"
    code, _, err = report("--store", review_ledger, "--output", str(page))
    assert code == 0, err
    browser.get(page.as_uri())

    rows = browser.find_elements(By.CSS_SELECTOR, "#grants tbody tr.grant")
    assert len(rows) == 3
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == [], errors
    users = [r.get_attribute("data-user") for r in rows]
    assert sorted(users) == ["alice.kafka", "alice.kafka", BREAK_GLASS_USER]
    admin = next(r for r in rows if "AdministratorAccess" in r.text)
    assert {"high-risk", "expiring"} <= set(admin.get_attribute("class").split())
    assert "high-risk" in admin.text and "dave@example.com, erin@example.com" in admin.text
    assert "rg-aek2xl5qw" in browser.find_element(By.ID, "grants").text

    header = browser.find_elements(By.CSS_SELECTOR, "#grants thead th")[0]
    header.find_element(By.TAG_NAME, "button").click()
    first = [
        r.get_attribute("data-user") for r in browser.find_elements(By.CSS_SELECTOR, "#grants tbody tr.grant")
    ]
    assert first == sorted(first) and header.get_attribute("aria-sort") == "ascending"
    header.find_element(By.TAG_NAME, "button").click()
    again = [
        r.get_attribute("data-user") for r in browser.find_elements(By.CSS_SELECTOR, "#grants tbody tr.grant")
    ]
    assert again == sorted(again, reverse=True) and header.get_attribute("aria-sort") == "descending"
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
