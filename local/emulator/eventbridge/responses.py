"""EventBridge 2020-04-01: PutEvents (the OpenAPI action the official SDK's `put_events` calls).

Request (RPC, form body): `EventBusName`, `EventList` (a JSON array of CloudEvents-like entries with
`Id`, `Source`, `Type` required and `Subject`, `Time`, `SpecVersion`, `DataContentType`, `Data`).
Reply: `{Code, Message, Success, Data: {FailedEntryCount, EntryList: [{EventId, TraceId} | {ErrorCode,
ErrorMessage}]}}`. Source: https://www.alibabacloud.com/help/en/eventbridge/developer-reference/api-eventbridge-2020-04-01-putevents
and the SDK's models (alibabacloud_eventbridge20200401 PutEventsRequest / PutEventsResponseBody).
"""

from __future__ import annotations

import json
from typing import Any

from local.emulator.core import CallContext, Service
from local.emulator.errors import ApiError, InvalidParameter
from local.emulator.eventbridge.models import MAX_EVENTS_PER_CALL, EventBridgeBackend

service = Service("eventbridge", "2020-04-01", "eventbridge-console.cn-hangzhou.aliyuncs.com")
REQUIRED = ("Id", "Source", "Type")


def backend(ctx: CallContext) -> EventBridgeBackend:
    return ctx.account.eventbridge


@service.action("PutEvents")
def put_events(ctx: CallContext) -> dict[str, Any]:
    bus = backend(ctx).bus(ctx.require("EventBusName"))
    try:
        entries = json.loads(ctx.require("EventList"))
    except ValueError:
        raise InvalidParameter("EventList", "must be a JSON array of events") from None
    if not isinstance(entries, list) or not entries:
        raise InvalidParameter("EventList", "must be a non-empty JSON array of events")
    if len(entries) > MAX_EVENTS_PER_CALL:
        raise InvalidParameter("EventList", f"at most {MAX_EVENTS_PER_CALL} events per call")
    results: list[dict[str, Any]] = []
    failed = 0
    for entry in entries:
        missing = [name for name in REQUIRED if not isinstance(entry, dict) or not entry.get(name)]
        if missing:
            failed += 1
            results.append({"ErrorCode": "InvalidArgument", "ErrorMessage": f"{missing[0]} is required"})
            continue
        put = backend(ctx).put(bus, entry)
        results.append({"EventId": put.event_id, "TraceId": put.trace_id})
    return {
        "Code": "Success",
        "Message": "",
        "Success": True,
        "Data": {"FailedEntryCount": failed, "EntryList": results},
    }


__all__ = ["ApiError", "service"]
