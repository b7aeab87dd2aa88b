"""Data: from survey files to the prepared arrays every later stage reads.

``io`` reads FITS spectra, synthetic grids and reference catalogues; ``preprocess`` moves a spectrum
to the rest frame, resamples it, sets its resolution and normalises it; ``prepare`` turns arrays in
memory and ``prepare_files`` turns files into a prepared ``store``; ``batches`` feeds training from
stores. ``spectra`` holds the containers passed between them.
"""
