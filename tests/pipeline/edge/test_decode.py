"""The contract at the edge: every input becomes an Event or a named dead letter."""

from __future__ import annotations

import json
import re
import typing

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.events import Event
from pipeline.edge.decode import DeadLetter, Decoder, Reason, encode_logged

D = Decoder(max_bytes=4096)
REASONS = set(typing.get_args(Reason))


def _f(**over: object) -> bytes:
    body: dict[str, object] = {"event_id": "e1", "model": "m", "ts": 10.5, "features": {"x": 1.5, "c": "a", "n": None}}
    body.update(over)
    return json.dumps(body).encode()


def test_features_event_decodes_with_defaults() -> None:
    ev = D.decode(_f(), "features")
    assert isinstance(ev, Event)
    assert (ev.stream, ev.model, ev.model_version, ev.ts) == ("features", "m", "unknown", 10.5)
    assert ev.features == {"x": 1.5, "c": "a", "n": None}


def test_rfc3339_timestamp_is_epoch_seconds() -> None:
    ev = D.decode(_f(ts="2026-01-01T00:00:01.5+01:00"), "features")
    assert isinstance(ev, Event)
    assert ev.ts == 1767222001.5  # 2025-12-31T23:00:01.5Z, worked by hand


def test_prediction_with_features_and_score() -> None:
    raw = json.dumps(
        {"event_id": "p", "model": "m", "ts": 1, "prediction": "cat", "score": 0.25, "features": {"a": 1}}
    ).encode()
    ev = D.decode(raw, "prediction")
    assert isinstance(ev, Event) and ev.prediction == "cat" and ev.score == 0.25 and ev.features == {"a": 1}


def test_label_event() -> None:
    raw = json.dumps({"event_id": "l", "model": "m", "ts": 1, "prediction_id": "p", "label": 3}).encode()
    ev = D.decode(raw, "label")
    assert isinstance(ev, Event) and ev.prediction_id == "p" and ev.label == 3


@pytest.mark.parametrize(
    ("raw", "stream", "reason"),
    [
        (b"not json", "features", "not_json"),
        (b"\xff\xfe{}", "features", "not_utf8"),
        (b"[1, 2]", "features", "not_object"),
        (b'"text"', "label", "not_object"),
        (b'{"model": "m", "ts": 1, "features": {}}', "features", "missing_field"),
        (_f(event_id=5), "features", "wrong_type"),
        (_f(features={"x": [1]}), "features", "wrong_type"),
        (_f(ts=True), "features", "wrong_type"),
        (_f(ts="yesterday"), "features", "invalid_value"),
        (_f(ts="2026-01-01T00:00:00"), "features", "invalid_value"),  # RFC 3339 needs an offset
        (_f(event_id=""), "features", "invalid_value"),
        (b'{"event_id": "e", "model": "m", "ts": 1e400, "features": {}}', "features", "non_finite"),
        (b'{"event_id": "e", "model": "m", "ts": 1, "prediction": 1, "score": 1.5}', "prediction", "invalid_value"),
        (
            b'{"event_id": "e", "model": "m", "ts": 1, "prediction": 1, "x": ' + b"[" * 5000 + b"]" * 5000 + b"}",
            "prediction",
            "oversize",
        ),
    ],
)
def test_rejections_name_their_reason(raw: bytes, stream: str, reason: str) -> None:
    out = D.decode(raw, stream)  # type: ignore[arg-type]
    assert isinstance(out, DeadLetter)
    assert out.reason == reason, out.detail
    assert out.raw == raw


def test_too_deep_nesting_is_dead_lettered() -> None:
    deep = b'{"event_id": "e", "model": "m", "ts": 1, "prediction": 1, "x": ' + b"[" * 3000 + b"]" * 3000 + b"}"
    out = Decoder().decode(deep, "prediction")
    assert isinstance(out, DeadLetter) and out.reason == "too_deep"


def test_logged_line_needs_known_type() -> None:
    assert isinstance(D.decode_logged(b'{"type": "weird", "event_id": "e"}'), DeadLetter)
    out = D.decode_logged(
        b'{"type": "label", "event_id": "e", "model": "m", "ts": 1, "prediction_id": "p", "label": 0}'
    )
    assert isinstance(out, Event) and out.stream == "label"


def test_encode_logged_round_trips() -> None:
    ev = D.decode(_f(model_version="v2"), "features")
    assert isinstance(ev, Event)
    again = D.decode_logged(encode_logged(ev))
    assert again == ev


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600), st.sampled_from(["features", "prediction", "label"]))
def test_no_byte_string_crashes_the_decoder(raw: bytes, stream: str) -> None:
    out = D.decode(raw, stream)  # type: ignore[arg-type]
    if isinstance(out, DeadLetter):
        assert out.reason in REASONS and out.detail and out.raw == raw


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=400, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "event_id",
                "model",
                "ts",
                "features",
                "prediction",
                "score",
                "label",
                "prediction_id",
                "model_version",
                "type",
            ]
        ),
        json_values,
    )
)
def test_any_json_object_is_an_event_or_a_reasoned_rejection(body: dict[str, object]) -> None:
    raw = msgspec.json.encode(body)
    for stream in ("features", "prediction", "label"):
        out = D.decode(raw, stream)  # type: ignore[arg-type]
        if isinstance(out, DeadLetter):
            assert out.reason in REASONS
        else:
            assert out.stream == stream and out.event_id and out.model


WIDE = "1" * 400  # no double holds it


@pytest.mark.parametrize(("body", "stream", "where"), [
    ('{"event_id":"e","model":"m","ts":1,"features":{"a":1,"x":%s}}', "features", "$.features.x"),
    ('{"event_id":"e","model":"m","ts":1,"prediction":-%s}', "prediction", "$.prediction"),
    ('{"event_id":"e","model":"m","ts":1,"prediction":1,"features":{"x":%s}}', "prediction", "$.features.x"),
    ('{"event_id":"e","model":"m","ts":1,"prediction_id":"p","label":%s}', "label", "$.label"),
])
def test_an_integer_no_double_can_hold_is_non_finite(body: str, stream: str, where: str) -> None:
    out = D.decode((body % WIDE).encode(), stream)  # type: ignore[arg-type]
    assert isinstance(out, DeadLetter) and out.reason == "non_finite" and out.detail.startswith(where)


def test_an_integer_beyond_64_bits_is_kept_as_a_double() -> None:
    big = 2**70 + 1
    out = D.decode(b'{"event_id":"e","model":"m","ts":"2026-01-01T00:00:00Z","prediction":%d,'
                   b'"features":{"x":%d,"y":"a","z":3}}' % (big, -big), "prediction")
    assert isinstance(out, Event)
    assert out.prediction == float(big) and out.features == {"x": -float(big), "y": "a", "z": 3}
    assert out.ts == 1767225600.0
    label = D.decode_logged(b'{"type":"label","event_id":"l","model":"m","ts":1,"prediction_id":"e","label":%d}'
                            % big)
    assert isinstance(label, Event) and label.label == float(big)
    # ... and not a 64-bit integer a step earlier
    edge = D.decode(b'{"event_id":"e","model":"m","ts":1,"features":{"x":%d}}' % (2**63 - 1), "features")
    assert isinstance(edge, Event) and edge.features == {"x": 2**63 - 1}


def test_replay_survives_integers_of_any_size(tmp_path: typing.Any) -> None:
    from pipeline.config import Config
    from pipeline.edge.sinks import ListSink
    from pipeline.replay.replay import replay

    lines = [json.dumps({"type": "prediction", "event_id": f"e{i}", "model": "m", "ts": float(i),
                         "prediction": i % 2, "features": {"x": float(i % 7), "n": i}}) for i in range(3000)]
    lines[2500] = lines[2500].replace('"n": 2500', f'"n": {10**400}')
    lines[2600] = lines[2600].replace('"n": 2600', f'"n": {2**70}')
    log = tmp_path / "log.jsonl"
    log.write_text("\n".join(lines) + "\n")
    summary = replay(log, Config(), ListSink())
    assert summary.events == 2999 and summary.dead_letters == {"non_finite": 1}


@pytest.mark.parametrize(("raw", "model"), [
    (b'{"type":"prediction","event_id":"e","model":"m","ts":"not-a-time"}', "m"),
    (b'{"type":"prediction","event_id":"e","model":"m","ts":1,"prediction":1,"score":"high"}', "m"),
    (b'{"type":"features","event_id":"e","model":"m","ts":1e999,"features":{}}', "m"),
    (b'{"type":"prediction","event_id":"e","model":"m","ts":1,"prediction":1e999}', "m"),
    (b'{"type":"label","event_id":"l","model":"m","ts":1,"prediction_id":"p","label":%d}' % 10**400, "m"),
    (b'{"type":"prediction","event_id":"e","model":5,"ts":1,"prediction":1}', None),
    (b'{"type":"prediction","event_id":"e","model":"","ts":1,"prediction":1}', None),
    (b'{"type":"prediction","model":"m","x":[[[[1]]]]', None),
    (b"[1, 2]", None),
])
def test_a_dead_letter_knows_the_model_its_payload_names(raw: bytes, model: str | None) -> None:
    """The model whose dead-letter rate a malformed line counts in, in replay (logged) and live (per stream)."""
    logged = D.decode_logged(raw)
    assert isinstance(logged, DeadLetter) and logged.model == model and logged.counted_as == model
    typed = re.match(rb'\{"type":"(features|prediction|label)",', raw)
    if typed:  # the same payload as a Kafka message of its stream (no type field)
        live = D.decode(b"{" + raw[typed.end():], typed.group(1).decode())  # type: ignore[arg-type]
        assert isinstance(live, DeadLetter) and live.model == model
        keyed = msgspec.structs.replace(live, key="from-the-key")
        assert keyed.counted_as == (model if model is not None else "from-the-key")


payloads = st.one_of(
    st.binary(max_size=200),
    st.builds(lambda body: msgspec.json.encode(body), st.dictionaries(st.sampled_from(
        ["event_id", "model", "ts", "features", "prediction", "score", "label", "prediction_id"]), json_values)),
    st.sampled_from([_f(), _f(ts=float("inf")), _f(ts="2026-01-01T00:00:00Z"), _f(prediction=1.5, score=0.5),
                     _f(prediction=2.0, score=2.0), _f(prediction_id="p", label="cat"), _f(features={"x": 10**30}),
                     _f(features={"x": int(WIDE)}), b"x" * 5000, b"[" * 3000]),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(payloads, max_size=12), st.sampled_from(["features", "prediction", "label"]))
def test_decode_many_is_decode_of_each(raws: list[bytes], stream: str) -> None:
    """The live edge's batch loop is :meth:`Decoder.decode` of each value, in order."""
    times = [float(i) for i in range(len(raws))]
    got = D.decode_many(raws, stream, times)  # type: ignore[arg-type]
    assert got == [D.decode(raw, stream, t) for raw, t in zip(raws, times, strict=True)]  # type: ignore[arg-type]
