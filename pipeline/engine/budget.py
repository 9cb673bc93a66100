"""The shard's memory budget: new model versions are refused (``model_budget``) once the versions
it holds take most of the budget's bytes (:data:`ADMIT_SHARE`).

What a version holds is what :meth:`ModelMonitor.nbytes` says (its buffers grow with its data, up
to bounds the settings set; config validation already refused settings under which one version
alone could outgrow the budget). A new version is counted when it is admitted, at least at what
its first events will make it hold (a batch admits all its new versions before any has data: an
empty version's size would let one batch overrun the budget); the sizes of the versions that
received events are re-read after their batch, lazily, when the next new version asks to be
admitted, so the hot path pays one set update per batch.

>>> from detectors.monitor import ModelMonitor
>>> from detectors.settings import DetectionSettings
>>> models = {("m", "v1"): ModelMonitor("m", "v1", DetectionSettings())}
>>> budget = Budget(models[("m", "v1")].nbytes())
>>> budget.touched([("m", "v1")])
>>> budget.refusal(models)
'memory budget of 0 MiB reached: 1 model versions hold 0 MiB; a new version is refused'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from detectors.monitor import ModelMonitor
from pipeline.state.store import ModelKey

ADMIT_SHARE = 0.9
"""New versions are admitted while the versions held take less than this share of the budget: the
rest is room for the versions held to grow into as their windows fill."""


class Budget:
    """Bytes held by a shard's model versions, against a budget (None: no budget)."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.sizes: dict[ModelKey, int] = {}
        self.total = 0
        self._stale: set[ModelKey] = set()

    def touched(self, keys: Iterable[ModelKey]) -> None:
        """``keys`` received events (or were restored): their sizes are re-read at the next admission."""
        if self.limit is not None:
            self._stale.update(keys)

    def admitted(self, key: ModelKey, monitor: ModelMonitor, at_least: int = 0) -> None:
        """A new version is held: counted at once (at least ``at_least`` bytes), so the next admission
        of the same batch sees it."""
        if self.limit is not None:
            size = max(monitor.nbytes(), at_least)
            self.total += size - self.sizes.get(key, 0)
            self.sizes[key] = size

    def forget(self) -> None:
        self.sizes.clear()
        self._stale.clear()
        self.total = 0

    def refusal(self, models: Mapping[ModelKey, ModelMonitor]) -> str | None:
        """Why a new version cannot be held now (None: it can)."""
        if self.limit is None:
            return None
        for key in self._stale:
            monitor = models.get(key)
            if monitor is not None:
                size = monitor.nbytes()
                self.total += size - self.sizes.get(key, 0)
                self.sizes[key] = size
        self._stale.clear()
        if self.total < self.limit * ADMIT_SHARE:
            return None
        return (f"memory budget of {self.limit >> 20} MiB reached: {len(models)} model versions hold "
                f"{self.total >> 20} MiB; a new version is refused")
