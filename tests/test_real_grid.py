"""The line-resolved synthetic grid at survey resolution: reading, degrading, media, intervals.

The checks behind benchmarks/miles_atlas9.py: the ATLAS9/SPECTRUM grid reads as an array
grid (a few-model slice of the real file), its 0.5 Å line-spread function is degraded to
MILES's 2.5 Å as a direct NumPy convolution does, a vacuum spectrum lands on an air grid
at the air wavelengths of its lines, and the bootstrap intervals have the width theory
gives.
"""

import numpy as np
import pytest

from sost_jax.constants import FWHM_PER_SIGMA
from sost_jax.data.io.grids import read_array_grid, write_array_grid
from sost_jax.data.prepare import PrepareSettings, to_grid
from sost_jax.data.preprocess import air_to_vac, vac_to_air
from sost_jax.data.spectra import Grid
from sost_jax.errors import InputError
from sost_jax.evaluation.metrics import (
    bootstrap_bias_scatter,
    bootstrap_interval,
    scatter_ratio_interval,
)

GRID = "atlas9_spectrum/grid.npz"
MILES = {"grid_start": 3900.0, "grid_stop": 7400.0, "grid_step": 1.0, "grid_medium": "air"}


def numpy_degraded(wave, flux, fwhm_out, fwhm_in, new_wave):
    """Slow reference: direct convolution with a Gaussian of sqrt(out^2 - in^2) FWHM on the
    input's uniform pixels, then linear interpolation onto ``new_wave``."""
    step = wave[1] - wave[0]
    sigma = np.sqrt(fwhm_out**2 - fwhm_in**2) / FWHM_PER_SIGMA / step
    half = int(np.ceil(5 * sigma))
    x = np.arange(-half, half + 1)
    kernel = np.exp(-0.5 * (x / sigma) ** 2)
    kernel /= kernel.sum()
    out = []
    for row in np.atleast_2d(flux).astype(np.float64):
        padded = np.concatenate([np.full(half, row[0]), row, np.full(half, row[-1])])
        smooth = np.array([padded[i : i + 2 * half + 1] @ kernel for i in range(row.size)])
        out.append(np.interp(new_wave, wave, smooth))
    return np.array(out)


@pytest.fixture(scope="module")
def atlas9(shared_data):
    path = shared_data / GRID
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    return read_array_grid(path)


def test_the_atlas9_grid_reads_as_an_array_grid_and_a_slice_round_trips(atlas9, tmp_path):
    assert atlas9.params.shape == (725, 3) and atlas9.meta["medium"] == "air"
    assert atlas9.wave[0] == pytest.approx(3860.0) and atlas9.wave[-1] == pytest.approx(7440.0)
    np.testing.assert_allclose(np.diff(atlas9.wave), 0.2, atol=1e-9)
    assert atlas9.flux.shape == (725, atlas9.wave.size) and atlas9.flux.dtype == np.float32
    assert np.isfinite(atlas9.flux).all() and (atlas9.flux >= 0).all()
    lo, hi = atlas9.params.min(axis=0), atlas9.params.max(axis=0)
    np.testing.assert_allclose([lo, hi], [[3500, 0, -2.0], [8000, 5, 0.5]])
    # A few-model slice written and read again, as a user would cut a grid down.
    rows = np.array([0, 100, 724])
    cut = Grid(atlas9.params[rows], atlas9.wave, atlas9.flux[rows], {"medium": "air"})
    write_array_grid(tmp_path / "slice.npz", cut)
    back = read_array_grid(tmp_path / "slice.npz")
    np.testing.assert_array_equal(back.params, cut.params)
    np.testing.assert_array_equal(back.flux, cut.flux)
    assert back.meta["medium"] == "air"


def test_the_grid_degraded_to_miles_resolution_matches_a_numpy_convolution(atlas9):
    rows = [0, 362]  # two real models (6250 K and 5250 K)
    settings = PrepareSettings(**MILES, rest_frame=False, degrade_fwhm=2.5, input_fwhm=0.5)
    flux, ivar = to_grid(
        atlas9.wave, atlas9.flux[rows], np.ones_like(atlas9.flux[rows]), settings, medium="air"
    )
    expected = numpy_degraded(atlas9.wave, atlas9.flux[rows], 2.5, 0.5, settings.wave)
    inside = (settings.wave > 3930) & (settings.wave < 7370)  # away from the padded ends
    assert (ivar[:, inside] > 0).all()
    np.testing.assert_allclose(flux[:, inside], expected[:, inside], rtol=1e-5)


def test_a_narrow_line_leaves_with_the_target_width():
    wave = np.arange(5000.0, 5400.0, 0.2)
    sigma_in = 0.5 / FWHM_PER_SIGMA
    flux = 1.0 - 0.5 * np.exp(-0.5 * ((wave - 5200.0) / sigma_in) ** 2)
    settings = PrepareSettings(
        grid_start=5050.0,
        grid_stop=5350.0,
        grid_step=0.2,
        grid_medium="air",
        rest_frame=False,
        degrade_fwhm=2.5,
        input_fwhm=0.5,
    )
    out, _ = to_grid(wave, flux[None], np.ones((1, wave.size)), settings, medium="air")
    depth = 1.0 - out[0].astype(np.float64)
    x = settings.wave
    mean = (x * depth).sum() / depth.sum()
    sigma = np.sqrt(((x - mean) ** 2 * depth).sum() / depth.sum())
    assert mean == pytest.approx(5200.0, abs=1e-3)
    assert sigma * FWHM_PER_SIGMA == pytest.approx(2.5, rel=5e-3)
    # The line's area (equivalent width) is kept.
    assert depth.sum() * 0.2 == pytest.approx(0.5 * sigma_in * np.sqrt(2 * np.pi), rel=1e-3)


def test_a_vacuum_spectrum_lands_on_an_air_grid_and_back():
    """LAMOST (vacuum) onto the air grid of MILES and the ATLAS9 grid: H-alpha moves from
    6564.61 Å (vacuum) to 6562.80 Å (air); air -> vacuum -> air gives the input back."""
    wave_vac = np.arange(6500.0, 6630.0, 0.1)
    flux = 1.0 - 0.6 * np.exp(-0.5 * ((wave_vac - 6564.61) / 0.8) ** 2)
    air = PrepareSettings(grid_start=6520.0, grid_stop=6600.0, grid_step=0.1, grid_medium="air")
    on_air, _ = to_grid(wave_vac, flux[None], np.ones((1, wave_vac.size)), air, medium="vacuum")
    depth = 1.0 - on_air[0].astype(np.float64)
    centre = (air.wave * depth).sum() / depth.sum()
    assert centre == pytest.approx(float(vac_to_air(np.array([6564.61]))[0]), abs=2e-3)
    assert centre == pytest.approx(6562.80, abs=0.02)
    vac = PrepareSettings(grid_start=6525.0, grid_stop=6600.0, grid_step=0.1)
    back, _ = to_grid(air.wave, on_air, np.ones_like(on_air), vac, medium="air")
    inside = (vac.wave > 6530) & (vac.wave < 6590)
    np.testing.assert_allclose(
        back[0, inside], np.interp(vac.wave[inside], wave_vac, flux), atol=2e-3
    )
    np.testing.assert_allclose(air_to_vac(vac_to_air(air.wave)), air.wave, atol=1e-6)


def test_bootstrap_intervals_have_the_widths_theory_gives():
    rng = np.random.default_rng(1)
    n, sigma = 400, 2.0
    x = rng.normal(3.0, sigma, n)
    s = x.std(ddof=1)  # the bootstrap knows the sample, not sigma
    intervals = bootstrap_bias_scatter(x, n_boot=4000, seed=2)
    lo, hi = intervals["bias"]
    assert lo < x.mean() < hi
    assert (hi - lo) / 2 == pytest.approx(s / np.sqrt(n), rel=0.1)  # standard error
    lo, hi = intervals["scatter"]
    assert lo < s < hi
    assert (hi - lo) / 2 == pytest.approx(s / np.sqrt(2 * n), rel=0.15)
    # A wider level gives a wider interval; 95% is about 1.96 standard errors.
    lo95, hi95 = bootstrap_interval(lambda d: d.mean(axis=1), x, n_boot=4000, level=0.95)
    assert (hi95 - lo95) / 2 == pytest.approx(1.96 * s / np.sqrt(n), rel=0.1)


def test_bootstrap_ratios_resample_the_same_stars():
    rng = np.random.default_rng(3)
    a = rng.normal(0.0, 1.0, 200)
    assert scatter_ratio_interval(a, a) == (1.0, 1.0)  # the same stars: no spread at all
    assert scatter_ratio_interval(2 * a, a) == pytest.approx((2.0, 2.0))
    b = rng.normal(0.0, 1.0, 200)
    lo, hi = scatter_ratio_interval(a, b, n_boot=2000)
    assert lo < a.std(ddof=1) / b.std(ddof=1) < hi and hi - lo > 0.05
    # Rows with NaN in either sample are dropped from both.
    with_nan = a.copy()
    with_nan[:10] = np.nan
    assert scatter_ratio_interval(with_nan, a) == (1.0, 1.0)
    assert bootstrap_bias_scatter(np.full(50, 4.0))["bias"] == (4.0, 4.0)
    assert np.isnan(bootstrap_interval(lambda d: d.mean(axis=1), np.array([1.0]))).all()
    with pytest.raises(InputError, match="differ in length"):
        scatter_ratio_interval(a, b[:-1])
