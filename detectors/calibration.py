"""How a column's reference behaved over time: the constants its tests are calibrated with.

Measured once, when the reference freezes (or when a baseline is built from training rows
in their order), from the reference in time order, and frozen with it: persisted with the
column's state and restored as they are, never measured again.

- ``values``: integrated autocorrelation time of the values as the binned tests and KS see
  them: the largest over the indicators of the reference deciles (numeric; a KS distance is
  the largest deviation of such an indicator's mean) or the category indicators pooled
  (categorical). The windowed statistics of the values (ks, chi2, psi, js, unseen,
  out_of_range) are deflated by it: a window of n values counts as n / tau independent
  values, and so does the reference.
- ``location``: the same for the values' ranks (numeric): Wasserstein's distance is an
  average over the whole distribution, closer to a difference of means.
- ``missing``, ``nonfinite``, ``badtype``: the same for the indicator of a missing, non-finite
  or wrong-type value (bursts of missing values are not a rise of the missing rate), and
  ``missing_starts`` etc. the chance that a burst starts after a valid value (a burst
  counted once: a rise that is many new bursts is seen by the count of bursts).
- ``repeat``: the highest chance that a value is followed by itself, over the values the
  reference repeats (frozen's run model); 0 when the reference repeats nothing often.
- ``missing_repeat``: the chance that a missing value is followed by another (schema).
- ``single_runs``: categories the reference shows in one run only (unseen's Good-Turing count).

Independent references calibrate to :data:`INDEPENDENT` (up to estimation noise, which
:mod:`detectors.dependence` takes off), so their tests are the independent ones; a
calibration never makes a test more sensitive than that.

>>> rng = np.random.default_rng(3)
>>> calibrate_numeric(rng.normal(size=2000), np.zeros(2000, dtype=np.int8)).values
1.0
>>> runs = np.repeat(rng.integers(0, 5, size=100), 20)  # runs of 20: tau = 2 * 20 - 1
>>> c = calibrate_categorical(runs, np.zeros(2000, dtype=np.int8))
>>> 30 < c.values < 45, 0.94 < c.repeat < 0.97
(True, True)
"""

from __future__ import annotations

import msgspec
import numpy as np
import numpy.typing as npt

from detectors.dependence import integrated_time, largest_time, pooled_time, repeat_chance, single_runs

FloatArray = npt.NDArray[np.float64]
Flags = npt.NDArray[np.int8]
MISSING, NONFINITE, BADTYPE = 1, 2, 3
DECILES = 10
"""The reference quantiles whose indicators measure the dependence of numeric values (the default bins)."""


class Calibration(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A column's calibration constants (see the module docstring); the defaults are independent values."""

    values: float = 1.0
    location: float = 1.0
    missing: float = 1.0
    nonfinite: float = 1.0
    badtype: float = 1.0
    missing_starts: float = 0.0
    nonfinite_starts: float = 0.0
    badtype_starts: float = 0.0
    repeat: float = 0.0
    missing_repeat: float = 0.0
    single_runs: int = -1

    def bursts(self, flag: int) -> tuple[float, float]:
        """(inflation, burst start rate) of the values with ``flag`` (missing, non-finite, wrong type)."""
        if flag == MISSING:
            return self.missing, self.missing_starts
        if flag == NONFINITE:
            return self.nonfinite, self.nonfinite_starts
        return self.badtype, self.badtype_starts


INDEPENDENT = Calibration()


def calibrate_numeric(values: FloatArray, flags: Flags) -> Calibration:
    """Calibration of a numeric column from its valid reference values and every value's flag, in time order."""
    v = np.asarray(values, dtype=np.float64)
    tau = location = 1.0
    if len(v) >= 3:
        edges = np.unique(np.quantile(v, np.arange(1, DECILES) / DECILES))
        tau = largest_time(v[None, :] <= edges[:, None])
        location = integrated_time(_ranks(v))
    return msgspec.structs.replace(_flag_times(flags), values=tau, location=location, repeat=repeat_chance(v))


def calibrate_categorical(codes: npt.NDArray[np.int64], flags: Flags) -> Calibration:
    """Calibration of a categorical column from its valid reference values (any integer code per
    category) and every value's flag, in time order."""
    c = np.asarray(codes, dtype=np.int64)
    return msgspec.structs.replace(_flag_times(flags), values=pooled_time(c), repeat=repeat_chance(c),
                                   single_runs=single_runs(c))


def inflation_details(inflation: float) -> dict[str, object]:
    """What an alert's details say about a calibration that is not independence (nothing when it is)."""
    return {"inflation": round(inflation, 3)} if inflation != 1.0 else {}


def _flag_times(flags: Flags) -> Calibration:
    f = np.asarray(flags)
    times, starts = {}, {}
    for flag in (MISSING, NONFINITE, BADTYPE):
        on = f == flag
        count = int(np.count_nonzero(on))
        times[flag] = integrated_time(on) if count else 1.0
        starts[flag] = (runs_of(on) + 1) / (len(f) - count + 2) if count else 0.0
    miss = f == MISSING
    k = int(np.count_nonzero(miss[:-1]))
    follow = (int(np.count_nonzero(miss[:-1] & miss[1:])) + 1) / (k + 1) if k else 0.0
    return Calibration(missing=times[MISSING], nonfinite=times[NONFINITE], badtype=times[BADTYPE],
                       missing_starts=starts[MISSING], nonfinite_starts=starts[NONFINITE],
                       badtype_starts=starts[BADTYPE], missing_repeat=follow)


def runs_of(on: npt.NDArray[np.bool_]) -> int:
    """Maximal runs of True in ``on`` (in order).

    >>> runs_of(np.array([True, True, False, True, False, False, True]))
    3
    """
    if not len(on):
        return 0
    return int(np.count_nonzero(on[1:] & ~on[:-1])) + int(on[0])


def _ranks(v: FloatArray) -> FloatArray:
    """Mid-ranks scaled to (0, 1): the values' own distribution function, ties shared."""
    _, inverse, counts = np.unique(v, return_inverse=True, return_counts=True)
    mid = (2.0 * np.cumsum(counts) - counts) / (2.0 * len(v))
    return np.asarray(mid[inverse], dtype=np.float64)
