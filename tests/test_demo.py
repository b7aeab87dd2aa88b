"""The demo (the README's main command) on a tiny mock survey: every stage, the report,
resumption."""

import json
from pathlib import Path

import numpy as np

from sost_jax.cli import main
from sost_jax.data.store import PreparedStore
from sost_jax.inference.catalogue import read_catalogue

TINY = [
    "--config",
    "configs/tiny.py",
    "--set",
    "demo.n_synthetic=40",
    "--set",
    "demo.n_observed=40",
    "--set",
    "demo.n_test=16",
    "--set",
    "mock.grid.teff_step=1500.0",
    "--set",
    "mock.grid.logg_step=2.5",
    "--set",
    "mock.grid.feh_step=1.5",
    "--set",
    "loss.paired=10.0",
    "--set",
    "model.translation='change'",
    "--set",
    "demo.label_noise=[50.0, 0.1, 0.05]",
    "--quiet",
]


def test_demo_writes_stores_figures_and_resumes(tmp_path, capsys):
    work = tmp_path / "demo"
    assert main(["demo", "--workdir", str(work), *TINY]) == 0
    out = capsys.readouterr().out
    assert "synthetic_grid" in out and "scatter gap closed by SOST" in out
    summary = json.loads((work / "summary.json").read_text())
    assert summary["n_spectra"]["test"] == 16 and summary["n_spectra"]["observed"] == 40
    assert len(summary["figures"]) >= 9
    for path in summary["figures"]:
        assert path.endswith(".png")
        with open(path, "rb") as fh:
            assert len(fh.read()) > 10_000
    report = (work / "report" / "report.md").read_text()
    assert "Fig. 7" in report and "Fig. 11" in report and "oracle" in report
    flat = json.loads((work / "demo.json").read_text())
    for key in ("gap_closed_teff", "gap_closed_logg", "gap_closed_feh", "runtime_minutes"):
        assert key in flat
    for lib in ("raw", "sost", "oracle"):
        assert flat[f"{lib}_teff_n"] == 16 and np.isfinite(flat[f"{lib}_feh_scatter"])
    for lib in ("raw", "sost", "oracle"):
        assert (work / "libraries" / f"library_{lib}.fits").exists()
        assert (work / "catalogues" / lib / "catalogue.fits").exists()
    # continuous fits through the raw and the translated emulator, beside the grid's
    for lib in ("raw_fit", "sost_fit"):
        assert flat[f"{lib}_teff_n"] == 16 and np.isfinite(flat[f"{lib}_logg_scatter"])
        assert "rv" in read_catalogue(work / "catalogues" / lib / "catalogue.fits")
    assert (work / "libraries" / "translated_emulator" / "emulator.json").exists()
    names = [Path(p).name for p in summary["figures"]]
    assert "fit_examples.png" in names and "fit_pulls.png" in names
    # the observed stars' synthetic partners, at their labels plus the demo's label errors
    pairs = PreparedStore(work / "pairs")
    observed = PreparedStore(work / "mock" / "observed")
    assert len(pairs) == 40 and flat["n_paired"] == pairs.info["n_paired"] > 20
    offsets = np.abs(pairs.labels - observed.labels)
    assert 0 < np.nanmedian(offsets[:, 0]) < 200 and 0 < np.nanmedian(offsets[:, 2]) < 0.2
    assert flat["translation"] == "change" and "paired 10" in report
    test = PreparedStore(work / "mock" / "test")
    assert test.complete and not np.isnan(test.labels).any()
    assert len(list((work / "mock" / "test_fits").glob("*.fits"))) == 16
    first = test.read(np.arange(16))["flux"]
    shard = work / "mock" / "observed" / "shards" / "00000" / "flux.npy"
    written = shard.stat().st_mtime_ns
    # A second run finds every part complete and leaves it as it was.
    assert main(["demo", "--workdir", str(work), *TINY]) == 0
    again = PreparedStore(work / "mock" / "test").read(np.arange(16))["flux"]
    np.testing.assert_array_equal(first, again)
    assert shard.stat().st_mtime_ns == written  # not simulated or prepared again
    # the resumed run did not train or validate again, but still reports the validation
    assert "train_val_recon_a" in json.loads((work / "demo.json").read_text())
