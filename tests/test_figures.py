"""The paper's figures: every function writes a non-empty PNG and PDF from small inputs."""

import numpy as np
import pytest

from sost_jax.evaluation.crossmatch import crossmatch
from sost_jax.evaluation.figures import kiel, spectra, tsne
from sost_jax.evaluation.figures import labels as label_figures


def _written(paths, stem):
    assert sorted(p.suffix for p in paths) == [".pdf", ".png"]
    for p in paths:
        assert p.stem == stem and p.is_file() and p.stat().st_size > 1000
    return paths


def _matched(rng, n=150, scale=1.0):
    """A crossmatch result of n stars with errors growing towards low S/N."""
    reference = {
        "id": np.arange(n).astype(str),
        "teff": rng.uniform(3800.0, 7000.0, n),
        "logg": rng.uniform(0.5, 5.0, n),
        "feh": rng.uniform(-2.0, 0.5, n),
    }
    snr = rng.uniform(5.0, 150.0, n)
    noise = scale * (1.0 + 20.0 / snr)
    estimates = {
        "id": reference["id"],
        "teff": reference["teff"] + rng.normal(30.0, 80.0 * noise),
        "logg": reference["logg"] + rng.normal(0.05, 0.15 * noise),
        "feh": reference["feh"] + rng.normal(-0.02, 0.08 * noise),
        "snr": snr,
    }
    estimates["teff"][:3] = np.nan  # unmatched labels must not break a figure
    return crossmatch(estimates, reference)


def test_plot_residuals(tmp_path):
    rng = np.random.default_rng(0)
    wave = np.linspace(3800.0, 5800.0, 300)
    res = {
        "reconstruction synthetic": rng.normal(0, 0.01, (20, 300)),
        "cycle observed": rng.normal(0, 0.03, (20, 300)),
    }
    res["cycle observed"][:, 50] = np.nan  # a pixel masked in every spectrum
    _written(spectra.plot_residuals(wave, res, tmp_path / "fig7.png"), "fig7")
    with pytest.raises(ValueError, match="window"):
        spectra.plot_residuals(wave, res, tmp_path / "x", window=(7000.0, 8000.0))
    with pytest.raises(ValueError, match=r"\[N, 300\]"):
        spectra.plot_residuals(wave, {"bad": np.zeros((2, 5))}, tmp_path / "x")


def test_tsne_embedding_subsamples_and_keeps_perplexity_below_the_points():
    rng = np.random.default_rng(1)
    groups = {"synthetic": rng.normal(0, 1, (40, 8)), "observed": rng.normal(2, 1, (25, 8))}
    xy, group = tsne.tsne_embedding(groups, seed=0, perplexity=30.0, max_points=20)
    assert xy.shape == (40, 2) and np.isfinite(xy).all()
    np.testing.assert_array_equal(np.bincount(group), [20, 20])
    with pytest.raises(ValueError, match="same vector length"):
        tsne.tsne_embedding({"a": np.zeros((10, 3)), "b": np.zeros((10, 4))})
    with pytest.raises(ValueError, match="at least 4"):
        tsne.tsne_embedding({"a": np.zeros((3, 3))})


def test_plot_tsne_and_panels(tmp_path):
    rng = np.random.default_rng(2)
    groups = {"synthetic": rng.normal(0, 1, (30, 60)), "observed": rng.normal(1, 1, (30, 60))}
    _written(tsne.plot_tsne(groups, tmp_path / "fig8", perplexity=30.0), "fig8")
    panels = {
        "spectra before": groups,
        "content codes": {
            "synthetic": rng.normal(0, 1, (20, 4)),
            "observed": rng.normal(0, 1, (20, 4)),
        },
    }
    _written(tsne.plot_tsne_panels(panels, tmp_path / "fig8_panels", max_points=15), "fig8_panels")


def test_plot_library_coverage(tmp_path):
    rng = np.random.default_rng(3)
    lib = np.stack(
        [rng.uniform(4000, 6500, 40), rng.uniform(1, 5, 40), rng.uniform(-2, 0.5, 40)], 1
    )
    ref = np.stack(
        [rng.uniform(3800, 7000, 300), rng.uniform(0.5, 5, 300), rng.normal(-0.3, 0.4, 300)], 1
    )
    ref[0] = np.nan
    _written(kiel.plot_library_coverage(lib, ref, tmp_path / "fig9"), "fig9")
    with pytest.raises(ValueError, match=r"\[N, 3\]"):
        kiel.plot_library_coverage(lib[:, :2], ref, tmp_path / "x")


def test_plot_library_coverage_with_a_large_reference_uses_a_density_map(tmp_path):
    rng = np.random.default_rng(4)
    lib = np.stack(
        [rng.uniform(4000, 6500, 10), rng.uniform(1, 5, 10), rng.uniform(-2, 0.5, 10)], 1
    )
    ref = np.stack([rng.uniform(3800, 7000, 6000), rng.uniform(0.5, 5, 6000), np.zeros(6000)], 1)
    _written(kiel.plot_library_coverage(lib, ref, tmp_path / "fig9_dense"), "fig9_dense")


def test_plot_template_gallery(tmp_path):
    rng = np.random.default_rng(5)
    wave = np.linspace(4000.0, 5500.0, 200)
    labels = np.stack(
        [rng.uniform(4000, 7000, 30), rng.uniform(1, 5, 30), rng.uniform(-2, 0.5, 30)], 1
    )
    flux = 1.0 - 0.4 * np.exp(-0.5 * ((wave - 4861.0) / 8.0) ** 2) + rng.normal(0, 0.01, (30, 200))
    _written(spectra.plot_template_gallery(wave, flux, labels, tmp_path / "fig10", n=12), "fig10")
    # More templates asked for than there are: all of them.
    _written(
        spectra.plot_template_gallery(wave, flux[:5], labels[:5], tmp_path / "few", n=12), "few"
    )
    with pytest.raises(ValueError, match="labels"):
        spectra.plot_template_gallery(wave, flux, labels[:4], tmp_path / "x")


def test_plot_estimates_vs_reference(tmp_path):
    rng = np.random.default_rng(6)
    rows = {
        "raw synthetic": _matched(rng, scale=3.0),
        "SOST": _matched(rng),
        "oracle": _matched(rng, scale=0.7),
    }
    _written(label_figures.plot_estimates_vs_reference(rows, tmp_path / "fig11"), "fig11")
    _written(
        label_figures.plot_estimates_vs_reference(
            rows, tmp_path / "fig11_plain", residual_axes=False
        ),
        "fig11_plain",
    )


def test_plot_differences_vs_snr(tmp_path):
    rng = np.random.default_rng(7)
    rows = {"raw synthetic": _matched(rng, scale=3.0), "SOST": _matched(rng)}
    _written(label_figures.plot_differences_vs_snr(rows, tmp_path / "fig13"), "fig13")
    _written(
        label_figures.plot_differences_vs_snr(rows, tmp_path / "fig13_log", log_snr=True),
        "fig13_log",
    )
    no_snr = {k: v for k, v in rows["SOST"].items() if k != "snr"}
    with pytest.raises(ValueError, match="snr"):
        label_figures.plot_differences_vs_snr({"SOST": no_snr}, tmp_path / "x")


def test_plot_bias_plane(tmp_path):
    rng = np.random.default_rng(8)
    _written(label_figures.plot_bias_plane(_matched(rng, n=400), tmp_path / "fig14"), "fig14")
    # A range with no star at all still draws (blank panels).
    _written(
        label_figures.plot_bias_plane(
            _matched(rng), tmp_path / "fig14b", feh_ranges=((1.0, 2.0), (-5.0, 5.0))
        ),
        "fig14b",
    )


def test_plot_translation_examples_and_learnt_change(tmp_path):
    rng = np.random.default_rng(0)
    wave = np.linspace(3900.0, 7400.0, 300)
    raw = 1.0 - 0.3 * rng.random((4, 300))
    observed, translated = raw + 0.01, raw + 0.005
    params = np.array([[3700, 1.0, 0.0], [4500, 2.5, 0.0], [5800, 4.4, 0.0], [6500, 4.2, -0.3]])
    titles = ["M", "K giant", "Sun", "F"]
    written = spectra.plot_translation_examples(
        wave, observed, raw, translated, params, titles, tmp_path / "spectra", pdf=False
    )
    assert [p.name for p in written] == ["spectra.png"] and written[0].stat().st_size > 10_000
    with pytest.raises(spectra.InputError, match="must be"):
        spectra.plot_translation_examples(
            wave, observed[:3], raw, translated, params, titles, tmp_path / "bad", pdf=False
        )
    written = spectra.plot_learnt_change(
        wave, raw, translated, params, tmp_path / "change", {"TiO": (4954.0, 5167.0)}
    )
    assert [p.suffix for p in written] == [".png", ".pdf"]
    with pytest.raises(spectra.InputError, match="must be"):
        spectra.plot_learnt_change(wave, raw[:2], translated[:2], params, tmp_path / "bad")
