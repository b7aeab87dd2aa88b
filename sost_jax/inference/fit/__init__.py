"""The continuous fit after the grid match (``infer.method = "fit"``): ``spectral_model``
(emulator, RV, continuum), ``fitting`` (the bounded Levenberg-Marquardt fit), ``fitter``
(that fit jit-compiled and sharded, in rounds), ``calibration`` (its errors against reference
labels), ``stage`` (the fit inside an inference run)."""
