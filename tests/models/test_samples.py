"""Every sample in events/ is a valid CloudEvent that the guard accepts: the demo replays them."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.config import DEFAULT_CATALOG
from shared.models import AccessApproved, UserRequested, parse_data, parse_events
from shared.policy import Catalog, check_approval, plan_request

EVENTS = Path(__file__).resolve().parents[2] / "events"
SAMPLES = sorted(EVENTS.glob("*.json"))
EXPECTED = {
    "user-requested-console.json",
    "user-requested-programmatic.json",
    "access-approved.json",
    "access-approved-programmatic.json",
    "access-revoked.json",
    "user-offboarded.json",
}


def load(path: Path):
    [event] = parse_events(path.read_bytes())
    return event, parse_data(event)


def test_the_documented_samples_exist():
    assert {path.name for path in SAMPLES} >= EXPECTED


@pytest.mark.parametrize("path", SAMPLES, ids=lambda path: path.name)
def test_sample_parses_and_validates(path):
    event, data = load(path)
    assert event.type.startswith("ramflow.")
    assert data is not None


def test_sample_ids_are_unique():
    keys = [load(path)[0].idempotency_key for path in SAMPLES]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize(
    ("request_file", "approval_file", "mode"),
    [
        ("user-requested-console.json", "access-approved.json", "console"),
        ("user-requested-programmatic.json", "access-approved-programmatic.json", "programmatic"),
    ],
)
def test_requests_wait_for_their_approval_and_it_suffices(request_file, approval_file, mode):
    catalog = Catalog.load(DEFAULT_CATALOG)
    _, request = load(EVENTS / request_file)
    _, approval = load(EVENTS / approval_file)
    assert isinstance(request, UserRequested) and isinstance(approval, AccessApproved)
    assert request.access_mode == mode and approval.ticket_id == request.ticket_id
    plan = plan_request(request, catalog)
    assert not plan.auto_approved
    check_approval(plan, request, approval)
