"""Physical constants and unit conversions, in one place."""

C_KMS: float = 299_792.458
"""Speed of light [km/s]."""

FWHM_PER_SIGMA: float = 2.354_820_045_030_949
"""FWHM of a Gaussian in units of its standard deviation, 2 sqrt(2 ln 2)."""

LABEL_NAMES: tuple[str, str, str] = ("teff", "logg", "feh")
"""Order of the stellar labels everywhere: Teff [K], log g [dex, cgs], [Fe/H] [dex]."""
