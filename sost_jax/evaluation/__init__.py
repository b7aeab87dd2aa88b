"""Evaluation against reference labels: ``metrics`` (bias, scatter, bootstrap intervals),
``report`` (tables of catalogues against a reference catalogue), ``plots`` and ``figures``
(the paper's figures)."""
