"""The observed-domain model (Doppler shift, continuum, structured Jacobian) and the batched
Levenberg-Marquardt fit: known solutions, calibrated covariances, bounds, bad rows."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sost_jax.constants import C_KMS
from sost_jax.errors import InputError
from sost_jax.inference.fit.fitter import Fitter
from sost_jax.inference.fit.fitting import FitSettings, fit_spectra, model_flux
from sost_jax.inference.fit.spectral_model import (
    doppler_shift,
    legendre_basis,
    make_shift_grid,
    make_spectral_model,
)
from sost_jax.inference.flags import MatchFlag
from sost_jax.library.emulator import Emulator, EmulatorSettings, PayneMLP, Scaler
from sost_jax.runtime.devices import data_mesh

WAVE = np.arange(5000.0, 5400.0, 0.5)  # 800 pixels [Å]
LOW, HIGH = np.array([4000.0, 1.0, -1.5]), np.array([7000.0, 5.0, 0.5])


def line_emulator(seed: int = 0) -> Emulator:
    """A small random emulator whose labels move 40 absorption lines: a smooth, identifiable
    labels -> spectrum map with the features an RV needs."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(WAVE[10], WAVE[-10], 40)
    depth = np.exp(-0.5 * ((WAVE[None, :] - centres[:, None]) / 1.2) ** 2)  # [40, P]
    mean = 1.0 - 0.4 * depth.sum(axis=0) / depth.sum(axis=0).max()
    scale = 0.05 * depth.max(axis=0) + 0.002
    settings = EmulatorSettings(hidden=(16,), activation="tanh")
    module = PayneMLP(settings.hidden, WAVE.size, settings.activation)
    params = module.init(jax.random.PRNGKey(seed), jnp.zeros((1, 3)))["params"]
    return Emulator(settings, params, Scaler(LOW, HIGH), mean, scale, WAVE)


@pytest.fixture(scope="module")
def emulator() -> Emulator:
    return line_emulator()


def test_legendre_basis_matches_numpy() -> None:
    x = np.linspace(-1, 1, 37)
    ours = np.asarray(legendre_basis(x, 4))
    ref = np.polynomial.legendre.legvander(x, 4).T
    np.testing.assert_allclose(ours, ref, atol=1e-6)
    assert legendre_basis(x, -1).shape == (0, 37)


@pytest.mark.parametrize("rv", [-73.0, 0.0, 12.5, 250.0])
def test_doppler_shift_matches_numpy_interpolation(rv: float) -> None:
    rng = np.random.default_rng(1)
    flux = rng.normal(1.0, 0.1, WAVE.size)
    target = np.linspace(5010.0, 5390.0, 333)  # another grid than the model's
    grid = make_shift_grid(WAVE, target)
    ours = np.asarray(doppler_shift(jnp.asarray(flux, jnp.float32), jnp.float32(rv), grid))
    ref = np.interp(target / (1 + rv / C_KMS), WAVE, flux)
    np.testing.assert_allclose(ours, ref, atol=2e-5)


def test_non_linear_model_grid_is_refused() -> None:
    with pytest.raises(InputError, match="linear"):
        make_shift_grid(np.geomspace(5000, 5400, 100), WAVE)


@pytest.mark.parametrize("degree, fit_rv", [(2, True), (-1, False), (0, True)])
def test_structured_jacobian_equals_autodiff_of_the_model(emulator, degree, fit_rv) -> None:
    model = make_spectral_model(emulator, continuum_degree=degree, fit_rv=fit_rv)
    theta = jnp.asarray([5600.0, 3.1, -0.4, 17.0, 1.02, 0.03, -0.01][: model.n_params])
    flux, jac = jax.jit(lambda m, t: m.jacobian(t))(model, theta)
    ref = jax.jit(lambda m, t: jax.jacfwd(m.model)(t))(model, theta)
    assert jac.shape == (WAVE.size, model.n_params)
    np.testing.assert_allclose(np.asarray(flux), np.asarray(model.model(theta)), atol=1e-6)
    scale = np.abs(np.asarray(ref)).max(axis=0)
    np.testing.assert_array_less(np.abs(np.asarray(jac - ref)).max(axis=0), 1e-4 * scale + 1e-9)


def truths(model, n: int, seed: int) -> np.ndarray:
    """Parameters inside the bounds: labels, RV [km/s], continuum near 1."""
    rng = np.random.default_rng(seed)
    labels = LOW + (HIGH - LOW) * rng.uniform(0.2, 0.8, (n, 3))
    cols = [labels, rng.normal(0.0, 15.0, (n, 1))]
    cols.append(np.column_stack([rng.normal(1.0, 0.02, n), rng.normal(0.0, 0.02, (n, 2))]))
    return np.concatenate(cols, axis=1)[:, : model.n_params].astype(np.float32)


def simulate(model, theta: np.ndarray) -> np.ndarray:
    return np.array(jax.jit(jax.vmap(lambda t: model.model(t)))(jnp.asarray(theta)))


def test_fit_recovers_labels_rv_and_continuum_of_noiseless_spectra(emulator) -> None:
    model = make_spectral_model(emulator, continuum_degree=2)
    settings = FitSettings(continuum_degree=2, max_iter=40, tol=1e-4)
    theta = truths(model, 24, seed=2)
    flux = simulate(model, theta)
    ivar = np.full(flux.shape, 1e4, np.float32)
    start = theta[:, :3] + np.array([150.0, 0.2, 0.1], np.float32)  # a grid match's miss
    fitter = Fitter(model, settings, data_mesh(local=True))
    out = fitter(flux, ivar, start)
    assert out["converged"].all() and not (out["flags"] & MatchFlag.NOT_CONVERGED).any()
    np.testing.assert_allclose(out["teff"], theta[:, 0], atol=2.0)
    np.testing.assert_allclose(out["logg"], theta[:, 1], atol=2e-3)
    np.testing.assert_allclose(out["feh"], theta[:, 2], atol=2e-3)
    np.testing.assert_allclose(out["rv"], theta[:, 3], atol=0.05)
    np.testing.assert_allclose(out["theta"][:, 4:], theta[:, 4:], atol=1e-3)


def test_errors_of_noisy_fits_are_calibrated(emulator) -> None:
    """With the right model and the noise it states, (fit - truth) / err ~ N(0, 1)."""
    model = make_spectral_model(emulator, continuum_degree=1)
    settings = FitSettings(continuum_degree=1)
    theta = truths(model, 256, seed=3)
    clean = simulate(model, theta)
    sigma = 0.02  # S/N 50
    flux = clean + np.random.default_rng(4).normal(0, sigma, clean.shape).astype(np.float32)
    ivar = np.full(flux.shape, sigma**-2, np.float32)
    out = Fitter(model, settings, data_mesh(local=True), pad_to=64)(flux, ivar, theta[:, :3])
    for i, name in enumerate(("teff", "logg", "feh", "rv")):
        pull = (out[name] - theta[:, i]) / out[f"{name}_err"]
        assert 0.8 < np.std(pull) < 1.2, (name, np.std(pull))
        assert abs(np.mean(pull)) < 0.25, (name, np.mean(pull))
    assert 0.9 < np.median(out["chi2_reduced"]) < 1.1


def test_covariance_equals_inverse_of_a_finite_difference_hessian(emulator) -> None:
    model = make_spectral_model(emulator, continuum_degree=0)
    settings = FitSettings(continuum_degree=0, max_iter=40, tol=1e-4)
    theta = truths(model, 1, seed=5)
    sigma = 0.01
    clean = simulate(model, theta)
    flux = clean + np.random.default_rng(6).normal(0, sigma, clean.shape).astype(np.float32)
    ivar = np.full(flux.shape, sigma**-2, np.float32)
    out = jax.jit(fit_spectra, static_argnums=4)(model, flux, ivar, theta[:, :3], settings)
    best = np.asarray(out["theta"][0], np.float64)
    err = np.array([out[f"{n}_err"][0] for n in ("teff", "logg", "feh", "rv")])
    steps = np.concatenate([err, [1e-3]])  # one standard error per label, RV

    def chi2(t: np.ndarray) -> float:
        m = np.asarray(model.model(jnp.asarray(t, jnp.float32)), np.float64)
        return float(np.sum((flux[0] - m) ** 2 * ivar[0]))

    n = best.size
    hess = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            ei, ej = np.eye(n)[i] * steps[i], np.eye(n)[j] * steps[j]
            hess[i, j] = (
                chi2(best + ei + ej)
                - chi2(best + ei - ej)
                - chi2(best - ei + ej)
                + chi2(best - ei - ej)
            ) / (4 * steps[i] * steps[j])
    cov = 2.0 * np.linalg.inv(hess)  # chi2 = -2 ln L
    reduced = max(float(out["chi2_reduced"][0]), 1.0)
    np.testing.assert_allclose(err, np.sqrt(np.diag(cov) * reduced)[:4], rtol=0.05)
    corr = cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1])
    np.testing.assert_allclose(out["corr_teff_logg"][0], corr, atol=0.05)


def test_labels_outside_the_grid_stop_on_its_bound_and_are_flagged(emulator) -> None:
    model = make_spectral_model(emulator, continuum_degree=-1, fit_rv=False)
    settings = FitSettings(continuum_degree=-1, fit_rv=False)
    # a spectrum of a star hotter than the grid: the emulator extrapolated
    theta = np.array([[HIGH[0] + 800.0, 3.0, -0.5]], np.float32)
    flux = simulate(model, theta)
    out = Fitter(model, settings, data_mesh(local=True))(
        flux, np.full(flux.shape, 1e4, np.float32), np.array([[6500.0, 3.0, -0.5]])
    )
    assert out["teff"][0] <= HIGH[0] + 1e-3 and out["teff"][0] > HIGH[0] - 1.0
    assert out["flags"][0] & MatchFlag.EDGE
    assert np.isnan(out["rv"][0])


def test_unusable_spectra_get_a_flagged_row_and_the_rest_are_fitted(emulator) -> None:
    model = make_spectral_model(emulator, continuum_degree=1)
    settings = FitSettings(continuum_degree=1)
    theta = truths(model, 4, seed=7)
    flux = simulate(model, theta)
    ivar = np.full(flux.shape, 1e4, np.float32)
    ivar[1] = 0.0  # all masked
    flux[2] = np.nan  # no finite flux
    flux[3, : 3 * WAVE.size // 5] = np.nan  # 60% of the pixels
    start = theta[:, :3].copy()
    start[0] = np.nan  # no first guess: the grid's middle
    out = Fitter(model, settings, data_mesh(local=True))(flux, ivar, start)
    for row in (1, 2):
        assert out["flags"][row] & MatchFlag.NO_DATA
        assert np.isnan(out["teff"][row]) and not out["converged"][row]
    assert out["flags"][3] & MatchFlag.FEW_PIXELS
    assert out["n_good"][3] == WAVE.size - 3 * WAVE.size // 5
    np.testing.assert_allclose(out["teff"][[0, 3]], theta[[0, 3], 0], atol=5.0)


def test_fit_settings_are_validated() -> None:
    with pytest.raises(InputError, match="max_iter"):
        FitSettings(max_iter=0)
    with pytest.raises(InputError, match="continuum_degree"):
        FitSettings(continuum_degree=-2)
    with pytest.raises(InputError, match="unknown"):
        FitSettings.from_dict({"max_iters": 3})
    model = make_spectral_model(line_emulator(), continuum_degree=1)
    with pytest.raises(InputError, match="continuum degree"):
        Fitter(model, FitSettings(continuum_degree=2), data_mesh(local=True))


def test_compacted_rounds_give_the_result_of_one_long_loop(emulator) -> None:
    """The Fitter regroups unfinished spectra between rounds; each spectrum's iterations are
    its own, so the result is that of fit_spectra's single loop."""
    model = make_spectral_model(emulator, continuum_degree=1)
    settings = FitSettings(continuum_degree=1)
    theta = truths(model, 40, seed=8)
    clean = simulate(model, theta)
    flux = clean + np.random.default_rng(9).normal(0, 0.01, clean.shape).astype(np.float32)
    ivar = np.full(flux.shape, 1e4, np.float32)
    start = theta[:, :3] + np.random.default_rng(10).normal(0, 1, (40, 3)).astype(
        np.float32
    ) * np.array([300.0, 0.4, 0.2], np.float32)
    ref = jax.jit(fit_spectra, static_argnums=4)(model, flux, ivar, start, settings)
    assert np.ptp(np.asarray(ref["n_iter"])) >= 2  # spectra finish at different iterations
    out = Fitter(model, settings, data_mesh(local=True), pad_to=16, round_steps=1)(
        flux, ivar, start
    )
    np.testing.assert_array_equal(out["n_iter"], ref["n_iter"])
    for name in ("teff", "logg", "feh", "rv", "teff_err", "chi2_best"):
        np.testing.assert_allclose(out[name], ref[name], rtol=1e-5, err_msg=name)


def test_masked_windows_are_given_no_weight() -> None:
    settings = FitSettings.from_dict({"mask_windows": [[5100, 5150], [5300.0, 5310.0]]})
    keep = settings.pixel_weights(WAVE)
    assert keep[(WAVE >= 5100) & (WAVE <= 5150)].sum() == 0
    assert keep[(WAVE >= 5300) & (WAVE <= 5310)].sum() == 0
    assert keep.sum() == WAVE.size - 101 - 21
    assert FitSettings(mask_windows=()).pixel_weights(WAVE).all()
    assert FitSettings().to_dict()["mask_windows"][0] == [6860.0, 6960.0]  # tellurics
    with pytest.raises(InputError, match="lo < hi"):
        FitSettings(mask_windows=((5200.0, 5100.0),))
    with pytest.raises(InputError, match="pairs"):
        FitSettings(mask_windows=(5100.0,))


def test_model_flux_of_a_fitted_row_is_the_fitted_model(emulator) -> None:
    model = make_spectral_model(emulator, continuum_degree=2)
    settings = FitSettings(continuum_degree=2, max_iter=40, tol=1e-4)
    theta = truths(model, 6, seed=11)
    clean = simulate(model, theta)
    flux = clean + np.random.default_rng(12).normal(0, 0.01, clean.shape).astype(np.float32)
    ivar = np.full(flux.shape, 1e4, np.float32)
    out = Fitter(model, settings, data_mesh(local=True))(flux, ivar, theta[:, :3])
    fitted = simulate(model, out["theta"])
    labels = np.stack([out[n] for n in ("teff", "logg", "feh")], axis=1)
    np.testing.assert_allclose(model_flux(model, labels, out["rv"], flux, ivar), fitted, atol=2e-4)
