"""Evaluation: cross-matching estimates with a reference, difference statistics, the report."""

import math

import numpy as np
import pytest

from sost_jax.evaluation.crossmatch import crossmatch, crossmatch_by_id, crossmatch_by_sky
from sost_jax.evaluation.metrics import (
    FEH_RANGES,
    SNR_EDGES,
    bias_scatter,
    binned_stats,
    cell_stats,
    gap_closed,
    in_range,
    step_edges,
    summary_table,
)
from sost_jax.evaluation.report import format_table, write_report

# ---------------------------------------------------------------------------- bias_scatter


def test_bias_scatter_of_known_values():
    s = bias_scatter([1.0, 2.0, 3.0, 4.0])
    assert s["n"] == 4
    assert s["bias"] == pytest.approx(2.5)
    assert s["median"] == pytest.approx(2.5)
    assert s["scatter"] == pytest.approx(np.std([1, 2, 3, 4], ddof=1))
    # MAD about 2.5 of |-1.5, -0.5, 0.5, 1.5| is 1.0.
    assert s["robust_sigma"] == pytest.approx(1.4826)


def test_robust_sigma_of_a_normal_sample_is_its_sigma_and_ignores_outliers():
    x = np.random.default_rng(0).normal(10.0, 3.0, 200_000)
    assert bias_scatter(x)["robust_sigma"] == pytest.approx(3.0, rel=0.01)
    x[:1000] = 1e6  # 0.5% wild values blow up the standard deviation, not the robust sigma
    s = bias_scatter(x)
    assert s["scatter"] > 1000
    assert s["robust_sigma"] == pytest.approx(3.0, rel=0.02)


def test_bias_scatter_ignores_nan():
    assert bias_scatter([1.0, np.nan, 3.0, np.inf]) == pytest.approx(
        {"n": 2, "bias": 2.0, "scatter": math.sqrt(2.0), "robust_sigma": 1.4826, "median": 2.0}
    )


def test_bias_scatter_with_fewer_than_two_values():
    one = bias_scatter([5.0, np.nan])
    assert one["n"] == 1 and one["bias"] == 5.0 and one["median"] == 5.0
    assert math.isnan(one["scatter"]) and math.isnan(one["robust_sigma"])
    none = bias_scatter([np.nan])
    assert none["n"] == 0
    assert all(math.isnan(none[k]) for k in ("bias", "scatter", "robust_sigma", "median"))
    assert bias_scatter([])["n"] == 0


# ---------------------------------------------------------------------------- by id


def test_crossmatch_by_id_with_shuffled_missing_and_duplicate_ids():
    est = np.array(["a", "b", "c", "d", "b"])
    ref = np.array([" c", "x", "b", "a", "b "])  # "b" twice: the first (row 2) is used
    i_est, i_ref = crossmatch_by_id(est, ref)
    np.testing.assert_array_equal(i_est, [0, 1, 2, 4])  # "d" is missing
    np.testing.assert_array_equal(i_ref, [3, 2, 0, 2])
    assert i_est.dtype == np.int64 and i_ref.dtype == np.int64


def test_crossmatch_by_id_compares_ids_as_strings():
    i_est, i_ref = crossmatch_by_id(
        np.array([3703110, 12, 7], dtype=np.int64), np.array([b"7", b"3703110 ", b"99"])
    )
    np.testing.assert_array_equal(i_est, [0, 2])
    np.testing.assert_array_equal(i_ref, [1, 0])
    i_est, i_ref = crossmatch_by_id(np.array([5.0, np.nan, 6.5]), np.array(["6.5", "5", "nan"]))
    np.testing.assert_array_equal(i_est, [0, 2])
    np.testing.assert_array_equal(i_ref, [1, 0])


def test_crossmatch_by_id_empty_ids_never_match():
    i_est, i_ref = crossmatch_by_id(np.array(["", "a"]), np.array(["", "a"]))
    np.testing.assert_array_equal(i_est, [1])
    np.testing.assert_array_equal(i_ref, [1])
    assert len(crossmatch_by_id([], ["a"])[0]) == 0
    assert len(crossmatch_by_id(["a"], np.array([], dtype=str))[0]) == 0


# ---------------------------------------------------------------------------- by sky


ARCSEC = 1.0 / 3600.0


def test_crossmatch_by_sky_radius():
    ref_ra, ref_dec = np.array([10.0, 50.0, 200.0]), np.array([20.0, -30.0, 60.0])
    # 1" north of star 1 (matches), 10" north of star 0 (does not), 1" east of star 2.
    est_ra = np.array([50.0, 10.0, 200.0 + ARCSEC / np.cos(np.radians(60.0))])
    est_dec = np.array([-30.0 + ARCSEC, 20.0 + 10 * ARCSEC, 60.0])
    i_est, i_ref, sep = crossmatch_by_sky(est_ra, est_dec, ref_ra, ref_dec, radius_arcsec=3.0)
    np.testing.assert_array_equal(i_est, [0, 2])
    np.testing.assert_array_equal(i_ref, [1, 2])
    np.testing.assert_allclose(sep, [1.0, 1.0], rtol=1e-3)
    i_est, _, sep = crossmatch_by_sky(est_ra, est_dec, ref_ra, ref_dec, radius_arcsec=11.0)
    np.testing.assert_array_equal(i_est, [0, 1, 2])
    assert sep[1] == pytest.approx(10.0, rel=1e-3)


def test_crossmatch_by_sky_nan_coordinates_never_match():
    ref_ra, ref_dec = np.array([10.0, np.nan, 30.0]), np.array([20.0, 0.0, 5.0])
    est_ra, est_dec = np.array([np.nan, 10.0, 30.0]), np.array([20.0, 20.0, np.nan])
    i_est, i_ref, _ = crossmatch_by_sky(est_ra, est_dec, ref_ra, ref_dec)
    np.testing.assert_array_equal(i_est, [1])
    np.testing.assert_array_equal(i_ref, [0])
    assert len(crossmatch_by_sky([np.nan], [0.0], [1.0], [1.0])[0]) == 0
    assert len(crossmatch_by_sky([1.0], [1.0], [np.nan], [1.0])[0]) == 0


def test_crossmatch_by_sky_rejects_bad_input():
    with pytest.raises(ValueError, match="est_ra"):
        crossmatch_by_sky([1.0, 2.0], [1.0], [1.0], [1.0])
    with pytest.raises(ValueError, match="declinations"):
        crossmatch_by_sky([1.0], [95.0], [1.0], [1.0])


# ---------------------------------------------------------------------------- crossmatch


def _tables():
    reference = {
        "id": np.array(["s1", "s2", "s3", "s4"]),
        "ra": np.array([10.0, 20.0, 30.0, 40.0]),
        "dec": np.array([0.0, 10.0, 20.0, 30.0]),
        "teff": np.array([5000.0, 5500.0, 6000.0, 4500.0]),
        "logg": np.array([4.5, 4.0, 3.5, 2.5]),
        "feh": np.array([0.0, -0.5, -1.0, -2.0]),
        "snr": np.array([11.0, 22.0, 33.0, 44.0]),
    }
    estimates = {
        "id": np.array(["s3", "s9", "s1"]),
        "ra": np.array([30.0, 100.0, 10.0 + 0.5 * ARCSEC]),
        "dec": np.array([20.0 + ARCSEC, 0.0, 0.0]),
        "teff": np.array([6100.0, 7000.0, 4950.0]),
        "logg": np.array([3.6, 1.0, 4.4]),
        "feh": np.array([-0.9, 0.0, 0.1]),
        "snr": np.array([30.0, 5.0, 10.0]),
        "flags": np.array([0, 2, 1], dtype=np.int32),
    }
    return estimates, reference


def test_crossmatch_auto_uses_ids_when_they_are_shared():
    estimates, reference = _tables()
    m = crossmatch(estimates, reference)
    np.testing.assert_array_equal(m["id"], ["s3", "s1"])
    np.testing.assert_array_equal(m["est_teff"], [6100.0, 4950.0])
    np.testing.assert_array_equal(m["ref_teff"], [6000.0, 5000.0])
    np.testing.assert_array_equal(m["ref_feh"], [-1.0, 0.0])
    np.testing.assert_array_equal(m["snr"], [30.0, 10.0])  # the estimates' S/N
    np.testing.assert_array_equal(m["flags"], [0, 1])
    assert "sep_arcsec" not in m
    for name in ("teff", "logg", "feh"):
        assert m[f"est_{name}"].dtype == np.float64


def test_crossmatch_auto_falls_back_to_the_sky_without_common_ids():
    estimates, reference = _tables()
    estimates["id"] = np.array(["x", "y", "z"])
    m = crossmatch(estimates, reference)
    np.testing.assert_array_equal(m["i_est"], [0, 2])
    np.testing.assert_array_equal(m["i_ref"], [2, 0])
    np.testing.assert_allclose(m["sep_arcsec"], [1.0, 0.5], rtol=1e-3)
    np.testing.assert_array_equal(m["id"], ["x", "z"])
    del estimates["id"]
    m = crossmatch(estimates, reference)
    np.testing.assert_array_equal(m["id"], ["s3", "s1"])  # the reference's ids
    assert len(crossmatch(estimates, reference, radius_arcsec=0.1)["est_teff"]) == 0


def test_crossmatch_forced_methods_and_astropy_tables():
    from astropy.table import Table

    estimates, reference = _tables()
    by_sky = crossmatch(Table(estimates), Table(reference), by="sky")
    np.testing.assert_array_equal(by_sky["ref_logg"], [3.5, 4.5])
    by_id = crossmatch(Table(estimates), Table(reference), by="id")
    np.testing.assert_array_equal(by_id["ref_logg"], [3.5, 4.5])
    assert "sep_arcsec" in by_sky and "sep_arcsec" not in by_id


def test_crossmatch_takes_snr_from_the_reference_and_fills_missing_labels():
    estimates, reference = _tables()
    del estimates["snr"], estimates["flags"], reference["feh"]
    m = crossmatch(estimates, reference)
    np.testing.assert_array_equal(m["snr"], [33.0, 11.0])
    assert "flags" not in m
    assert np.isnan(m["ref_feh"]).all() and len(m["ref_feh"]) == 2


def test_crossmatch_errors_are_clear():
    estimates, reference = _tables()
    with pytest.raises(ValueError, match='by must be "auto"'):
        crossmatch(estimates, reference, by="name")
    no_keys = {k: v for k, v in estimates.items() if k not in ("id", "ra", "dec")}
    with pytest.raises(ValueError, match="cannot cross-match"):
        crossmatch(no_keys, reference)
    with pytest.raises(ValueError, match="by='id' needs"):
        crossmatch(no_keys, reference, by="id")
    with pytest.raises(ValueError, match="by='sky' needs"):
        crossmatch(no_keys, reference, by="sky")
    other_ids = {k: v for k, v in estimates.items() if k not in ("ra", "dec")}
    other_ids["id"] = np.array(["x", "y", "z"])
    with pytest.raises(ValueError, match="share no id"):
        crossmatch(other_ids, reference)
    with pytest.raises(ValueError, match="no label column"):
        crossmatch({"id": estimates["id"]}, reference)


# ---------------------------------------------------------------------------- summaries


def test_summary_table_and_mask():
    estimates, reference = _tables()
    m = crossmatch(estimates, reference)
    table = summary_table(m)
    assert set(table) == {"teff", "logg", "feh"}
    assert table["teff"]["n"] == 2
    assert table["teff"]["bias"] == pytest.approx(25.0)  # (+100 - 50) / 2
    assert table["logg"]["bias"] == pytest.approx(0.0)
    assert table["feh"]["scatter"] == pytest.approx(0.0, abs=1e-12)
    clean = summary_table(m, mask=m["flags"] == 0)
    assert clean["teff"]["n"] == 1 and clean["teff"]["bias"] == pytest.approx(100.0)
    with pytest.raises(ValueError, match="mask shape"):
        summary_table(m, mask=np.ones(5, bool))
    with pytest.raises(ValueError, match="lacks"):
        summary_table({"est_teff": np.zeros(2)})


def test_binned_stats_counts_and_means():
    x = np.array([5.0, 15.0, 15.0, 25.0, 1000.0, np.nan, 10.0])
    diff = np.array([1.0, 2.0, 4.0, np.nan, 7.0, 100.0, 6.0])
    bins = binned_stats(x, diff, edges=(0, 10, 20, 30, np.inf))
    assert [b["n"] for b in bins] == [1, 3, 0, 1]  # x = 10 falls in [10, 20)
    assert [b["lo"] for b in bins] == [0, 10, 20, 30]
    assert bins[-1]["hi"] == np.inf
    assert bins[1]["bias"] == pytest.approx(4.0)
    assert bins[1]["x_median"] == pytest.approx(15.0)
    assert math.isnan(bins[2]["bias"]) and math.isnan(bins[2]["x_median"])
    assert set(bins[0]) >= {"lo", "hi", "n", "bias", "scatter", "robust_sigma"}
    assert len(binned_stats(x, diff)) == len(SNR_EDGES) - 1
    with pytest.raises(ValueError, match="increasing"):
        binned_stats(x, diff, edges=(10, 0))
    with pytest.raises(ValueError, match="must both be"):
        binned_stats(x[:3], diff)


def test_cell_stats_counts_and_means():
    teff = np.array([4100.0, 4200.0, 4150.0, 4600.0, 4700.0, 9000.0, np.nan])
    logg = np.array([1.2, 1.3, 1.1, 2.2, 2.4, 1.0, 1.0])
    diff = np.array([10.0, 20.0, 30.0, 5.0, 7.0, 1.0, 1.0])
    mean, count = cell_stats(teff, logg, diff, [4000, 4500, 5000], [1.0, 2.0, 3.0], min_count=2)
    assert mean.shape == count.shape == (2, 2)
    np.testing.assert_array_equal(count, [[3, 0], [0, 2]])  # 9000 K lies outside the edges
    assert mean[0, 0] == pytest.approx(20.0)
    assert mean[1, 1] == pytest.approx(6.0)
    assert np.isnan(mean[0, 1]) and np.isnan(mean[1, 0])
    mean3, _ = cell_stats(teff, logg, diff, [4000, 4500, 5000], [1.0, 2.0, 3.0], min_count=3)
    assert mean3[0, 0] == pytest.approx(20.0) and np.isnan(mean3[1, 1])
    with pytest.raises(ValueError, match="teff_edges"):
        cell_stats(teff, logg, diff, [5000, 4000], [1.0, 2.0])


def test_feh_ranges_cover_every_metallicity_once():
    feh = np.array([-3.0, -1.0, -0.7, -0.5, -0.1, 0.0, 0.4])
    hits = np.stack([in_range(feh, lo, hi) for lo, hi in FEH_RANGES])
    np.testing.assert_array_equal(hits.sum(axis=0), 1)
    assert not in_range(np.array([np.nan]), -np.inf, np.inf).any()


def test_step_edges_cover_the_values():
    edges = step_edges([4120.0, 5980.0, np.nan], 250.0)
    assert edges[0] == 4000.0 and edges[-1] == 6000.0
    np.testing.assert_allclose(np.diff(edges), 250.0)
    np.testing.assert_array_equal(step_edges([2.0, 2.0], 0.5), [2.0, 2.5])
    with pytest.raises(ValueError, match="step"):
        step_edges([1.0], 0.0)


def test_gap_closed():
    assert gap_closed(200.0, 120.0, 100.0) == pytest.approx(0.8)
    assert gap_closed(200.0, 200.0, 100.0) == 0.0
    assert gap_closed(200.0, 100.0, 100.0) == 1.0
    assert gap_closed(200.0, 250.0, 100.0) == pytest.approx(-0.5)
    assert math.isnan(gap_closed(100.0, 90.0, 100.0))
    assert math.isnan(gap_closed(np.nan, 90.0, 80.0))


# ---------------------------------------------------------------------------- report


def _tables_for_report():
    return {
        "raw synthetic": {
            "teff": {"n": 120, "bias": 151.25, "scatter": 210.5, "robust_sigma": 180.0},
            "logg": {"n": 120, "bias": 0.2104, "scatter": 0.3311, "robust_sigma": 0.25},
            "feh": {"n": 119, "bias": -0.0812, "scatter": 0.1405, "robust_sigma": 0.11},
        },
        "SOST": {
            "teff": {"n": 120, "bias": -12.0, "scatter": 95.75, "robust_sigma": 80.0},
            "logg": {"n": 120, "bias": 0.012, "scatter": 0.1512, "robust_sigma": 0.13},
            "feh": {"n": 119, "bias": 0.004, "scatter": 0.0801, "robust_sigma": float("nan")},
        },
    }


def test_format_table_is_aligned_and_holds_the_numbers():
    text = format_table(_tables_for_report())
    lines = text.splitlines()
    assert len(lines) == 2 + 6
    assert "robust sigma" in lines[0] and set(lines[1]) <= {"-", " "}
    assert len({len(line) for line in lines[2:]}) == 1  # right-aligned numbers
    for value in ("151.2", "210.5", "0.210", "-0.081", "95.8", "nan", "Teff [K]", "[Fe/H] [dex]"):
        assert value in text


def test_write_report_has_the_table_and_relative_image_links(tmp_path):
    figures = [
        tmp_path / "figures" / "fig11_estimates.png",
        tmp_path / "figures" / "fig11_estimates.pdf",
        tmp_path / "fig13.pdf",
    ]
    path = write_report(
        tmp_path / "out" / "report.md",
        _tables_for_report(),
        figures,
        title="Test run",
        notes=["Reference: APOGEE DR17.", "Second note."],
    )
    text = path.read_text()
    assert text.startswith("# Test run")
    assert "Reference: APOGEE DR17." in text and "Second note." in text
    assert "| SOST | Teff [K] | 120 | -12.0 | 95.8 | 80.0 |" in text
    assert "| raw synthetic | log g [dex] | 120 | 0.210 | 0.331 | 0.250 |" in text
    assert "K" in text and "dex" in text
    assert "![fig11 estimates](../figures/fig11_estimates.png)" in text
    assert "fig11_estimates.pdf" not in text  # its PNG is shown
    assert "[fig13](../fig13.pdf)" in text  # no PNG: linked
    captioned = write_report(tmp_path / "r2.md", {}, {"Fig. 7": tmp_path / "a" / "f7.png"})
    text = captioned.read_text()
    assert "![Fig. 7](a/f7.png)" in text and "no matched stars" in text
