"""Error calibration: the (scale, floor) error model fitted by maximum likelihood."""

import numpy as np
import pytest

from sost_jax.errors import InputError
from sost_jax.inference.fit.calibration import ErrorCalibration, fit_error_calibration


def simulated(n: int, scale, floor, ref_sigma=None, seed: int = 0):
    """Estimates whose true errors follow the model, formal errors spanning S/N 10-200."""
    rng = np.random.default_rng(seed)
    truth = np.column_stack(
        [rng.uniform(4000, 7000, n), rng.uniform(1, 5, n), rng.uniform(-2, 0.5, n)]
    )
    snr = rng.uniform(10, 200, n)
    formal = np.column_stack([3000 / snr, 6 / snr, 3 / snr])
    sigma = np.sqrt((np.asarray(scale) * formal) ** 2 + np.asarray(floor) ** 2)
    est = truth + rng.normal(size=truth.shape) * sigma
    ref = truth.copy()
    if ref_sigma is not None:
        ref = ref + rng.normal(size=truth.shape) * np.asarray(ref_sigma)
    return est, formal, ref, snr


def test_known_scale_and_floor_are_recovered() -> None:
    scale, floor = (1.8, 1.3, 2.5), (40.0, 0.06, 0.03)
    est, formal, ref, _ = simulated(4000, scale, floor)
    cal = fit_error_calibration(est, formal, ref, source="simulated")
    np.testing.assert_allclose(cal.scale, scale, rtol=0.1)
    np.testing.assert_allclose(cal.floor, floor, rtol=0.15)
    assert cal.source == "simulated" and min(cal.n_stars) > 3900


def test_reference_errors_are_not_taken_for_the_estimates() -> None:
    """Noisy references widen est - ref; given their errors, the floor is not inflated."""
    scale, floor, ref_sigma = (1.5, 1.5, 1.5), (30.0, 0.05, 0.03), (80.0, 0.15, 0.1)
    est, formal, ref, _ = simulated(6000, scale, floor, ref_sigma, seed=1)
    cal = fit_error_calibration(est, formal, ref, np.asarray(ref_sigma))
    np.testing.assert_allclose(cal.floor, floor, rtol=0.3)
    naive = fit_error_calibration(est, formal, ref)
    assert all(n > f * 1.5 for n, f in zip(naive.floor, floor, strict=True))


def test_calibrated_pulls_are_unit_normal_in_every_snr_bin() -> None:
    est, formal, ref, snr = simulated(8000, (2.0, 1.2, 1.6), (50.0, 0.08, 0.02), seed=2)
    cal = fit_error_calibration(est[:4000], formal[:4000], ref[:4000])  # fitted on half
    pull = (est[4000:] - ref[4000:]) / cal.apply(formal[4000:])
    for lo, hi in ((10, 30), (30, 80), (80, 200)):
        sel = (snr[4000:] >= lo) & (snr[4000:] < hi)
        assert np.all(np.abs(pull[sel].std(axis=0) - 1) < 0.1)


def test_outliers_are_clipped_and_round_trip(tmp_path) -> None:
    est, formal, ref, _ = simulated(3000, (1.0, 1.0, 1.0), (20.0, 0.05, 0.02), seed=3)
    est[:30] += np.array([3000.0, 3.0, 1.5])  # catastrophic failures
    cal = fit_error_calibration(est, formal, ref)
    np.testing.assert_allclose(cal.floor, (20.0, 0.05, 0.02), rtol=0.2)
    assert max(cal.n_stars) <= 2970 + 5
    back = ErrorCalibration.load(cal.save(tmp_path / "calibration.json"))
    assert back == cal


def test_too_few_stars_and_bad_files_are_refused(tmp_path) -> None:
    est, formal, ref, _ = simulated(10, (1.0, 1.0, 1.0), (1.0, 0.1, 0.1))
    with pytest.raises(InputError, match="needs 20"):
        fit_error_calibration(est, formal, ref)
    with pytest.raises(InputError, match=r"\[N, 3\]"):
        fit_error_calibration(est[:, :2], formal, ref)
    (tmp_path / "bad.json").write_text('{"scale": [1, 2]}')
    with pytest.raises(InputError, match="not an error calibration"):
        ErrorCalibration.load(tmp_path / "bad.json")
