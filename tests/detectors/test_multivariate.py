"""Multivariate drift: the PCA math against independent computations, the null spread under dependence,
the detector through ModelMonitor (edge cases, restore and continue)."""

from __future__ import annotations

import math

import msgspec
import numpy as np
import pytest
from scipy import linalg, stats

from detectors.events import Alert, Event
from detectors.joint import Dim, Encoding
from detectors.mean_null import autocorrelation, persistence, window_mean_null
from detectors.monitor import ModelMonitor
from detectors.multivariate import PCAReconstruction, PCAReconstructionParams
from detectors.pca import center_blocks, cross_fitted, errors, fit_basis, squared_residuals, standardize, standardizer
from detectors.settings import DetectionSettings

SMALL = DetectionSettings(reference_size=1000, window_size=300, eval_every=100)


def correlated(rng: np.random.Generator, n: int, p: int = 6) -> np.ndarray:
    a = rng.normal(size=(p, p))
    return rng.normal(size=(n, p)) @ np.linalg.cholesky(a @ a.T / p + np.eye(p) * 0.2).T


# ---- the math ----------------------------------------------------------------------------------

def test_basis_and_errors_equal_an_svd_of_the_same_rows() -> None:
    rng = np.random.default_rng(0)
    x = correlated(rng, 1500)
    x[rng.random(x.shape) < 0.05] = np.nan
    center, scale = standardizer(x)
    assert np.allclose(center, np.nanmean(x, axis=0)) and np.allclose(scale, np.nanstd(x, axis=0))
    z = standardize(x, center, scale)
    basis = fit_basis(z, 0.65)
    _, sv, vt = linalg.svd(z - z.mean(axis=0), full_matrices=False)
    share = sv**2 / np.sum(sv**2)
    assert np.allclose(basis.explained, share)
    assert basis.k == int(np.argmax(np.cumsum(share) >= 0.65)) + 1
    kept = vt[: basis.k].T
    new = standardize(correlated(np.random.default_rng(1), 200), center, scale)
    by_svd = np.sum((new - new @ kept @ kept.T) ** 2, axis=1)
    assert np.allclose(errors(new, basis.residual), by_svd)
    assert np.allclose(squared_residuals(new, basis.residual).sum(axis=1), by_svd)


def test_cross_fitted_errors_score_each_block_with_components_fitted_on_the_others() -> None:
    z = correlated(np.random.default_rng(2), 1000)
    sq = cross_fitted(z, k=3, folds=4)
    lo, hi = 250, 500
    train = np.concatenate((z[:lo], z[hi:]))
    mean = train.mean(axis=0)
    _, _, vt = np.linalg.svd(train - mean, full_matrices=False)
    held = z[lo:hi] - mean
    expect = np.sum((held - held @ vt[:3].T @ vt[:3]) ** 2, axis=1)
    assert np.allclose(sq[lo:hi].sum(axis=1), expect)
    in_sample = fit_basis(z, 1.0, 3)
    assert sq.sum(axis=1).mean() > errors(z - in_sample.mean, in_sample.residual).mean()  # fitted rows look better


def test_autocorrelation_equals_the_direct_sum() -> None:
    x = np.random.default_rng(3).normal(size=300).cumsum()
    d = x - x.mean()
    direct = [np.sum(d[: len(d) - k] * d[k:]) / np.sum(d * d) for k in range(6)]
    assert np.allclose(autocorrelation(x, 5), direct)


@pytest.mark.parametrize("phi", [0.0, 0.6, 0.9])
def test_window_mean_null_covers_dependent_series(phi: float) -> None:
    """(window mean - reference mean) / sd is about standard normal for AR(1) series, as for independent ones."""
    rng = np.random.default_rng(4)
    n, w, zs = 2000, 500, []
    for _ in range(300):
        x = np.empty(n + w)
        x[0] = rng.normal()
        e = rng.normal(size=n + w) * math.sqrt(1 - phi * phi)
        for i in range(1, n + w):
            x[i] = phi * x[i - 1] + e[i]
        null = window_mean_null(x[:n], w)
        zs.append((x[n:].mean() - null.mean) / null.sd)
    z = np.array(zs)
    assert 0.75 < z.std() < 1.15, z.std()  # estimated from one reference each: a little wide, never narrow
    assert np.mean(np.abs(z) > 3) < 0.01
    theory = (1 + phi) / (1 - phi)
    assert window_mean_null(x[:n], w).tau_window == pytest.approx(theory, rel=0.5) if phi else True


def test_persistence_is_the_largest_ar1_time_over_the_columns() -> None:
    rng = np.random.default_rng(6)
    iid = rng.normal(size=(2000, 20))
    assert persistence(iid) == pytest.approx(1.0, abs=0.05)
    x = np.zeros((20_000, 3))
    e = rng.normal(size=x.shape)
    for t in range(1, len(x)):
        x[t] = np.array([0.0, 0.5, 0.9]) * x[t - 1] + e[t]
    assert persistence(x) == pytest.approx(19.0, rel=0.1)  # (1 + 0.9) / (1 - 0.9), the most persistent column
    null = window_mean_null(rng.normal(size=2000), 500, tau_floor=19.0)
    assert null.tau_window == null.tau_reference == 19.0


def test_the_test_reads_how_features_vary_together_not_where_they_sit() -> None:
    """Rows are centred on their window (the reference on window-long blocks): a level that moves or
    wanders is the per-feature tests' to judge; a changed relation is this one's."""
    z = np.arange(14.0).reshape(7, 2)
    assert np.allclose(center_blocks(z, 3), np.concatenate((z[:3] - z[:3].mean(0), z[3:] - z[3:].mean(0))))
    rng = np.random.default_rng(7)
    enc = Encoding([Dim("a", -1), Dim("b", -1)], [0.0, 0.0], [1.0, 1.0], 5.0, {})
    det = PCAReconstruction(PCAReconstructionParams())
    cov = [[1.0, 0.8], [0.8, 1.0]]
    model = det.fit(enc.encode_numeric(rng.multivariate_normal([0, 0], cov, 2000)), enc, 500)
    assert not isinstance(model, str)
    fitted = model.arrays()
    moved = det.check(fitted, fitted.encoder.numeric_rows(rng.multivariate_normal([1.5, -1.5], cov, 500)))
    assert moved.level == 0 and moved.details["z"] < 3


def test_pvalue_is_the_normal_tail_of_the_z_score() -> None:
    rng = np.random.default_rng(5)
    enc = Encoding([Dim("a", -1), Dim("b", -1), Dim("c", -1)], [0.0] * 3, [1.0] * 3, 5.0, {})
    det = PCAReconstruction(PCAReconstructionParams())
    model = det.fit(enc.encode_numeric(correlated(rng, 2000, 3)), enc, 500)
    assert not isinstance(model, str)
    fitted = model.arrays()
    window = correlated(rng, 500, 3) * 1.3
    s = det.check(fitted, fitted.encoder.numeric_rows(window))
    by_hand = standardize(enc.encode_numeric(window).T, fitted.center, fitted.scale)
    by_hand -= by_hand.mean(axis=0)  # the window centred on itself
    assert s.details["window_error"] == pytest.approx(errors(by_hand, fitted.residual).mean(), rel=1e-6)
    z = (s.statistic * model.null.mean - model.null.mean) / model.null.sd
    assert s.p_value == pytest.approx(stats.norm.sf(z)) and s.details["z"] == pytest.approx(z, abs=1e-3)


# ---- through the monitor ----------------------------------------------------------------------

def events(n: int, seed: int = 0, flip_at: int | None = None, p: int = 4, missing: float = 0.0,
           cats: bool = True, numeric: bool = True) -> list[Event]:
    """Features x0..x{p-1} (x0 and x1 correlated 0.8, -0.8 after ``flip_at``) and two categoricals (k1 follows k0)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, p))
    rho = np.where(np.arange(n) < (flip_at if flip_at is not None else n), 0.8, -0.8)
    z[:, 1] = rho * z[:, 0] + np.sqrt(1 - rho * rho) * z[:, 1]
    k0 = rng.choice(4, size=n)
    k1 = np.where(rng.random(n) < 0.6, k0, rng.choice(4, size=n))
    if flip_at is not None and not numeric:
        k1 = np.where(np.arange(n) < flip_at, k1, np.where(rng.random(n) < 0.6, (k0 + 2) % 4, rng.choice(4, size=n)))
    out = []
    for i in range(n):
        feats: dict[str, object] = {}
        if numeric:
            feats.update({f"x{j}": None if rng.random() < missing else float(z[i, j]) for j in range(p)})
        if cats:
            feats.update({"k0": f"a{k0[i]}", "k1": f"a{k1[i]}"})
        out.append(Event("features", f"e{i}", "m", float(i), features=feats))  # type: ignore[arg-type]
    return out


def run(evs: list[Event], settings: DetectionSettings = SMALL, batch: int = 173) -> tuple[ModelMonitor, list[Alert]]:
    m = ModelMonitor("m", "v1", settings, b"k")
    out: list[Alert] = []
    for i in range(0, len(evs), batch):
        out.extend(m.process(evs[i : i + batch]))
    return m, out


def firing(alerts: list[Alert]) -> list[Alert]:
    return [a for a in alerts if a.status == "firing"]


def test_correlation_flip_fires_one_model_level_alert_naming_both_features() -> None:
    _, alerts = run(events(4000, flip_at=2000))
    got = firing(alerts)
    assert [(a.kind, a.feature, a.detector) for a in got][:1] == [("data_drift", None, "pca_reconstruction")]
    first = got[0]
    assert 2000 <= int(first.event_id[1:]) <= 2000 + 2 * SMALL.window_size
    assert set(first.details["features"][:2]) == {"x0", "x1"}  # type: ignore[index]
    assert first.statistic is not None and first.threshold == 1.1 and first.statistic >= first.threshold
    assert first.details["p_adjusted"] <= SMALL.policy.alpha  # type: ignore[index, operator]
    assert first.change_ts is not None and 1700 <= first.change_ts <= 2300


def test_no_alert_without_a_change_even_with_missing_values() -> None:
    m, alerts = run(events(6000, seed=1, missing=0.1))
    assert alerts == []
    assert m.data.joint.fits["pca_reconstruction"].model is not None


def test_categorical_only_model_fits_on_category_indicators_and_sees_an_association_flip() -> None:
    m, alerts = run(events(4000, seed=2, flip_at=2000, numeric=False))
    model = m.data.joint.fits["pca_reconstruction"].model
    assert model is not None and {d.feature for d in model.encoding.dims} == {"k0", "k1"}
    assert len(model.encoding.dims) == 6  # three of the four categories each: the fourth is implied
    got = firing(alerts)
    assert got and got[0].detector == "pca_reconstruction" and set(got[0].details["features"]) <= {"k0", "k1"}  # type: ignore[arg-type]


def test_a_single_numeric_feature_is_left_to_the_per_feature_tests_with_the_reason_kept() -> None:
    evs = [Event("features", f"e{i}", "m", float(i), features={"x": float(v)})
           for i, v in enumerate(np.random.default_rng(3).normal(size=1500))]
    m, _ = run(evs)
    fit = m.data.joint.fits["pca_reconstruction"]
    assert fit.model is None and "fewer than 2 usable dimensions" in fit.reason
    restored = ModelMonitor.restore("m", "v1", SMALL, m.full_state(), b"k")
    assert restored.data.joint.fits == m.data.joint.fits


def test_constant_and_late_features_are_left_out_and_listed() -> None:
    evs = events(1500, seed=4, cats=False)
    evs = [Event(e.stream, e.event_id, e.model, e.ts, features={**(e.features or {}), "const": 1.0,
                                                                 **({"late": 2.0} if i >= 1200 else {})})
           for i, e in enumerate(evs)]
    m, _ = run(evs)
    model = m.data.joint.fits["pca_reconstruction"].model
    assert model is not None
    assert model.encoding.skipped == {"const": "constant in the reference"}
    assert "late" not in model.encoding.features and "late" not in m.data.columns


def test_many_features_are_capped_at_max_dims_and_listed() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(1300, 30)) + rng.normal(size=(1300, 1))
    evs = [Event("features", f"e{i}", "m", float(i), features={f"f{j:02d}": v for j, v in enumerate(row)})
           for i, row in enumerate(x.tolist())]
    s = msgspec.structs.replace(SMALL, params={"pca_reconstruction": {"max_dims": 20}})
    m, alerts = run(evs, s)
    model = m.data.joint.fits["pca_reconstruction"].model
    assert model is not None and len(model.encoding.dims) == 20
    assert sorted(model.encoding.skipped) == [f"f{j}" for j in range(20, 30)]
    assert all("max_dims=20" in why for why in model.encoding.skipped.values())
    assert alerts == []


def test_rows_are_released_after_the_fit_and_the_state_stays_small() -> None:
    m, _ = run(events(1500, seed=6))
    state = m.full_state()
    assert not any(k.startswith("jr:") for k in state) and len(m.data.joint.rows.rings) == 0
    assert len(state["jf:pca_reconstruction"]) < 4000


@pytest.mark.parametrize("restore_at", [500, 1050, 3000])
def test_restore_and_continue_equals_an_uninterrupted_run(restore_at: int) -> None:
    """Before the fit (rows in the state), right after it, and with an incident open."""
    evs = events(4000, seed=7, flip_at=2000, missing=0.02)
    straight_m, straight = run(evs)
    m = ModelMonitor("m", "v1", SMALL, b"k")
    fields: dict[str, bytes] = {}
    alerts: list[Alert] = []
    for i in range(0, len(evs), 100):
        if i == restore_at // 100 * 100:
            m = ModelMonitor.restore("m", "v1", SMALL, dict(fields), b"k")
        alerts.extend(m.process(evs[i : i + 100]))
        for k, v in m.take_delta().items():
            if v is None:
                fields.pop(k, None)
            else:
                fields[k] = v
    assert alerts == straight and any(a.detector == "pca_reconstruction" for a in alerts)
    assert m.full_state() == straight_m.full_state()
    assert {k for k in fields if k.startswith(("jm", "jr:", "jf:"))} == {"jm", "jf:pca_reconstruction"}


def test_off_when_no_multivariate_detector_is_configured() -> None:
    s = msgspec.structs.replace(SMALL, multivariate=msgspec.structs.replace(SMALL.multivariate, detectors=[]))
    m, alerts = run(events(4000, flip_at=2000), s)
    assert alerts == [] and not any(k.startswith(("jm", "jr:", "jf:")) for k in m.full_state())


def test_the_window_encoded_slot_by_slot_equals_encoding_it_whole() -> None:
    from detectors.monitor.joint_checks import JointChecks

    s = DetectionSettings(reference_size=1000, window_size=300, eval_every=70)  # new slots wrap the rings
    evs = events(3000, seed=8, missing=0.05)
    m = ModelMonitor("m", "v1", s, b"k")
    source = m.evaluation.source(JointChecks)
    checked = 0
    for i in range(0, 2940, 70):  # every piece ends at an evaluation
        m.process(evs[i : i + 70])
        arrays = m.data.joint.model("pca_reconstruction")
        kept = source._encoded.get(0)
        if arrays is None or kept is None:
            continue
        fresh = JointChecks(m.data)._window(0, arrays.encoder)
        assert fresh is not None and kept[2] == m.data.columns["x0"].open_window().values.count
        assert np.array_equal(kept[1], fresh[0])
        checked += 1
    assert checked > 20
