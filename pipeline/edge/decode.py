"""Decode at the edge: raw bytes become typed :class:`Event` or a :class:`DeadLetter`.

Past this module there are no raw dicts. Every rejection carries a short
machine-readable ``reason`` and a human ``detail``; nothing here raises on bad
input.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from math import isfinite
from typing import Annotated, Any, Literal

import msgspec

from detectors.events import Event, StreamName

NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]
Timestamp = float | Annotated[datetime, msgspec.Meta(tz=True)]
Score = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
# Integers are checked in C to fit 64 bits; a wider one takes the slow path (see
# Decoder._wide_ints): kept when a double can hold it, dead-lettered as non_finite when not.
Int64 = Annotated[int, msgspec.Meta(ge=-(1 << 63), le=(1 << 63) - 1)]
WireValue = bool | Int64 | float | str | None
WireTarget = bool | Int64 | float | str
_WIDE_INT = ("Expected `int` <=", "Expected `int` >=")

DEFAULT_MAX_BYTES = 1 << 20

Reason = Literal[
    "oversize",
    "not_utf8",
    "not_json",
    "not_object",
    "missing_field",
    "wrong_type",
    "invalid_value",
    "non_finite",
    "too_deep",
    "unknown_type",
    # Not the edge's: the engine refused a decoded event.
    "model_cap",
    "model_budget",
    "ts_out_of_range",
]


class _Wire(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    event_id: NonEmpty
    model: NonEmpty
    ts: Timestamp
    model_version: NonEmpty = "unknown"


class FeaturesWire(_Wire, frozen=True, tag="features", tag_field="type"):
    features: dict[str, WireValue]


class PredictionWire(_Wire, frozen=True, tag="prediction", tag_field="type"):
    prediction: WireTarget
    features: dict[str, WireValue] | None = None
    score: Score | None = None


class LabelWire(_Wire, frozen=True, tag="label", tag_field="type"):
    prediction_id: NonEmpty
    label: WireTarget


Wire = FeaturesWire | PredictionWire | LabelWire

_WIRE_BY_STREAM: dict[StreamName, type[Wire]] = {
    "features": FeaturesWire,
    "prediction": PredictionWire,
    "label": LabelWire,
}


class DeadLetter(msgspec.Struct, frozen=True):
    """A message that did not decode or validate, with its original bytes.

    ``model``: the model the payload names, when it decoded far enough to tell (a line that
    names its model and fails on another field); ``key``: the Kafka key (live only).
    """

    reason: Reason
    detail: str
    raw: bytes
    stream: str | None = None
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    key: str | None = None
    model: str | None = None

    @property
    def counted_as(self) -> str | None:
        """The model whose dead-letter rate this counts in: the one the payload names, else the
        Kafka key (producers key by model name); None when neither tells.

        >>> named = DeadLetter("wrong_type", "", b"", key="k", model="m")
        >>> named.counted_as, DeadLetter("not_json", "", b"", key="k").counted_as
        ('m', 'k')
        """
        return self.model if self.model is not None else self.key


class _Named(msgspec.Struct):
    """The one field of a payload that tells whose it is (other fields are not looked at)."""

    model: NonEmpty


_named = msgspec.json.Decoder(_Named)


def named_model(raw: bytes) -> str | None:
    """The model a payload that failed to decode names, if it is a JSON object with a string ``model``.

    >>> named_model(b'{"model": "fraud", "ts": "not-a-time"}'), named_model(b"{not json")
    ('fraud', None)
    """
    try:
        return _named.decode(raw).model
    except (msgspec.DecodeError, RecursionError):  # ValidationError is a DecodeError
        return None


class Decoder:
    """Reusable decoders (msgspec decoders are cheap to call, costly to build).

    >>> d = Decoder()
    >>> d.decode(b'{"event_id":"e1","model":"m","ts":1.0,"features":{"x":1}}', "features").model
    'm'
    >>> d.decode(b'{"event_id":"e1"}', "features").reason
    'missing_field'
    """

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._by_stream = {s: msgspec.json.Decoder(t) for s, t in _WIRE_BY_STREAM.items()}
        self._tagged = msgspec.json.Decoder(Wire)

    def decode(self, raw: bytes, stream: StreamName, ingest_ts: float | None = None) -> Event | DeadLetter:
        """Decode one Kafka message value of the given stream."""
        return self._run(self._by_stream[stream], raw, stream, ingest_ts)

    def decode_many(self, raws: Sequence[bytes], stream: StreamName,
                    ingest_ts: Sequence[float]) -> list[Event | DeadLetter]:
        """:meth:`decode` of each message value of one stream, in order (``ingest_ts``: each one's).

        One loop per polled batch with the per-message calls inlined (the live edge's hot path);
        ``tests/pipeline/edge/test_decode.py`` pins it to :meth:`decode`.
        """
        out: list[Event | DeadLetter] = []
        keep, typed, limit, run = out.append, self._by_stream[stream], self.max_bytes, self._run
        dec = typed.decode
        for raw, its in zip(raws, ingest_ts, strict=True):
            if len(raw) <= limit:
                try:
                    keep(_to_event(dec(raw), raw, stream, its))
                    continue
                except (msgspec.DecodeError, RecursionError):  # ValidationError is a DecodeError
                    pass  # again, to classify it as decode does
            keep(run(typed, raw, stream, its))
        return out

    def decode_logged(self, raw: bytes) -> Event | DeadLetter:
        """Decode one recorded-log line, whose ``type`` field names its stream."""
        return self._run(self._tagged, raw, None, None)

    def decode_logged_many(self, raws: list[bytes]) -> tuple[list[Event], list[tuple[int, DeadLetter]]]:
        """:meth:`decode_logged` of each line: the events in order, and (position, dead letter) of the rest.

        One loop per batch with the per-line calls and checks inlined (the edge's hot path).
        """
        events: list[Event] = []
        dead: list[tuple[int, DeadLetter]] = []
        keep, dec, tagged, limit = events.append, self._tagged.decode, self._tagged, self.max_bytes
        for i, raw in enumerate(raws):
            if len(raw) <= limit:
                try:
                    item = _to_event(dec(raw), raw, None, None)
                except (msgspec.DecodeError, RecursionError):  # ValidationError is a DecodeError
                    item = self._run(tagged, raw, None, None)  # again, to classify it as decode_logged does
            else:
                item = self._run(tagged, raw, None, None)
            if type(item) is Event:
                keep(item)
            else:
                dead.append((i, item))  # type: ignore[arg-type]
        return events, dead

    def _run(
        self, dec: msgspec.json.Decoder[Wire], raw: bytes, stream: str | None, ingest_ts: float | None
    ) -> Event | DeadLetter:
        if len(raw) > self.max_bytes:
            return DeadLetter("oversize", f"payload of {len(raw)} bytes exceeds {self.max_bytes}", raw, stream,
                              model=named_model(raw))
        try:
            wire = dec.decode(raw)
        except msgspec.ValidationError as exc:
            if str(exc).startswith(_WIDE_INT):
                return self._wide_ints(dec, raw, stream, ingest_ts)
            return DeadLetter(_classify(str(exc)), str(exc), raw, stream, model=named_model(raw))
        except msgspec.DecodeError as exc:
            reason: Reason = "not_utf8" if _bad_utf8(raw) else "not_json"
            return DeadLetter(reason, str(exc), raw, stream)
        except RecursionError:
            return DeadLetter("too_deep", "JSON nesting too deep", raw, stream)
        return _to_event(wire, raw, stream, ingest_ts)

    def _wide_ints(self, dec: msgspec.json.Decoder[Wire], raw: bytes, stream: str | None,
                   ingest_ts: float | None) -> Event | DeadLetter:
        """An event with an integer beyond 64 bits: as a double where one can hold it (numeric
        features and absolute errors become doubles anyway); beyond a double: ``non_finite``."""
        obj, where = _widened(msgspec.json.decode(raw))
        if where:
            return DeadLetter("non_finite", f"{where}: an integer beyond the range of a double", raw, stream,
                              model=named_model(raw))
        try:
            wire = msgspec.convert(obj, type=dec.type)
        except msgspec.ValidationError as exc:
            return DeadLetter(_classify(str(exc)), str(exc), raw, stream, model=named_model(raw))
        return _to_event(wire, raw, stream, ingest_ts)


def _widened(obj: Any) -> tuple[Any, str]:
    """``obj`` with every integer beyond 64 bits (prediction, label, feature values) as a double,
    and the path of the first one no double can hold ("" if none)."""
    if not isinstance(obj, dict):
        return obj, ""
    out = dict(obj)
    values: list[tuple[tuple[str, ...], Any]] = [((key,), out[key]) for key in ("prediction", "label") if key in out]
    if isinstance(out.get("features"), dict):
        out["features"] = dict(out["features"])
        values += [(("features", name), v) for name, v in out["features"].items()]
    for path, v in values:
        if type(v) is int and not -(1 << 63) <= v < (1 << 63):
            try:
                wide = float(v)
            except OverflowError:
                return obj, "$." + ".".join(path)
            node = out if len(path) == 1 else out["features"]
            node[path[-1]] = wide
    return out, ""


def _bad_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _classify(msg: str) -> Reason:
    if msg.startswith("Object missing required field"):
        return "missing_field"
    if msg.startswith("Number out of range"):
        return "non_finite"
    if (
        msg.startswith("Expected `object`")
        and msg.rstrip().endswith(("`array`", "`str`", "`int`", "`float`", "`bool`", "`null`"))
        and " - at " not in msg
    ):
        return "not_object"
    if msg.startswith("Invalid value") and "$.type" in msg:
        return "unknown_type"
    if msg.startswith("Expected"):
        return "invalid_value" if "length" in msg or ">=" in msg or "<=" in msg or "timezone" in msg else "wrong_type"
    return "invalid_value"


def _to_event(wire: Wire, raw: bytes, stream: str | None, ingest_ts: float | None) -> Event | DeadLetter:
    # Hot path (once per event): exact-type dispatch and positional Event construction,
    # in Event's field order (stream, event_id, model, ts, model_version, features,
    # prediction, score, prediction_id, label, ingest_ts).
    ts = wire.ts
    if type(ts) is not float:
        ts = ts.timestamp() if isinstance(ts, datetime) else float(ts)
    if not isfinite(ts):
        return DeadLetter("non_finite", "ts is not finite", raw, stream, model=wire.model)
    kind = type(wire)
    if kind is PredictionWire:
        pred = wire.prediction  # type: ignore[union-attr]
        if type(pred) is float and not isfinite(pred):
            return DeadLetter("non_finite", "prediction is not finite", raw, stream, model=wire.model)
        return Event(
            "prediction", wire.event_id, wire.model, ts, wire.model_version,
            wire.features, pred, wire.score, None, None, ingest_ts,  # type: ignore[union-attr]
        )
    if kind is LabelWire:
        label = wire.label  # type: ignore[union-attr]
        if type(label) is float and not isfinite(label):
            return DeadLetter("non_finite", "label is not finite", raw, stream, model=wire.model)
        return Event(
            "label", wire.event_id, wire.model, ts, wire.model_version,
            None, None, None, wire.prediction_id, label, ingest_ts,  # type: ignore[union-attr]
        )
    return Event(
        "features", wire.event_id, wire.model, ts, wire.model_version,
        wire.features, None, None, None, None, ingest_ts,  # type: ignore[union-attr]
    )


def encode_logged(event: Event) -> bytes:
    """Encode an event back to the recorded-log format (with its ``type``)."""
    body: dict[str, object] = {"type": event.stream, "event_id": event.event_id, "model": event.model, "ts": event.ts}
    if event.model_version != "unknown":
        body["model_version"] = event.model_version
    if event.stream == "label":
        body["prediction_id"] = event.prediction_id
        body["label"] = event.label
    if event.stream == "prediction":
        body["prediction"] = event.prediction
        if event.score is not None:
            body["score"] = event.score
    if event.features is not None:
        body["features"] = event.features
    return msgspec.json.encode(body)
