"""EventBridge (2020-04-01): put events on a bus, the FC-native way to hand results on.

PutEvents is not idempotent at the cloud, but every event carries a stable `Id`: a retried call
publishes the same id again, and EventBridge consumers deduplicate on it as they do on CloudEvents.
API: https://www.alibabacloud.com/help/en/eventbridge/developer-reference/api-eventbridge-2020-04-01-putevents
"""

from __future__ import annotations

from typing import Any

from alibabacloud_eventbridge20200401 import models as eb

from shared.cloud.base import CloudModel, SdkGateway
from shared.errors import CloudError


class PutEventResult(CloudModel):
    event_id: str
    trace_id: str = ""


class EventBridgeGateway(SdkGateway):
    def put_event(self, bus: str, event: dict[str, Any]) -> PutEventResult:
        """Put one CloudEvent (structured JSON: id, source, type, data, …) on `bus`."""
        entry = eb.PutEventsRequestEventList(
            id=event["id"],
            source=event["source"],
            type=event["type"],
            subject=event.get("subject"),
            time=event.get("time"),
            spec_version=event.get("specversion", "1.0"),
            data_content_type=event.get("datacontenttype", "application/json"),
            data=event.get("data"),
        )
        request = eb.PutEventsRequest(event_bus_name=bus, event_list=[entry])
        body = self._call(self._sdk.put_events, request, idempotent=True)  # same Id on a retry
        entries = (body.data.entry_list if body.data is not None else None) or []
        failed = (body.data.failed_entry_count if body.data is not None else 0) or 0
        if failed or not entries or entries[0].error_code:
            code = (entries[0].error_code if entries else None) or "PutEventsFailed"
            raise CloudError(code, "the event was not accepted", action="PutEvents")
        return PutEventResult(event_id=entries[0].event_id or event["id"], trace_id=entries[0].trace_id or "")
