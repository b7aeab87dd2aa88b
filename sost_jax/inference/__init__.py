"""Inference: Teff, log g and [Fe/H] of observed spectra.

``matching`` (chi2 against every template, the k best; vmapped and sharded),
``grid_estimate`` (the two-best rule, uncertainties, flags), ``flags`` (the flag bits),
``spectral_model`` and ``fitting`` (the continuous Levenberg-Marquardt fit), ``calibration``
(its errors); ``estimate`` is the in-memory core (prepared spectra in, catalogue columns
out), ``runner`` the resumable multi-process run over files or stores, ``catalogue`` the
output format, ``api`` the Python entry point for users' spectra.
"""
