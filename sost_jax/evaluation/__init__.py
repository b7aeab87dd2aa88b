"""Evaluation against reference labels: ``crossmatch`` (estimates paired with reference
labels, by id or by sky position), ``metrics`` (bias, scatter, bootstrap intervals, binned
and Teff-log g cell statistics), ``report`` (tables, the Markdown report, the evaluation of
catalogues) and ``figures`` (the paper's figures: ``spectra``, ``tsne``, ``kiel``,
``labels``)."""
