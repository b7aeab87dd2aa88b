"""Preparing FITS files: real and mock LAMOST files, bad input, resumption, the CLI."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fixtures_kill import kill_when, slowed

from sost_jax.cli import expand_inputs, main
from sost_jax.data.io import labels_by_id, read_reference_catalog
from sost_jax.data.prepare import PrepareSettings
from sost_jax.data.prepare_files import prepare_files
from sost_jax.data.store import PreparedStore
from sost_jax.mock import MockSettings, lamost_wavelength, write_lamost_fits
from sost_jax.mock import write_mock_lamost_survey as write_survey

SETTINGS = PrepareSettings(grid_start=4000.0, grid_stop=8000.0, grid_step=2.0)


@pytest.fixture(scope="module")
def mock_files(tmp_path_factory) -> tuple[list[str], dict]:
    out = tmp_path_factory.mktemp("mockfits")
    labels_csv = write_survey(out, 12, MockSettings(), seed=3)
    cat = read_reference_catalog(labels_csv)
    labels = labels_by_id(cat)
    return sorted(str(p) for p in out.glob("*.fits")), labels


def _bad_files(folder: Path, good: str) -> list[str]:
    """A truncated file, random bytes, a zero-ivar spectrum and one outside the grid."""
    raw = Path(good).read_bytes()
    (folder / "truncated.fits").write_bytes(raw[: len(raw) // 2])
    (folder / "noise.fits").write_bytes(np.random.default_rng(0).bytes(20000))
    wave = lamost_wavelength()
    flux = np.ones(wave.size, np.float32)
    zeros = np.zeros(wave.size, np.float32)
    header = {"OBSID": 7, "Z": 0.0}
    write_lamost_fits(folder / "zero_ivar.fits", wave, flux, zeros, zeros, zeros, header)
    header = {"OBSID": 8, "Z": 0.0}
    ones = np.ones(wave.size, np.float32)
    write_lamost_fits(folder / "blue.fits", wave * 0.4, flux, ones, zeros, zeros, header)
    return [
        str(folder / n) for n in ("truncated.fits", "noise.fits", "zero_ivar.fits", "blue.fits")
    ]


def test_bad_files_are_listed_and_the_batch_goes_on(tmp_path, mock_files):
    paths, labels = mock_files
    bad = _bad_files(tmp_path, paths[0])
    store = prepare_files(
        paths + bad,
        tmp_path / "store",
        SETTINGS,
        labels=labels,
        workers=2,
        progress=False,
        shard_size=5,
        chunk_size=3,
    )
    assert len(store) == len(paths)
    reasons = dict(store.failures())
    assert set(reasons) == set(bad)
    assert "truncated" in reasons[bad[0]] or "short" in reasons[bad[0]]
    assert "ivar" in reasons[bad[2]]
    assert "cover" in reasons[bad[3]]
    # Labels follow the ids; flux is normalised; weights mark data.
    ids = store.meta["id"]
    np.testing.assert_allclose(store.labels, [labels[i] for i in ids], rtol=1e-5)
    data = store.read(np.arange(len(store)))
    good = data["weight"] > 0
    assert good.mean() > 0.95
    assert abs(np.median(data["flux"][good]) - 1.0) < 0.05


def test_bad_files_between_good_ones_leave_no_gap(tmp_path, mock_files):
    """Readers write their chunks into the shard at the chunk's place; skipped files leave
    room that the finished shard drops: rows as in a store of the good files alone."""
    paths, labels = mock_files
    bad = _bad_files(tmp_path, paths[0])
    mixed = [p for pair in zip(paths[:4], bad, strict=True) for p in pair] + paths[4:]
    kw = dict(labels=labels, progress=False, chunk_size=2)
    store = prepare_files(mixed, tmp_path / "mixed", SETTINGS, workers=2, shard_size=7, **kw)
    clean = prepare_files(paths, tmp_path / "clean", SETTINGS, workers=0, **kw)
    assert len(store) == len(paths) and len(store.shards) == 3
    assert set(dict(store.failures())) == set(bad)
    np.testing.assert_array_equal(store.meta["id"], clean.meta["id"])
    idx = np.arange(len(paths))
    for key, want in clean.read(idx).items():  # normalised in other batches: to rounding
        np.testing.assert_allclose(store.read(idx)[key], want, rtol=1e-5, err_msg=key)


def test_threads_and_single_thread_agree_and_resume_is_exact(tmp_path, mock_files):
    paths, _ = mock_files
    one = prepare_files(paths, tmp_path / "a", SETTINGS, workers=0, progress=False, shard_size=4)
    two = prepare_files(paths, tmp_path / "b", SETTINGS, workers=2, progress=False, shard_size=4)
    idx = np.arange(len(one))
    np.testing.assert_array_equal(one.read(idx)["flux"], two.read(idx)["flux"])
    shutil.rmtree(tmp_path / "b" / "shards" / "00001")
    again = prepare_files(paths, tmp_path / "b", SETTINGS, workers=2, progress=False, shard_size=4)
    np.testing.assert_array_equal(one.read(idx)["flux"], again.read(idx)["flux"])
    np.testing.assert_array_equal(one.meta["id"], again.meta["id"])


_KILLED_RUN = (
    slowed("sost_jax.data.prepare_files._finish_shard", 1.5)
    + """
from sost_jax.data.prepare import PrepareSettings
from sost_jax.data.prepare_files import prepare_files
settings = PrepareSettings(grid_start=4000.0, grid_stop=8000.0, grid_step=2.0)
prepare_files({paths!r}, {out!r}, settings, workers=2, progress=False, shard_size=3,
              chunk_size=2)
"""
)


def test_a_killed_preparation_resumes_to_the_same_store(tmp_path, mock_files):
    """SIGKILLed while reader processes write rows into unfinished shards: the rerun
    discards the half-written shards and gives the store of an uninterrupted run."""
    paths, _ = mock_files
    kw = dict(workers=2, progress=False, shard_size=3, chunk_size=2)
    straight = prepare_files(paths, tmp_path / "straight", SETTINGS, **kw)
    out = tmp_path / "killed"
    script = _KILLED_RUN.format(paths=paths, out=str(out))
    proc = subprocess.Popen([sys.executable, "-c", script], env={**os.environ})
    first = out / "shards" / "00000"
    kill_when([proc], first.exists)
    assert first.exists(), "the run died before finishing its first shard"
    done = sorted(p.name for p in (out / "shards").iterdir())
    assert "00003" not in done and any(d.endswith(".partial") for d in done), done
    resumed = prepare_files(paths, out, SETTINGS, **kw)
    assert resumed.shards == [0, 1, 2, 3] and resumed.complete
    assert not list((out / "shards").glob("*.partial"))
    np.testing.assert_array_equal(resumed.meta["id"], straight.meta["id"])
    idx = np.arange(len(paths))
    for key, want in straight.read(idx).items():
        np.testing.assert_array_equal(resumed.read(idx)[key], want, err_msg=key)


def test_real_lamost_files_prepare_with_lasp_labels(tmp_path, shared_data):
    folder = shared_data / "lamost_dr10"
    cat = read_reference_catalog(folder / "LASP_CurveFit_inferred.csv")
    labels = labels_by_id(cat)
    store = prepare_files(
        expand_inputs([str(folder)]),
        tmp_path / "real",
        PrepareSettings(),
        labels=labels,
        workers=2,
        progress=False,
    )
    assert len(store) == 25 and store.failures() == []
    assert store.n_pixels == 4800
    labelled = ~np.isnan(store.labels[:, 0])
    assert labelled.sum() == len(set(cat["id"]) & set(store.meta["id"]))
    data = store.read(np.arange(25))
    assert np.all((data["weight"] > 0).mean(axis=1) > 0.95)
    assert np.all(np.abs(np.median(data["flux"], axis=1) - 1.0) < 0.05)


def test_expand_inputs(tmp_path):
    for name in ("a.fits", "b.fits.gz", "c.txt"):
        (tmp_path / name).write_text("x")
    (tmp_path / "list.txt").write_text(f"# files\n{tmp_path / 'c.txt'}\n")
    got = expand_inputs([str(tmp_path), f"@{tmp_path / 'list.txt'}"])
    assert [Path(p).name for p in got] == ["a.fits", "b.fits.gz", "c.txt"]


def test_cli_prepare_and_bad_arguments(tmp_path, mock_files, capsys):
    paths, _ = mock_files
    folder = str(Path(paths[0]).parent)
    out = tmp_path / "store"
    assert (
        main(
            [
                "prepare",
                folder,
                "--out",
                str(out),
                "--labels",
                f"{folder}/labels.csv",
                "--set",
                "preprocess.grid_step=2.0",
                "--quiet",
            ]
        )
        == 0
    )
    store = PreparedStore(out)
    assert len(store) == 12 and store.n_pixels == 2400
    assert (out / "config.json").exists()
    assert main(["prepare", folder, "--out", str(tmp_path / "x"), "--set", "nope=1"]) == 2
    assert "unknown config" in capsys.readouterr().err
    missing = str(tmp_path / "missing.fits")
    assert main(["infer", folder, "--library", missing, "--out", str(tmp_path / "i")]) == 2
    assert "does not exist" in capsys.readouterr().err
