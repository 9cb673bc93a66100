"""The detectors one model version runs, resolved once from settings through the registry.

>>> from detectors.settings import DetectionSettings
>>> c = Checks(DetectionSettings())
>>> [d.name for d in c.windowed[("feature", "numeric")]]
['ks', 'chi2', 'psi', 'missing_rate', 'non_finite', 'out_of_range', 'type_change', 'frozen', 'schema']
>>> c.stream[("feature", "numeric")], c.error_stream
([], ['adwin'])

The windowed, health, multivariate and performance detectors keep no state of a version (their
``check`` reads only its arguments and their params), so every version of one settings object
shares one :class:`Checks` (:meth:`Checks.shared`): a new version costs no detector objects. The
error checks keep a cache of their reference, so each version makes its own (:meth:`Checks.new_error_checks`).

>>> s = DetectionSettings()
>>> Checks.shared(s) is Checks.shared(s), Checks.shared(s) is Checks.shared(DetectionSettings())
(True, False)
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, ClassVar

from detectors.events import AlertKind
from detectors.registry import effective_params, entry, section
from detectors.settings import DetectionSettings
from detectors.stream import StreamDetector

_SOURCES: dict[tuple[str, str], tuple[str, ...]] = {
    ("feature", "numeric"): ("numeric.detectors", "quality.detectors"),
    ("feature", "categorical"): ("categorical.detectors", "quality.detectors"),
    ("score", "numeric"): ("prediction.score_detectors",),
    ("prediction", "numeric"): ("prediction.score_detectors",),
    ("prediction", "categorical"): ("prediction.class_detectors",),
}


class Checks:
    """Windowed detector instances and stream detector names per (role, kind), plus errors and health."""

    _SHARED: ClassVar[OrderedDict[int, tuple[DetectionSettings, Checks]]] = OrderedDict()
    _KEEP: ClassVar[int] = 16
    """Settings objects whose checks are kept (a process runs one or a few configurations)."""

    @classmethod
    def shared(cls, settings: DetectionSettings) -> Checks:
        """The checks of ``settings``, made once per settings object (kept for the last few objects)."""
        hit = cls._SHARED.get(id(settings))
        if hit is not None and hit[0] is settings:  # the entry holds the settings: its id is not reused
            cls._SHARED.move_to_end(id(settings))
            return hit[1]
        checks = cls._SHARED[id(settings)] = (settings, cls(settings))
        while len(cls._SHARED) > cls._KEEP:
            cls._SHARED.popitem(last=False)
        return checks[1]

    def __init__(self, settings: DetectionSettings) -> None:
        self.settings = settings
        self.windowed: dict[tuple[str, str], list[Any]] = {}
        self.kinds: dict[tuple[str, str], list[AlertKind]] = {}
        self.stream: dict[tuple[str, str], list[str]] = {}
        for key, paths in _SOURCES.items():
            self._resolve(key, paths)
        self._error_names = [n for n in settings.concept.detectors if not entry(n).stream]
        self.error_checks = [self._make(n) for n in self._error_names]
        self.error_stream = [n for n in settings.concept.detectors if entry(n).stream]
        self.health = [self._make(n) for n in settings.health.detectors]
        self.joint = [self._make(n) for n in settings.multivariate.detectors]
        self.performance = [self._make(n) for n in settings.performance.detectors + settings.performance.estimators]
        self.schema = next((d for d in self.windowed[("feature", "numeric")] if d.name == "schema"), None)

    def _make(self, name: str) -> Any:
        e = entry(name)
        return e.build(_params(self.settings, name))

    def _resolve(self, key: tuple[str, str], paths: tuple[str, ...]) -> None:
        role, kind = key
        win, kinds, stream = [], [], []
        for path in paths:
            for name in section(self.settings, path):
                e = entry(name)
                if kind not in e.kinds and "quality" not in e.kinds:
                    continue
                if e.stream:
                    stream.append(name)
                    continue
                win.append(self._make(name))
                kinds.append(_alert_kind(role, "quality" in e.kinds))
        self.windowed[key], self.kinds[key], self.stream[key] = win, kinds, stream

    def new_error_checks(self) -> list[Any]:
        """Fresh instances of the (windowed) error checks, for one version."""
        return [self._make(n) for n in self._error_names]

    def new_stream(self, name: str) -> StreamDetector:
        det: StreamDetector = entry(name).build(_params(self.settings, name))
        return det


def _params(settings: DetectionSettings, name: str) -> Any:
    import msgspec

    return msgspec.convert(effective_params(settings, name), entry(name).params)


def _alert_kind(role: str, quality: bool) -> AlertKind:
    if role != "feature":
        return "prediction_drift"
    return "data_quality" if quality else "data_drift"
