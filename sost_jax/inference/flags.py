"""Quality flags of a catalogue row: the bits of its ``flags`` column (int32).

Set by the grid estimate (`sost_jax.inference.grid_estimate.estimate`: EDGE, POOR_FIT,
FEW_PIXELS, NO_DATA), the continuous fit (`sost_jax.inference.fit.fitting.finish_fit`: the
same bits and NOT_CONVERGED) and the in-memory core (`sost_jax.inference.estimate`:
UNPHYSICAL_FLUX); the catalogue describes every bit in its header
(`sost_jax.inference.catalogue`).
"""

from __future__ import annotations

import enum


class MatchFlag(enum.IntFlag):
    """Quality bits of a template-matching estimate (``flags`` column, int32)."""

    NONE = 0
    """A clean estimate."""

    EDGE = 1
    """The best template lies on the edge of the library: less than ``edge_steps`` grid steps
    from the lowest or highest value of Teff, log g or [Fe/H] in the library (the step of a
    label is the smallest positive difference between its sorted template values). The true
    labels may lie outside the library, and the estimate is biased towards its inside."""

    POOR_FIT = 2
    """The reduced chi2 of the best template, chi2 / (n_good - 3), exceeds ``poor_fit``: no
    template describes the spectrum (wrong class, bad calibration, binary, artefacts)."""

    FEW_PIXELS = 4
    """Fewer than ``min_fraction`` of the pixels have a positive weight."""

    NO_DATA = 8
    """No pixel has a positive weight: labels, uncertainties and chi2 are NaN."""

    NOT_CONVERGED = 16
    """A continuous fit (`sost_jax.inference.fit.fitting`) stopped at its iteration limit
    before chi2 settled; its labels are the best point reached."""

    UNPHYSICAL_FLUX = 32
    """The input flux is zero or negative at every pixel with data (a failed extraction or
    sky subtraction, not a star): the spectrum is kept as a row without data (NO_DATA)."""
