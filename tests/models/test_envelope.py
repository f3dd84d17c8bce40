"""CloudEvents envelopes: what parse_events accepts, and how it refuses the rest."""

from __future__ import annotations

import json

import pytest

from shared.errors import ValidationFailed
from shared.models import CloudEvent, parse_events
from shared.models.events import MAX_EVENT_BYTES, MAX_EVENTS_PER_DELIVERY
from tests.models.factories import envelope


def refused(raw) -> list[dict[str, str]]:
    with pytest.raises(ValidationFailed) as caught:
        parse_events(raw)
    return caught.value.errors


def fields(errors: list[dict[str, str]]) -> set[str]:
    return {error["field"] for error in errors}


class TestAcceptedShapes:
    @pytest.mark.parametrize("encode", [lambda e: json.dumps(e).encode(), json.dumps, lambda e: e])
    def test_one_event_as_bytes_text_or_dict(self, encode):
        [event] = parse_events(encode(envelope()))
        assert isinstance(event, CloudEvent)
        assert event.type == "ramflow.user.requested"
        assert event.data["ticket_id"] == "ITSM-1042"

    def test_a_list_as_eventbridge_delivers_it(self):
        events = parse_events(json.dumps([envelope(id="a"), envelope(id="b")]).encode())
        assert [event.id for event in events] == ["a", "b"]

    def test_optional_attributes_may_be_absent(self):
        event = envelope()
        for name in ("time", "datacontenttype"):
            del event[name]
        [parsed] = parse_events(event)
        assert parsed.time is None and parsed.datacontenttype is None

    @pytest.mark.parametrize(
        "content_type",
        ["application/json", "application/json; charset=utf-8", "application/cloudevents+json"],
    )
    def test_json_content_types(self, content_type):
        assert parse_events(envelope(datacontenttype=content_type))[0].datacontenttype == content_type

    def test_eventbridge_extension_attributes_are_kept(self):
        [event] = parse_events(
            envelope(aliyunoriginalaccountid="1234567890", aliyunpublishtime="2025", traced=True)
        )
        assert event.model_extra == {
            "aliyunoriginalaccountid": "1234567890",
            "aliyunpublishtime": "2025",
            "traced": True,
        }


class TestIdentity:
    def test_idempotency_key_is_source_and_id(self):
        [event] = parse_events(envelope(source="itsm.example.com", id="42"))
        assert event.idempotency_key == "itsm.example.com 42"

    def test_keys_cannot_collide_across_the_source_id_boundary(self):
        [one] = parse_events(envelope(source="ab", id="c"))
        [two] = parse_events(envelope(source="a", id="bc"))
        assert one.idempotency_key != two.idempotency_key

    def test_fingerprint_tells_redelivery_from_a_different_payload(self):
        [first] = parse_events(envelope())
        [again] = parse_events(json.dumps(envelope()).encode())
        [other] = parse_events(envelope(data={**envelope()["data"], "ticket_id": "ITSM-9"}))
        assert first.fingerprint == again.fingerprint
        assert first.fingerprint != other.fingerprint
        assert first.idempotency_key == other.idempotency_key

    def test_a_republished_event_keeps_its_fingerprint(self):
        """The producer's or EventBridge's republish stamps a new time and transport extensions."""
        [first] = parse_events(envelope(time="2025-03-03T10:15:00Z"))
        [again] = parse_events(
            envelope(
                time="2025-03-03T10:20:00+00:00", aliyunpublishtime="2025-03-03T10:20:00.123Z", traced=True
            )
        )
        assert first.idempotency_key == again.idempotency_key
        assert first.fingerprint == again.fingerprint

    @pytest.mark.parametrize(
        "change",
        [
            {"type": "ramflow.access.revoked"},
            {"subject": "alice.kafka"},
            {"datacontenttype": "application/cloudevents+json"},
            {"data": {"ticket_id": "ITSM-9"}},
        ],
    )
    def test_what_the_event_asks_for_is_in_its_fingerprint(self, change):
        [first] = parse_events(envelope())
        [other] = parse_events(envelope(**change))
        assert first.fingerprint != other.fingerprint


class TestEnvelopeRules:
    @pytest.mark.parametrize("version", ["0.3", "1.1", 1.0, None])
    def test_specversion_must_be_1_0(self, version):
        errors = refused(envelope(specversion=version))
        assert errors == [{"field": "specversion", "reason": "must be '1.0' (CloudEvents 1.0)"}]

    @pytest.mark.parametrize("name", ["id", "source", "type", "specversion"])
    def test_required_attributes(self, name):
        event = envelope()
        del event[name]
        assert {"field": name, "reason": "required"} in refused(event)

    @pytest.mark.parametrize("name", ["id", "source", "type"])
    def test_required_attributes_are_not_empty(self, name):
        assert fields(refused(envelope(**{name: ""}))) == {name}

    def test_id_must_be_a_string_not_a_number(self):
        assert fields(refused(envelope(id=42))) == {"id"}

    @pytest.mark.parametrize("source", ["itsm example", "itsm\n", "a\tb"])
    def test_source_is_a_uri_reference(self, source):
        assert fields(refused(envelope(source=source))) == {"source"}

    def test_time_needs_a_time_zone(self):
        assert fields(refused(envelope(time="2025-03-03T09:15:00"))) == {"time"}

    def test_xml_data_is_refused(self):
        assert fields(refused(envelope(datacontenttype="text/xml"))) == {"datacontenttype"}

    def test_binary_data_is_refused(self):
        [error] = refused({**envelope(), "data_base64": "AAAA"})
        assert "data_base64" in error["reason"]

    @pytest.mark.parametrize("name", ["TraceParent", "trace_parent", "trace-parent", "x" * 41])
    def test_extension_names_are_lower_case_alphanumerics(self, name):
        [error] = refused({**envelope(), name: "v"})
        assert "extension attribute names" in error["reason"]
        assert name not in error["field"]

    @pytest.mark.parametrize("value", [{"nested": 1}, ["a"], 1.5, "x" * 1025])
    def test_extension_values_are_simple(self, value):
        [error] = refused({**envelope(), "traced": value})
        assert "extension attribute values" in error["reason"]


class TestHostileInput:
    def test_oversize_bytes_are_refused_before_parsing(self):
        raw = b'{"pad": "' + b"x" * MAX_EVENT_BYTES + b'"}'
        assert refused(raw) == [{"field": "event", "reason": f"larger than {MAX_EVENT_BYTES} bytes"}]

    def test_oversize_text_counts_bytes_not_characters(self):
        raw = json.dumps(envelope(subject="é" * (MAX_EVENT_BYTES // 2)), ensure_ascii=False)
        assert len(raw) < MAX_EVENT_BYTES * 2
        assert refused(raw)[0]["reason"].startswith("larger than")

    def test_oversize_dicts_are_refused_too(self):
        assert refused(envelope(subject="x" * MAX_EVENT_BYTES))[0]["reason"].startswith("larger than")

    def test_invalid_json(self):
        [error] = refused(b'{"specversion": "1.0",')
        assert error["field"] == "event" and error["reason"].startswith("not valid JSON")

    def test_not_utf8(self):
        assert refused(b"\xff\xfe{}") == [{"field": "event", "reason": "not UTF-8 text"}]

    def test_deep_nesting_does_not_crash(self):
        assert refused(b"[" * 100_000) == [{"field": "event", "reason": "JSON nested too deeply"}]

    def test_duplicate_keys_are_refused(self):
        raw = (
            b'{"specversion": "1.0", "id": "1", "source": "s", "type": "ramflow.user.requested", "type": "x"}'
        )
        assert "duplicate key" in refused(raw)[0]["reason"]

    @pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
    def test_non_json_numbers_are_refused(self, constant):
        assert "NaN and Infinity" in refused(b'{"specversion": "1.0", "x": ' + constant + b"}")[0]["reason"]

    @pytest.mark.parametrize("raw", [b"42", b'"text"', b"null", b"true", 42])
    def test_neither_object_nor_list(self, raw):
        assert refused(raw) == [
            {"field": "event", "reason": "must be a JSON object (one event) or a list of events"}
        ]

    def test_empty_list(self):
        assert refused(b"[]") == [{"field": "event", "reason": "the list holds no events"}]

    def test_too_many_events(self):
        events = [envelope(id=str(index), data={}) for index in range(MAX_EVENTS_PER_DELIVERY + 1)]
        assert refused(events)[0]["reason"] == f"at most {MAX_EVENTS_PER_DELIVERY} events per delivery"

    def test_every_bad_item_of_a_list_is_reported_with_its_index(self):
        errors = refused([envelope(), "not an event", envelope(specversion="0.3")])
        assert errors == [
            {"field": "[1]", "reason": "an event is a JSON object"},
            {"field": "[2].specversion", "reason": "must be '1.0' (CloudEvents 1.0)"},
        ]

    def test_reasons_never_echo_the_input(self):
        secret = "hunter2-" + "s" * 300
        errors = refused(envelope(specversion=secret, id=[secret], time=secret))
        assert secret[:20] not in json.dumps(errors)

    def test_a_hostile_attribute_name_is_not_echoed(self):
        name = "<script>" + "a" * 500
        errors = refused({**envelope(), name: 1})
        assert "<script>" not in json.dumps(errors)
