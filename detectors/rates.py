"""A rise of a bad-value rate over the reference, shared by the data-quality detectors.

>>> rate_rise("missing_rate", k=50, n=500, ref_rate=0.0, ref_n=2000, warning=0.05, critical=0.2,
...           resolve=0.025, min_count=1).level
1
"""

from __future__ import annotations

from detectors.base import Score, grade
from detectors.calibration import inflation_details
from detectors.dependence import binomial_sf


def rate_rise(
    name: str, *, k: int, n: int, ref_rate: float, ref_n: int, warning: float, critical: float, resolve: float,
    min_count: int, inflation: float = 1.0, bursts: tuple[int | None, float] = (None, 0.0),
) -> Score:
    """Score the window's rate k/n against the reference rate.

    When the reference had none, ``min_count`` bad values are enough (no
    p-value: the reference says they do not happen); otherwise a binomial test
    against the (smoothed) reference rate supplies the p-value. When the
    reference's bad values came in bursts (``inflation`` > 1, the integrated
    autocorrelation time of their indicator, :mod:`detectors.calibration`), its
    counts are deflated by it, and a second test counts bursts (``bursts``: the
    window's bursts, the reference's chance that one starts after a good value);
    the p-value is the smaller, doubled.
    """
    rate = k / n if n else 0.0
    rise = rate - ref_rate
    level, bound, clear = grade(rise, warning, critical, resolve)
    pval: float | None = None
    if ref_rate > 0:
        r0 = (ref_rate * ref_n + 1) / (ref_n + 2)
        pval = binomial_sf(k, n, r0, inflation)
        if inflation != 1.0 and bursts[0] is not None and k:
            pval = min(1.0, 2.0 * min(pval, binomial_sf(bursts[0], n - k + 1, bursts[1])))
    elif k < min_count:
        level = 0
    clear = clear or k == 0
    return Score(
        detector=name, statistic=rise, threshold=bound, warning=warning, critical=critical, level=level, clear=clear,
        p_value=pval,
        message="", details={"window_rate": round(rate, 6), "reference_rate": round(ref_rate, 6), "count": k,
                             **inflation_details(inflation if ref_rate > 0 else 1.0)},
    )
