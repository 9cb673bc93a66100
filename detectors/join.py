"""Label join: predictions wait for their labels (and early labels for their predictions), bounded.

Both waiting maps are bounded by an event-time horizon (expiries counted) and
by a size cap (evictions of the oldest counted). Joined errors are kept with
the prediction's event time so they can be fed in prediction-time order.

>>> from detectors.events import Event
>>> j = LabelJoin(horizon_s=100.0, max_pending=10, max_labels=10)
>>> j.prediction(Event("prediction", "p1", "m", 1.0, prediction="cat"))
>>> j.label(Event("label", "l1", "m", 5.0, prediction_id="p1", label="dog"))
>>> j.joined
[(1.0, 0, 1.0)]
>>> error("cat", "cat"), error(1.5, 1.0), error(2, 2.0)
((0.0, True), (0.5, False), (0.0, True))
"""

from __future__ import annotations

from collections import OrderedDict

import msgspec

from detectors.events import Event, Target


class Pending(msgspec.Struct, array_like=True):
    """A prediction waiting for its label, or a label waiting for its prediction."""

    seq: int
    ts: float
    value: Target


class JoinCounters(msgspec.Struct):
    """Totals since the version started (exposed in alert details and for metrics)."""

    seq: int = 0
    joined: int = 0
    expired_predictions: int = 0
    expired_labels: int = 0
    evicted_predictions: int = 0
    evicted_labels: int = 0
    binary: bool | None = None
    last_label_id: str = ""
    last_label_ts: float = 0.0


def _noninteger(x: Target) -> bool:
    return isinstance(x, float) and not x.is_integer()


def error(prediction: Target, label: Target) -> tuple[float, bool]:
    """(error, is_class): absolute error when either is a non-integer number, else 0/1 mismatch."""
    if (_noninteger(prediction) or _noninteger(label)) and not isinstance(prediction, str | bool) \
            and not isinstance(label, str | bool):
        return abs(float(prediction) - float(label)), False
    same = prediction == label and isinstance(prediction, str) == isinstance(label, str)
    return (0.0 if same else 1.0), True


class LabelJoin:
    """The two waiting maps, the counters, and the errors joined since the last evaluation."""

    def __init__(self, horizon_s: float, max_pending: int, max_labels: int) -> None:
        self.horizon_s, self.max_pending, self.max_labels = horizon_s, max_pending, max_labels
        self.preds: OrderedDict[str, Pending] = OrderedDict()
        self.labels: OrderedDict[str, Pending] = OrderedDict()
        self.c = JoinCounters()
        self.joined: list[tuple[float, int, float]] = []
        self.dirty_p: set[str] = set()
        self.dirty_l: set[str] = set()

    def prediction(self, ev: Event) -> None:
        assert ev.prediction is not None
        eid, c = ev.event_id, self.c
        waiting = self.labels.pop(eid, None) if self.labels else None
        seq = c.seq
        c.seq = seq + 1
        if waiting is not None:
            self.dirty_l.add(eid)
            self._join(ev.ts, seq, ev.prediction, waiting.value)
            return
        preds = self.preds
        preds[eid] = Pending(seq, ev.ts, ev.prediction)
        preds.move_to_end(eid)
        self.dirty_p.add(eid)
        if len(preds) > self.max_pending:
            self.dirty_p.add(self.preds.popitem(last=False)[0])
            self.c.evicted_predictions += 1

    def label(self, ev: Event) -> None:
        assert ev.prediction_id is not None and ev.label is not None
        self.c.last_label_id, self.c.last_label_ts = ev.event_id, ev.ts
        pred = self.preds.pop(ev.prediction_id, None)
        if pred is not None:
            self.dirty_p.add(ev.prediction_id)
            self._join(pred.ts, pred.seq, pred.value, ev.label)
            return
        self.labels[ev.prediction_id] = Pending(self.c.seq, ev.ts, ev.label)
        self.labels.move_to_end(ev.prediction_id)
        self.c.seq += 1
        self.dirty_l.add(ev.prediction_id)
        if len(self.labels) > self.max_labels:
            self.dirty_l.add(self.labels.popitem(last=False)[0])
            self.c.evicted_labels += 1

    def _join(self, pred_ts: float, seq: int, prediction: Target, label: Target) -> None:
        err, is_class = error(prediction, label)
        if self.c.binary is None:
            self.c.binary = is_class
        self.joined.append((pred_ts, seq, err))
        self.c.joined += 1

    def expire(self, watermark: float) -> None:
        """Drop waiting entries older than the horizon (oldest first), counting them."""
        cutoff = watermark - self.horizon_s
        for waiting, dirty, attr in ((self.preds, self.dirty_p, "expired_predictions"),
                                     (self.labels, self.dirty_l, "expired_labels")):
            while waiting and next(iter(waiting.values())).ts < cutoff:
                dirty.add(waiting.popitem(last=False)[0])
                setattr(self.c, attr, getattr(self.c, attr) + 1)

    def take_errors(self) -> list[tuple[float, int, float]]:
        """Errors joined since the last call, in prediction event-time order."""
        out = sorted(self.joined)
        self.joined = []
        return out

    def take(self) -> dict[str, bytes | None]:
        out: dict[str, bytes | None] = {}
        for prefix, waiting, dirty in (("p:", self.preds, self.dirty_p), ("l:", self.labels, self.dirty_l)):
            for key in sorted(dirty):
                entry = waiting.get(key)
                out[prefix + key] = None if entry is None else msgspec.msgpack.encode(entry)
            dirty.clear()
        out["j"] = msgspec.msgpack.encode((self.c, self.joined))
        return out

    def touch_all(self) -> None:
        self.dirty_p.update(self.preds)
        self.dirty_l.update(self.labels)

    def load(self, fields: dict[str, bytes]) -> None:
        if "j" in fields:
            kind = tuple[JoinCounters, list[tuple[float, int, float]]]
            self.c, joined = msgspec.msgpack.decode(fields["j"], type=kind)
            self.joined = list(joined)
        for prefix, waiting in (("p:", self.preds), ("l:", self.labels)):
            items = [(k[2:], msgspec.msgpack.decode(v, type=Pending))
                     for k, v in fields.items() if k.startswith(prefix)]
            for key, entry in sorted(items, key=lambda kv: kv[1].seq):
                waiting[key] = entry
