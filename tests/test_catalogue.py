"""Survey inference: files or a store -> catalogue; resumption, failures, real LAMOST files."""

import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from fixtures_io import LAMOST_DIR, needs
from fixtures_kill import kill_when, slowed

from sost_jax.config import load_config, validate
from sost_jax.data.io import labels_by_id, read_reference_catalog
from sost_jax.data.prepare import prepare_arrays
from sost_jax.data.prepare_files import prepare_files
from sost_jax.errors import InputError
from sost_jax.inference.catalogue import read_catalogue
from sost_jax.inference.estimate import Estimator, InferSettings
from sost_jax.inference.fit.calibration import ErrorCalibration
from sost_jax.inference.fit.stage import CALIBRATION, FIT_COLUMNS
from sost_jax.inference.flags import MatchFlag
from sost_jax.inference.runner import infer_files, infer_store, iter_parts
from sost_jax.library.emulator import EmulatorSettings, train_emulator
from sost_jax.library.templates import Library, read_library, write_library
from sost_jax.mock import observed_spectra, write_mock_lamost_survey
from sost_jax.mock.params import grid_parameters

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny.py"
N_FILES = 24


def _oracle_library(config, out: Path) -> Library:
    """Noiseless observed-domain templates on a coarse grid, prepared like the targets."""
    settings = validate(config).preprocess
    params = grid_parameters(500.0, 1.0, 0.5, (4000.0, 7000.0), (1.0, 5.0), (-1.5, 0.5))
    mock = validate(config).mock
    spec = observed_spectra(params, settings.wave, mock, noiseless=True)
    store = prepare_arrays(out, settings.wave, spec["flux"], spec["ivar"], settings, params)
    data = store.read(np.arange(len(store)))
    return Library(store.wave, data["flux"], data["labels"], {"kind": "oracle"})


@pytest.fixture(scope="module")
def survey(tmp_path_factory):
    """24 mock LAMOST files, one corrupt file, their labels, and a library (tiny grid)."""
    root = tmp_path_factory.mktemp("survey")
    config = load_config(TINY)
    mock = validate(config).mock
    labels_csv = write_mock_lamost_survey(root / "fits", N_FILES, mock, seed=3)
    (root / "fits" / "broken.fits").write_bytes(b"SIMPLE  = T" + b"\0" * 100)
    library = _oracle_library(config, root / "library_store")
    lib_path = write_library(root / "library.fits", library)
    paths = sorted(str(p) for p in (root / "fits").glob("*.fits"))
    labels = labels_by_id(read_reference_catalog(labels_csv))
    return {"config": config, "paths": paths, "library": lib_path, "labels": labels}


def _run(survey, out, chunk=8, with_labels=True):
    return infer_files(
        survey["paths"],
        survey["library"],
        out,
        validate(survey["config"]).preprocess,
        InferSettings(k=5, chunk_size=chunk),
        labels=survey["labels"] if with_labels else None,
        workers=1,
        read_chunk=4,
        progress=False,
    )


def _prepared(survey, out):
    """The survey's files as a prepared store with their labels."""
    return prepare_files(
        survey["paths"],
        out,
        validate(survey["config"]).preprocess,
        labels=survey["labels"],
        workers=1,
        progress=False,
    )


def test_catalogue_equals_matching_the_prepared_store(survey, tmp_path):
    summary = _run(survey, tmp_path / "inf")
    cat = read_catalogue(summary["catalogue"])
    assert summary["n_rows"] == N_FILES and cat["teff"].shape == (N_FILES,)
    assert summary["n_failures"] == 1
    failures = (tmp_path / "inf" / "failures.csv").read_text()
    assert "broken.fits" in failures

    store = _prepared(survey, tmp_path / "store")
    settings = InferSettings(k=5, chunk_size=8)
    summary = infer_store(store, survey["library"], tmp_path / "direct", settings, progress=False)
    direct = read_catalogue(summary["catalogue"])
    order = {i: n for n, i in enumerate(cat["id"].astype(str))}
    rows = np.array([order[str(i)] for i in direct["id"]])
    for name in ("flags", "best_index"):
        np.testing.assert_array_equal(cat[name][rows], direct[name], err_msg=name)
    # other chunk shapes in normalisation and matching: float32 rounding differs slightly
    for name in ("teff", "logg", "feh", "teff_err", "feh_err", "chi2_best"):
        np.testing.assert_allclose(cat[name][rows], direct[name], rtol=2e-3, err_msg=name)
    # identity and reference columns come from the files and the labels catalogue
    assert (cat["obsid"] > 0).all() and np.isfinite(cat["ra"]).all()
    truth = np.array([survey["labels"][str(i)] for i in cat["id"]])
    np.testing.assert_allclose(cat["ref_teff"], truth[:, 0], rtol=1e-6)
    # the CSV holds the same table
    csv = read_catalogue(summary["csv"])
    np.testing.assert_allclose(csv["teff"], cat["teff"], rtol=1e-6)
    # the estimates track the truth: the library holds the same (noiseless) physics
    assert np.median(np.abs(cat["teff"] - cat["ref_teff"])) < 400


def test_the_estimator_in_memory_equals_the_run_on_disk(survey, tmp_path):
    store = _prepared(survey, tmp_path / "store")
    settings = InferSettings(k=5, chunk_size=8)
    run = read_catalogue(
        infer_store(store, survey["library"], tmp_path / "run", settings, progress=False)[
            "catalogue"
        ]
    )
    data = store.read(np.arange(len(store)))
    estimator = Estimator(survey["library"], settings)
    columns = estimator(data["flux"], data["weight"], store.meta, data["labels"])
    assert list(columns) == list(run)
    for name, column in columns.items():
        if column.dtype.kind in "fiu":
            np.testing.assert_array_equal(column, run[name], err_msg=name)
        else:
            assert list(column) == list(run[name]), name
    empty = estimator(data["flux"][:0], data["weight"][:0])
    assert set(empty) == set(run) - {"ref_teff", "ref_logg", "ref_feh"}
    assert all(len(v) == 0 for v in empty.values())
    with pytest.raises(InputError, match="do not fit the library's"):
        estimator(data["flux"][:, :-1], data["weight"][:, :-1])


_KILLED_RUN = (
    slowed("sost_jax.inference.runner._write_part", 2.0)
    + """
import sost_jax.inference.runner as c
from sost_jax.config import load_config, validate
c.infer_files({paths!r}, {library!r}, {out!r}, validate(load_config({tiny!r})).preprocess,
              c.InferSettings(k=5, chunk_size=8), workers=1, read_chunk=4, progress=False)
"""
)


def test_resume_after_a_kill_gives_the_same_catalogue(survey, tmp_path):
    reference = read_catalogue(_run(survey, tmp_path / "straight", with_labels=False)["catalogue"])

    out = tmp_path / "killed"
    script = _KILLED_RUN.format(
        paths=survey["paths"],
        library=str(survey["library"]),
        out=str(out),
        tiny=str(TINY),
    )
    proc = subprocess.Popen([sys.executable, "-c", script], env={**os.environ})
    first = out / "parts" / "part-00000.npz"
    kill_when([proc], first.exists)
    assert first.exists(), "the run died before writing its first part"
    assert not (out / "catalogue.fits").exists()
    written = sorted(p.name for p in (out / "parts").glob("part-*.npz"))
    assert 1 <= len(written) < 4  # killed mid-run: some parts, not all

    summary = _run(survey, out, with_labels=False)
    resumed = read_catalogue(summary["catalogue"])
    assert summary["n_rows"] == N_FILES
    assert list(resumed) == list(reference)
    for name, column in reference.items():
        np.testing.assert_array_equal(resumed[name], column, err_msg=name)
    assert sum(len(p["id"]) for p in iter_parts(out)) == N_FILES


def test_a_run_is_not_resumed_with_other_settings(survey, tmp_path):
    _run(survey, tmp_path / "inf")
    with pytest.raises(ValueError, match="other infer"):
        _run(survey, tmp_path / "inf", chunk=4)
    with pytest.raises(ValueError, match="other inputs"):
        infer_files(
            survey["paths"][:5],
            survey["library"],
            tmp_path / "inf",
            validate(survey["config"]).preprocess,
            InferSettings(k=5, chunk_size=8),
            labels=survey["labels"],
            progress=False,
        )


def test_library_on_another_grid_is_refused(survey, tmp_path):
    settings = validate(load_config(None)).preprocess  # 4800-pixel LAMOST grid
    with pytest.raises(ValueError, match="differs from the library"):
        infer_files(survey["paths"], survey["library"], tmp_path / "x", settings)


def test_infer_store_flags_empty_spectra_and_carries_labels(survey, tmp_path):
    config = survey["config"]
    settings = validate(config).preprocess
    rng = np.random.default_rng(0)
    params = np.column_stack(
        [rng.uniform(4200, 6800, 10), rng.uniform(1.5, 4.5, 10), rng.uniform(-1.2, 0.2, 10)]
    )
    mock = validate(config).mock
    spec = observed_spectra(params, settings.wave, mock, rng=rng, snr=50.0, rv=0.0)
    ivar = spec["ivar"].copy()
    ivar[3] = 0.0  # no data at all: fails the coverage check and is listed
    flux = spec["flux"].copy()
    flux[6] = -np.abs(flux[6])  # data, but negative everywhere: a flagged row
    flux[7, ::2] = -0.5  # negative in places only: an ordinary row
    store = prepare_arrays(tmp_path / "store", settings.wave, flux, ivar, settings, params)
    assert len(store) == 9
    summary = infer_store(
        store, survey["library"], tmp_path / "inf", InferSettings(k=4), progress=False
    )
    cat = read_catalogue(summary["catalogue"])
    assert summary["n_rows"] == 9 and summary["n_failures"] == 1
    np.testing.assert_allclose(cat["ref_logg"], store.labels[:, 1], rtol=1e-6)
    unphysical = (cat["flags"] & MatchFlag.UNPHYSICAL_FLUX) > 0
    assert list(np.flatnonzero(unphysical)) == [5]  # input 6, after the failed input 3
    assert cat["flags"][5] & MatchFlag.NO_DATA and np.isnan(cat["teff"][5])
    others = np.arange(9) != 5
    assert np.isfinite(cat["teff"][others]).all()
    assert set(np.unique(cat["flags"][others] & MatchFlag.NO_DATA)) == {0}
    assert summary["flag_counts"]["UNPHYSICAL_FLUX"] == 1


@needs(LAMOST_DIR)
def test_the_real_lamost_files_run_end_to_end(tmp_path):
    config = load_config(None)  # the LAMOST grid, 3900-8699 Å
    library = _oracle_library(config, tmp_path / "library_store")
    paths = sorted(str(p) for p in LAMOST_DIR.glob("*.fits"))
    lasp = labels_by_id(read_reference_catalog(LAMOST_DIR / "LASP_CurveFit_inferred.csv"))
    summary = infer_files(
        paths, library, tmp_path / "inf", validate(config).preprocess, labels=lasp, progress=False
    )
    cat = read_catalogue(summary["catalogue"])
    assert summary["n_rows"] + summary["n_failures"] == 25
    assert summary["n_rows"] >= 20
    assert set(cat["id"].astype(str)) <= {Path(p).stem for p in paths}
    assert (cat["obsid"] > 0).all() and np.isfinite(cat["ra"]).all() and (cat["snr"] > 0).all()
    good = (cat["flags"] & MatchFlag.NO_DATA) == 0
    lo, hi = library.labels.min(axis=0), library.labels.max(axis=0)
    for i, name in enumerate(("teff", "logg", "feh")):
        assert np.all((cat[name][good] >= lo[i] - 1e-3) & (cat[name][good] <= hi[i] + 1e-3))
    assert np.isfinite(cat["ref_teff"]).sum() >= 20  # the LASP labels were matched by id
    run = json.loads((tmp_path / "inf" / "run.json").read_text())
    assert run["inputs"]["n"] == 25


def test_is_current_tells_a_resumable_run_from_a_stale_one(survey, tmp_path):
    from sost_jax.inference.runner import is_current
    from sost_jax.library.templates import read_library

    out = tmp_path / "inf"
    assert is_current(out, survey["library"], survey["paths"])  # nothing there yet
    _run(survey, out)
    assert is_current(out, survey["library"], survey["paths"])
    assert not is_current(out, survey["library"], survey["paths"][:-1])
    library = read_library(survey["library"])
    library.flux[0] += 0.01  # a rebuilt library
    assert not is_current(out, library, survey["paths"])


@pytest.fixture(scope="module")
def fit_library(survey, tmp_path_factory):
    """The survey's library, naming an emulator of its own templates to fit through."""
    root = tmp_path_factory.mktemp("fitlib")
    library = read_library(survey["library"])
    settings = EmulatorSettings(hidden=(32,), activation="tanh", max_epochs=400, patience=400)
    emulator, _ = train_emulator(
        library.labels, library.flux, settings, wave=library.wave, progress=False
    )
    path = emulator.save(root / "emulator")
    library.meta["fit_emulator"] = str(path)
    return write_library(root / "library.fits", library), path


def _fit_run(survey, library, out):
    return infer_files(
        survey["paths"],
        library,
        out,
        validate(survey["config"]).preprocess,
        InferSettings(k=5, chunk_size=8, method="fit"),
        labels=survey["labels"],
        workers=1,
        progress=False,
    )


def test_the_fit_method_adds_rv_correlations_and_units(survey, fit_library, tmp_path):

    library, emulator = fit_library
    grid = read_catalogue(_run(survey, tmp_path / "grid")["catalogue"])
    summary = _fit_run(survey, library, tmp_path / "fit")
    cat = read_catalogue(summary["catalogue"])
    assert summary["n_rows"] == N_FILES
    assert set(FIT_COLUMNS) <= set(cat)
    np.testing.assert_array_equal(cat["id"], grid["id"])
    np.testing.assert_array_equal(cat["best_index"], grid["best_index"])  # started from it
    ok = cat["converged"]
    assert ok.mean() > 0.5 and (cat["n_iter"] >= 1).all()
    assert not np.allclose(cat["teff"][ok], grid["teff"][ok])  # continuous, off the grid
    low, high = library_span(library)
    assert ((cat["teff"] >= low[0] - 1e-3) & (cat["teff"] <= high[0] + 1e-3)).all()
    np.testing.assert_array_equal(cat["teff_err"], cat["teff_err_formal"])  # no calibration
    assert (np.abs(cat["corr_teff_logg"][ok]) <= 1.0 + 1e-5).all()
    _check_units(summary["catalogue"])
    record = json.loads((tmp_path / "fit" / "run.json").read_text())
    assert record["fit"]["emulator"] == str(emulator) and record["infer"]["method"] == "fit"


def _check_units(path):
    """The FITS catalogue reads without a warning in astropy (the issue's command) with
    every unit, and says dex where other readers (TOPCAT) look: TCOMMn, not TUNITn."""
    from astropy.io import fits
    from astropy.table import Table

    code = "import sys; from astropy.table import Table; Table.read(sys.argv[1])"
    run = subprocess.run(
        [sys.executable, "-W", "error::astropy.units.UnitsWarning", "-c", code, str(path)],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-800:]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = Table.read(path)
    assert table["teff"].unit == u.K and table["rv"].unit == u.km / u.s
    assert table["logg"].unit == u.dex and table["feh_err"].unit == u.dex
    header = fits.getheader(path, 1)
    names = {header[f"TTYPE{i}"]: i for i in range(1, header["TFIELDS"] + 1)}
    assert header[f"TUNIT{names['teff']}"] == "K" and f"TUNIT{names['logg']}" not in header
    assert header[f"TCOMM{names['logg']}"] == header[f"TCOMM{names['feh_err']}"] == "[dex]"


def library_span(path):
    labels = read_library(path).labels
    return labels.min(axis=0), labels.max(axis=0)


def test_a_calibration_beside_the_fit_emulator_calibrates_the_errors(survey, fit_library, tmp_path):
    library, emulator = fit_library
    copy = tmp_path / "emulator"
    shutil.copytree(emulator, copy)
    calibration = ErrorCalibration((2.0, 1.5, 1.0), (100.0, 0.1, 0.05), source="test")
    calibration.save(copy / CALIBRATION)
    lib = read_library(library)
    lib.meta["fit_emulator"] = str(copy)
    cat = read_catalogue(
        _fit_run(survey, write_library(tmp_path / "lib.fits", lib), tmp_path / "fit")["catalogue"]
    )
    formal = np.stack([cat[f"{n}_err_formal"] for n in ("teff", "logg", "feh")], axis=1)
    expected = calibration.apply(formal)
    for i, name in enumerate(("teff", "logg", "feh")):
        np.testing.assert_allclose(cat[f"{name}_err"], expected[:, i], rtol=1e-5)
    record = json.loads((tmp_path / "fit" / "run.json").read_text())
    assert record["fit"]["calibration"]["floor"] == [100.0, 0.1, 0.05]


def test_fitting_with_a_library_that_names_no_emulator_is_refused(survey, tmp_path):
    with pytest.raises(InputError, match="fit_emulator"):
        _fit_run(survey, survey["library"], tmp_path / "fit")
    with pytest.raises(InputError, match="infer.method"):
        InferSettings(method="newton")


def test_calibrate_writes_the_calibration_that_later_fits_read(fit_library, tmp_path, capsys):
    from sost_jax.cli import main
    from sost_jax.inference.catalogue import write_catalogue

    library, emulator = fit_library
    copy = tmp_path / "emulator"
    shutil.copytree(emulator, copy)
    lib = read_library(library)
    lib.meta["fit_emulator"] = str(copy)
    lib_path = write_library(tmp_path / "lib.fits", lib)
    rng = np.random.default_rng(0)
    n = 400
    cols = {"id": np.arange(n).astype(str), "converged": np.ones(n, bool)}
    cols["flags"] = np.zeros(n, np.int32)
    for name, formal, floor in (("teff", 20.0, 60.0), ("logg", 0.03, 0.1), ("feh", 0.02, 0.05)):
        ref = rng.normal(0, 1, n)
        cols[f"ref_{name}"] = ref
        cols[f"{name}_err_formal"] = np.full(n, formal)
        cols[name] = ref + rng.normal(0, np.hypot(2 * formal, floor), n)
    write_catalogue(tmp_path / "cal", cols)
    argv = ["calibrate", str(tmp_path / "cal" / "catalogue.fits"), "--library", str(lib_path)]
    assert main(argv) == 0
    cal = ErrorCalibration.load(copy / CALIBRATION)
    np.testing.assert_allclose(cal.scale[0] ** 2 * 400 + cal.floor[0] ** 2, 40**2 + 60**2, rtol=0.2)
    assert "floor" in capsys.readouterr().out
    del cols["ref_feh"]
    write_catalogue(tmp_path / "bad", cols)
    argv[1] = str(tmp_path / "bad" / "catalogue.fits")
    assert main(argv) == 2
    assert "ref_feh" in capsys.readouterr().err


def test_a_run_with_no_usable_spectrum_exits_non_zero_with_one_line(survey, tmp_path, capsys):
    from sost_jax.cli import main

    rng = np.random.default_rng(5)
    files = tmp_path / "junk"
    files.mkdir()
    for i in range(3):
        (files / f"random{i}.fits").write_bytes(rng.bytes(5760))
    out = tmp_path / "inf"
    argv = ["infer", str(files), "--library", str(survey["library"]), "--out", str(out)]
    assert main([*argv, "--config", str(TINY), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "none of the 3 inputs could be used" in err
    assert "random0.fits" in err or "random1.fits" in err or "random2.fits" in err
    assert read_catalogue(out / "catalogue.fits")["teff"].size == 0  # written all the same
    with open(out / "failures.csv") as fh:
        assert len(fh.read().strip().splitlines()) == 1 + 3
    store = tmp_path / "store"
    assert main(["prepare", str(files), "--out", str(store), "--config", str(TINY), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "sost-jax prepare: none of the 3 inputs" in err
