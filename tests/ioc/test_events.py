"""Event contracts: valid payloads decode, each kind of invalid payload is refused with a named field."""

from __future__ import annotations

import datetime as dt

import pytest

from ioc import codecs, events

NOW = dt.datetime(2025, 6, 1, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=7)))


def reading(**overrides: object) -> bytes:
    base = {
        "vendor": "acme-air",
        "device": "aq-25957-01",
        "unit": "25957",
        "kind": "air",
        "seq": 7,
        "observed_at": "2025-06-01T08:00:00+07:00",
        "values": {"pm25": 35.2, "pm10": 60.0},
    }
    base.update(overrides)
    return codecs.encode_json(base)


def test_reading_round_trips_with_its_schema_tag() -> None:
    decoded = codecs.decode(reading(), events.SensorReading)
    assert decoded.observed_at == NOW
    encoded = codecs.encode(decoded)
    assert b'"schema":"ioc.sensor-reading.v1"' in encoded
    assert codecs.decode(encoded, events.SensorReading) == decoded


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"seq": -1}, "$.seq"),
        ({"unit": "Di An"}, "$.unit"),
        ({"observed_at": "2025-06-01T08:00:00"}, "timezone"),
        ({"values": {}}, "$.values"),
        ({"values": {"waterLevel": 1.0}}, "belongs to kind 'water'"),
        ({"values": {"pm1": 1.0}}, "unknown measurement 'pm1'"),
        ({"extra": 1}, "unknown field `extra`"),
        ({"schema": "ioc.sensor-reading.v2"}, "$.schema"),
        ({"device": "a/b"}, "$.device"),
    ],
)
def test_invalid_readings_name_the_problem(overrides: dict[str, object], needle: str) -> None:
    with pytest.raises(codecs.ContractError) as info:
        codecs.decode(reading(**overrides), events.SensorReading)
    assert info.value.reason == "schema"
    assert needle in info.value.message


def test_not_json_and_too_large_have_their_own_reasons() -> None:
    with pytest.raises(codecs.ContractError) as info:
        codecs.decode(b"{not json", events.SensorReading)
    assert info.value.reason == "not-json"
    with pytest.raises(codecs.ContractError) as info:
        codecs.decode(b" " * (codecs.MAX_PAYLOAD_BYTES + 1), events.SensorReading)
    assert info.value.reason == "too-large"


def test_non_finite_values_are_refused() -> None:
    with pytest.raises(codecs.ContractError) as info:
        codecs.decode(reading().replace(b"35.2", b"NaN"), events.SensorReading)
    assert info.value.reason == "not-json"
    with pytest.raises(codecs.ContractError, match="out of range"):
        codecs.decode(reading().replace(b"35.2", b"1e999"), events.SensorReading)
    # Built in Python (simulators, normalisers), a non-finite value is refused by the model itself.
    with pytest.raises(ValueError, match="finite"):
        events.SensorReading(
            vendor="v",
            device="d",
            unit="25957",
            kind=events.SensorKind.AIR,
            seq=0,
            observed_at=NOW,
            values={"pm25": float("inf")},
        )


def test_violation_needs_plate_and_speeding_needs_speed() -> None:
    camera = {
        "vendor": "vcam",
        "device": "cam-25747-01",
        "unit": "25747",
        "seq": 1,
        "observed_at": "2025-06-01T08:00:00Z",
        "event_type": "red_light",
        "confidence": 0.9,
    }
    with pytest.raises(codecs.ContractError, match=r"\$\.plate"):
        codecs.decode(codecs.encode_json(camera), events.CameraEvent)
    ok = codecs.decode(codecs.encode_json({**camera, "plate": "61A-123.45"}), events.CameraEvent)
    assert ok.event_type is events.CameraEventType.RED_LIGHT
    with pytest.raises(codecs.ContractError, match="speed_kmh"):
        codecs.decode(
            codecs.encode_json({**camera, "event_type": "speeding", "plate": "61A-123.45"}),
            events.CameraEvent,
        )
    accident = codecs.decode(codecs.encode_json({**camera, "event_type": "accident"}), events.CameraEvent)
    assert accident.plate is None


def test_service_record_consistency() -> None:
    record = {
        "dossier_id": "000.00.25.H02-250601-0001",
        "status_version": 1,
        "unit": "25957",
        "procedure_code": "1.001612",
        "status": "received",
        "channel": "online",
        "received_at": "2025-06-02T08:00:00+07:00",
        "due_at": "2025-06-05T17:00:00+07:00",
        "occurred_at": "2025-06-02T08:00:00+07:00",
    }
    assert codecs.decode(codecs.encode_json(record), events.ServiceRecord).status is events.DossierStatus.RECEIVED
    with pytest.raises(codecs.ContractError, match="finished_at"):
        codecs.decode(codecs.encode_json({**record, "status": "processed"}), events.ServiceRecord)
    with pytest.raises(codecs.ContractError, match="due_at"):
        codecs.decode(codecs.encode_json({**record, "due_at": "2025-06-01T08:00:00+07:00"}), events.ServiceRecord)
    with pytest.raises(codecs.ContractError, match="paid_online"):
        codecs.decode(codecs.encode_json({**record, "paid_online": True}), events.ServiceRecord)


def test_dispatch_needs_a_target_unit() -> None:
    command = events.IncidentCommand(
        command_id="c1",
        incident_id="i1",
        action=events.IncidentAction.ACKNOWLEDGE,
        actor="op",
        site_unit="724",
        issued_at=NOW,
    )
    assert codecs.decode(codecs.encode(command), events.IncidentCommand) == command
    with pytest.raises(ValueError, match="target_unit"):
        events.IncidentCommand(
            command_id="c2",
            incident_id="i1",
            action=events.IncidentAction.DISPATCH,
            actor="op",
            site_unit="724",
            issued_at=NOW,
        )


def test_events_are_frozen() -> None:
    decoded = codecs.decode(reading(), events.SensorReading)
    with pytest.raises(AttributeError):
        decoded.seq = 8  # type: ignore[misc]


def test_every_measure_has_a_sane_range() -> None:
    for name, measure in events.MEASURES.items():
        assert measure.low < measure.high, name
        assert measure.label_vi and measure.label_en
