"""The paper's figures, from plain arrays; each function writes a PNG (and a PDF) and returns
the paths written (`save.save_figure`).

``spectra``
    Spectra against wavelength: spectra of several kinds at the same labels, the relative
    residuals of the reconstructions (paper Fig. 7), observed, raw and translated spectra
    (Figs. 9-10 at full resolution), what the translation learnt, a gallery of templates
    (Fig. 10), continuous fits of a few spectra.
``tsne``
    t-SNE embeddings of spectra or codes, coloured by group (Fig. 8).
``kiel``
    The Teff-log g plane: a library's templates over the reference stars (Fig. 9), the
    label distribution of a set of stars.
``labels``
    Estimated against reference labels: one-to-one panels (Fig. 11), differences against
    S/N (Fig. 13), mean differences in the Teff-log g plane (Fig. 14), pull distributions.
"""
