"""The embedded mock survey: two spectral domains with a known gap and known truth.

A "synthetic" domain (continuum times a built-in table of FGKM features, Gaussian LSF) and
an "observed" domain that differs from it the way survey spectra differ from models
(mis-calibrated feature strengths, missing lines, a different non-Gaussian LSF, tellurics,
flux-calibration residuals, noise, masks, cosmic rays, RV residuals). Every ingredient is a
knob of `MockSettings`. `write_mock_lamost_survey` writes observed spectra as
LAMOST DR5+-layout FITS files with a labels catalogue.
"""

from sost_jax.mock.features import (
    FeatureTable,
    feature_strengths,
    feature_table,
    profile_matrix,
)
from sost_jax.mock.lamost_files import (
    lamost_wavelength,
    write_lamost_fits,
    write_mock_lamost_survey,
)
from sost_jax.mock.lsf import lsf_kernel
from sost_jax.mock.observe import band_snr, observed_spectra
from sost_jax.mock.params import COMPONENTS, grid_parameters, main_sequence_logg, sample_parameters
from sost_jax.mock.settings import MockSettings
from sost_jax.mock.simulate import (
    MASK_BAD_PIXEL,
    MASK_COSMIC,
    continuum,
    default_wave,
    fine_grid,
    gap_factors,
    mock_feature_table,
    synthetic_spectra,
)

__all__ = [
    "COMPONENTS",
    "MASK_BAD_PIXEL",
    "MASK_COSMIC",
    "FeatureTable",
    "MockSettings",
    "band_snr",
    "continuum",
    "default_wave",
    "feature_strengths",
    "feature_table",
    "fine_grid",
    "gap_factors",
    "grid_parameters",
    "lamost_wavelength",
    "lsf_kernel",
    "main_sequence_logg",
    "mock_feature_table",
    "observed_spectra",
    "profile_matrix",
    "sample_parameters",
    "synthetic_spectra",
    "write_lamost_fits",
    "write_mock_lamost_survey",
]
