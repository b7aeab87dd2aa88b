"""The whole method on the embedded mock survey (``sost-jax demo``): ``run`` trains SOST,
builds the raw and SOST libraries and parameterises a test set; ``fit`` adds the
continuous fit with calibrated errors."""
