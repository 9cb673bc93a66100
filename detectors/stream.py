"""River's streaming change detectors, wrapped to update on numpy batches and to save explicit state.

Every wrapper feeds values in order and reports where (index in the batch) a
change was last detected. State is captured explicitly from the detectors'
attributes (msgpack), except ADWIN's Rust window, which goes into a signed
pickle envelope (:mod:`detectors.snapshot`).

river is imported when a detector is built, not with this module: ADWIN (a default
of the error stream) drives river's Rust window directly, which needs none of
``river.drift`` (whose package imports KSWIN and with it ``scipy.stats``, most of a
second); the other detectors import ``river.drift`` when the first one is built.

>>> d = StreamDetector.create("page_hinkley", PageHinkleyParams())
>>> d.update(np.r_[np.zeros(300), np.full(300, 5.0)]) is not None
True
>>> d2 = StreamDetector.create("page_hinkley", PageHinkleyParams())
>>> d2.load(d.save(b"k"), b"k")
>>> d2.save(b"k") == d.save(b"k")
True
"""

from __future__ import annotations

import collections
import functools
import random
from collections.abc import Callable
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from detectors.base import ERROR, NUMERIC
from detectors.errors import SnapshotError
from detectors.snapshot import seal, unseal

FloatArray = npt.NDArray[np.float64]


class ADWINParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """River ADWIN parameters, plus a cap on its window."""

    delta: float = 1e-5
    """Confidence of a cut (smaller: fewer false alarms, slower detection)."""
    clock: int = 32
    """Values between two checks for a cut."""
    grace_period: int = 100
    """Values before the first check."""
    max_width: int = 100_000
    """A window wider than this is rebuilt from the retained raw window (bounds state size)."""
    severity: int = 1
    """Level of a detection: 1 warning, 2 critical."""


class PageHinkleyParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """River PageHinkley parameters."""

    min_instances: int = 30
    """Values before detection starts."""
    delta: float = 0.005
    """Tolerated change magnitude."""
    threshold: float = 50.0
    """Cumulative deviation that signals a change."""
    alpha: float = 0.9999
    """Forgetting factor of the running mean."""
    severity: int = 1
    """Level of a detection: 1 warning, 2 critical."""


class KSWINParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """River KSWIN parameters (slow: a KS test per value)."""

    alpha: float = 0.0001
    """Significance of the sliding-window KS test."""
    window_size: int = 200
    """Sliding window size."""
    stat_size: int = 60
    """Size of the recent sub-window."""
    seed: int = 42
    """Seed of the sub-sampling generator (determinism)."""
    severity: int = 1
    """Level of a detection: 1 warning, 2 critical."""


class DDMParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """River DDM parameters (binary errors)."""

    warm_start: int = 30
    """Errors before detection starts."""
    warning_threshold: float = 2.0
    """Unused for alerts (river's warning zone)."""
    drift_threshold: float = 3.0
    """Standard deviations above the best error rate that signal drift."""
    severity: int = 1
    """Level of a detection: 1 warning, 2 critical."""


class EDDMParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """River EDDM parameters (binary errors)."""

    warm_start: int = 30
    """Errors before detection starts."""
    alpha: float = 0.95
    """Warning ratio (river)."""
    beta: float = 0.9
    """Drift ratio of the distance between errors."""
    severity: int = 1
    """Level of a detection: 1 warning, 2 critical."""


class HDDMAParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """River HDDM_A parameters (binary errors)."""

    drift_confidence: float = 0.001
    """Confidence of a drift."""
    warning_confidence: float = 0.005
    """Confidence of a warning (river)."""
    two_sided_test: bool = False
    """Also detect improvements."""
    severity: int = 1
    """Level of a detection: 1 warning, 2 critical."""


class HDDMWParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """River HDDM_W parameters (binary errors)."""

    drift_confidence: float = 0.001
    """Confidence of a drift."""
    warning_confidence: float = 0.005
    """Confidence of a warning (river)."""
    lambda_val: float = 0.05
    """Weight of recent values in the moving average."""
    two_sided_test: bool = False
    """Also detect improvements."""
    severity: int = 1
    """Level of a detection: 1 warning, 2 critical."""


ADWIN_MAX_BUCKETS = 5
ADWIN_MIN_WINDOW_LENGTH = 5
"""``river.drift.ADWIN``'s defaults for what :class:`ADWINParams` does not set (the Rust window needs all)."""


@functools.cache
def _nested() -> dict[str, type]:
    """The river statistics a captured detector may hold (importing river's statistics on first use)."""
    from river import stats
    from river.drift.binary import hddm_w

    return {"Mean": stats.Mean, "Var": stats.Var, "EWMean": stats.EWMean, "SampleInfo": hddm_w.SampleInfo}


def _capture(obj: object) -> Any:
    """Explicit state of a river detector or one of its statistics, as msgpack-able data."""
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if isinstance(obj, collections.deque):
        return {"__deque__": [float(x) for x in obj]}
    if isinstance(obj, random.Random):
        return {"__random__": _capture_seq(obj.getstate())}
    name = type(obj).__name__
    if name == "RsEWMean":
        return {"__rs__": list(obj.__getnewargs__()), "state": obj.__getstate__()}  # type: ignore[attr-defined]
    if name in _nested() or hasattr(obj, "__dict__"):
        return {"__cls__": name, **{k: _capture(v) for k, v in vars(obj).items() if not callable(v)}}
    raise SnapshotError(f"cannot capture {name}")


def _capture_seq(x: object) -> Any:
    return [_capture_seq(v) for v in x] if isinstance(x, tuple | list) else x


def _revive(data: Any, template: object = None) -> Any:
    if not isinstance(data, dict):
        return data
    if "__deque__" in data:
        maxlen = template.maxlen if isinstance(template, collections.deque) else None
        return collections.deque(data["__deque__"], maxlen=maxlen)
    if "__random__" in data:
        rng = random.Random()
        rng.setstate(_tuples(data["__random__"]))
        return rng
    if "__rs__" in data:
        rs: Any = type(template)(*data["__rs__"])
        rs.__setstate__(data["state"])
        return rs
    cls = _nested().get(data["__cls__"])
    if cls is None:
        raise SnapshotError(f"class {data['__cls__']} is not allowed in a snapshot")
    obj: Any = object.__new__(cls)
    _apply(obj, data, template)
    return obj


def _tuples(x: Any) -> Any:
    return tuple(_tuples(v) for v in x) if isinstance(x, list) else x


def _apply(obj: object, data: dict[str, Any], template: object) -> None:
    for k, v in data.items():
        if k != "__cls__":
            setattr(obj, k, _revive(v, getattr(template, k, None)))


class StreamDetector:
    """One river detector, fed value by value, with explicit save/load."""

    kinds = NUMERIC

    def __init__(self, name: str, make: Callable[[], Any], severity: int, max_width: int = 0) -> None:
        self.name = name
        self._make = make
        self.det = make()
        self.severity = severity
        self.max_width = max_width
        self.last_width = 0

    @staticmethod
    def create(name: str, params: msgspec.Struct) -> StreamDetector:
        """The wrapper of registry detector ``name`` with its validated params."""
        cls = _WRAPPERS[name]
        return cls(name, _factory(name, params), getattr(params, "severity", 1), getattr(params, "max_width", 0))

    def update(self, values: FloatArray) -> int | None:
        """Feed values in order; the index of the last detection, if any."""
        det, last = self.det, None
        upd = det.update
        for i, x in enumerate(values.tolist()):
            upd(x)
            if det._drift_detected:
                last = i
        return last

    def rebuild(self, values: FloatArray) -> None:
        """Start afresh from retained raw values (after a refused snapshot)."""
        self.det = self._make()
        self.update(values)

    def save(self, secret: bytes) -> bytes:
        return msgspec.msgpack.encode(_capture(self.det))

    def load(self, blob: bytes, secret: bytes) -> None:
        try:
            data = msgspec.msgpack.decode(blob)
            fresh = self._make()
            _apply(fresh, data, self._make())
        except (msgspec.DecodeError, TypeError, KeyError, ValueError, AttributeError) as exc:
            raise SnapshotError(f"{self.name}: unreadable state") from exc
        self.det = fresh

    def too_wide(self) -> bool:
        return False


class BinaryDetector(StreamDetector):
    """DDM, EDDM, HDDM_A, HDDM_W: detectors of a 0/1 error stream."""

    kinds = ERROR


class ADWINDetector(StreamDetector):
    """ADWIN as river's Rust window (what ``river.drift.ADWIN`` wraps), replaced by a fresh one after a
    detection as river's wrapper does."""

    kinds = NUMERIC | ERROR

    def update(self, values: FloatArray) -> int | None:
        det, last = self.det, None
        upd = det.update
        for i, x in enumerate(values.tolist()):
            if upd(x):
                last = i
                self.last_width = int(det.get_width())
                det = self.det = self._make()
                upd = det.update
        return last

    def too_wide(self) -> bool:
        return bool(self.det.get_width() > self.max_width)

    def save(self, secret: bytes) -> bytes:
        return seal(secret, self.name, self.det)

    def load(self, blob: bytes, secret: bytes) -> None:
        window = unseal(secret, self.name, blob)
        if type(window).__name__ != "AdaptiveWindowing":
            raise SnapshotError(f"{self.name}: payload is not an ADWIN window")
        self.det = window


def _factory(name: str, params: msgspec.Struct) -> Callable[[], Any]:
    kw = {k: v for k, v in msgspec.structs.asdict(params).items() if k not in ("severity", "max_width")}
    if name == "adwin":
        from river._river_rust.drift import AdaptiveWindowing

        kw.update(max_buckets=ADWIN_MAX_BUCKETS, min_window_length=ADWIN_MIN_WINDOW_LENGTH)
        return lambda: AdaptiveWindowing(**kw)
    from river import drift
    from river.drift import binary

    cls = {
        "page_hinkley": drift.PageHinkley, "kswin": drift.KSWIN, "ddm": binary.DDM, "eddm": binary.EDDM,
        "hddm_a": binary.HDDMA, "hddm_w": binary.HDDMW,
    }[name]
    return lambda: cls(**kw)


_WRAPPERS: dict[str, type[StreamDetector]] = {
    "adwin": ADWINDetector, "page_hinkley": StreamDetector, "kswin": StreamDetector, "ddm": BinaryDetector,
    "eddm": BinaryDetector, "hddm_a": BinaryDetector, "hddm_w": BinaryDetector,
}
