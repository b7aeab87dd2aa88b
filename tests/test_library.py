"""Template libraries: cell selection, building, the FITS file, restoring a trained run."""

import json

import jax
import numpy as np
import pytest
from astropy.io import fits

from sost_jax.config import load_config, save_config, validate
from sost_jax.library.cells import LibraryGrid, count_cells, select_cells
from sost_jax.library.styles import FixedStyle, MatchedObservedStyle, PriorStyle
from sost_jax.library.templates import (
    Library,
    build_library,
    read_library,
    translate_library,
    write_library,
)
from sost_jax.sost import checkpoints
from sost_jax.sost.training import create_train_state
from sost_jax.sost.translation import fingerprint, translator_from_run

# Two cells per label: Teff 4000-4150-4300 K, log g 1.0-1.25-1.5, [Fe/H] -1.0..-0.85..-0.7.
SMALL = LibraryGrid(
    teff_step=150.0,
    logg_step=0.25,
    feh_step=0.15,
    teff_range=(4000.0, 4300.0),
    logg_range=(1.0, 1.5),
    feh_range=(-1.0, -0.7),
    min_stars=5,
    seed=7,
)


def _stars(n, cell, rng):
    """n stars inside a cell (index triple) of SMALL."""
    lo = SMALL.low + np.array(cell) * SMALL.steps
    return lo + rng.uniform(0.01, 0.99, size=(n, 3)) * SMALL.steps


def _catalogue():
    rng = np.random.default_rng(0)
    return np.concatenate(
        [
            _stars(5, (0, 0, 0), rng),  # kept: exactly min_stars
            _stars(4, (1, 1, 1), rng),  # dropped: one short
            np.array([[4200.0, 1.3, np.nan], [np.nan, 1.3, -0.8]]),  # NaN: not counted
            _stars(6, (1, 0, 1), rng),  # kept
            np.array([[3900.0, 1.1, -0.9], [4100.0, 2.0, -0.9], [4100.0, 1.1, 0.0]]),  # outside
        ]
    )


def test_cells_with_fewer_than_min_stars_are_dropped():
    counts = count_cells(_catalogue(), SMALL)
    assert counts.shape == (2, 2, 2)
    assert counts[0, 0, 0] == 5 and counts[1, 1, 1] == 4 and counts[1, 0, 1] == 6
    assert counts.sum() == 15
    params = select_cells(_catalogue(), SMALL)
    assert params.shape == (2, 3)
    for row, cell in zip(params, [(0, 0, 0), (1, 0, 1)], strict=True):  # C order of cells
        lo = SMALL.low + np.array(cell) * SMALL.steps
        assert ((row >= lo) & (row <= lo + SMALL.steps)).all()
    four = LibraryGrid(**{**SMALL.to_dict(), "min_stars": 4})
    assert select_cells(_catalogue(), four).shape == (3, 3)


def test_cell_draws_are_seeded():
    a = select_cells(_catalogue(), SMALL)
    np.testing.assert_array_equal(a, select_cells(_catalogue(), SMALL))
    other = LibraryGrid(**{**SMALL.to_dict(), "seed": 8})
    assert not np.array_equal(a, select_cells(_catalogue(), other))


def test_stars_on_the_upper_edge_join_the_last_cell_and_ragged_ranges_are_cut():
    grid = LibraryGrid(min_stars=1)
    assert grid.shape == (30, 20, 17)  # the paper's: 2.5 dex / 0.15 is 16.7 cells
    edge = np.array([[8000.0, 5.0, 0.5]])
    counts = count_cells(edge, grid)
    assert counts[29, 19, 16] == 1
    params = select_cells(np.repeat(edge, 3, axis=0), grid)
    assert params.shape == (1, 3) and params[0, 2] <= 0.5 and params[0, 2] >= 0.4


@pytest.mark.parametrize(
    "bad",
    [
        {"teff_step": 0.0},
        {"logg_range": (5.0, 0.0)},
        {"feh_range": (0.0, np.nan)},
        {"min_stars": 0},
    ],
)
def test_grid_settings_are_validated(bad):
    with pytest.raises(ValueError):
        LibraryGrid(**bad)
    with pytest.raises(ValueError, match="unknown"):
        LibraryGrid.from_dict({"teff_stepp": 100.0})


P = 12
WAVE = 4000.0 + 2.0 * np.arange(P)


def _generate(labels):
    """A stub emulator: a smooth function of the labels on every pixel."""
    x = np.asarray(labels, np.float32)
    ramp = np.linspace(0.0, 1.0, P, dtype=np.float32)
    return 1.0 - 1e-5 * x[:, :1] * ramp[None, :] + 0.01 * x[:, 1:2] - 0.02 * x[:, 2:3]


def _shift_by_style(flux, styles):
    """An identity-like translator: adds the mean style to every pixel."""
    return np.asarray(flux) + np.asarray(styles).mean(axis=1, keepdims=True)


def _params(n=7):
    rng = np.random.default_rng(1)
    return np.stack(
        [rng.uniform(4000, 6000, n), rng.uniform(1, 5, n), rng.uniform(-2, 0.5, n)], axis=1
    )


def test_raw_and_translated_libraries_share_labels_and_differ_by_the_translation():
    params = _params()
    raw = build_library(params, _generate, wave=WAVE, meta={"checkpoint": "none"})
    assert raw.meta["kind"] == "raw" and raw.meta["n_templates"] == 7
    np.testing.assert_allclose(raw.flux, _generate(params), rtol=1e-6)
    np.testing.assert_array_equal(raw.labels, params)
    style = FixedStyle([0.1, 0.3])
    lib = build_library(params, _generate, _shift_by_style, style, wave=WAVE, batch=3)
    assert lib.meta["kind"] == "translated" and lib.meta["style_source"] == style.spec
    np.testing.assert_allclose(lib.flux, raw.flux + 0.2, rtol=1e-6)
    np.testing.assert_array_equal(lib.labels, raw.labels)
    np.testing.assert_array_equal(lib.wave, WAVE)
    # Random styles do not depend on the batch size.
    prior = PriorStyle(2)
    key = jax.random.PRNGKey(5)
    a = translate_library(raw, _shift_by_style, prior, key, batch=2)
    b = translate_library(raw, _shift_by_style, prior, key, batch=100)
    np.testing.assert_allclose(a.flux, b.flux, rtol=1e-6)
    with pytest.raises(ValueError, match="style source"):
        translate_library(raw, _shift_by_style, None)
    with pytest.raises(ValueError, match="wave"):
        build_library(params, _generate)


def test_matched_styles_record_each_templates_observed_partner():
    params = _params(5)
    raw = build_library(params, _generate, wave=WAVE)
    order = np.array([3, 0, 4, 1, 2])
    observed = raw.flux[order] * 1.001
    source = MatchedObservedStyle(
        (observed, np.ones_like(observed)), lambda f: np.asarray(f)[:, :2], 2
    )
    lib = translate_library(raw, _shift_by_style, source)
    np.testing.assert_array_equal(observed[lib.columns["partner"]], observed[np.argsort(order)])
    assert lib.meta["style_source"] == "matched"


def _library():
    rng = np.random.default_rng(2)
    meta = {
        "kind": "translated",
        "checkpoint": "/a/very/long/path/" + "x" * 90 + "/checkpoints/700",
        "step": np.int64(700),  # NumPy scalars are written as numbers
        "config_hash": "0123456789abcdef",
        "style_source": "mixture:/some/where/styles.npz",
        "grid": LibraryGrid().to_dict(),
    }
    columns = {"partner": np.arange(4) * 3, "partner_id": np.array(["a", "bb", "ccc", "d"])}
    return Library(WAVE, rng.normal(size=(4, P)), _params(4), meta, columns)


def test_fits_round_trip_keeps_everything(tmp_path):
    lib = _library()
    path = write_library(tmp_path / "lib.fits", lib)
    back = read_library(path)
    np.testing.assert_array_equal(back.flux, lib.flux)
    np.testing.assert_array_equal(back.columns["partner_id"], lib.columns["partner_id"])
    np.testing.assert_array_equal(back.wave, lib.wave)
    np.testing.assert_array_equal(back.labels, lib.labels)
    for name, values in lib.columns.items():
        np.testing.assert_array_equal(back.columns[name], values)
    assert {k: back.meta[k] for k in lib.meta} == lib.meta
    assert back.meta["n_templates"] == 4 and "created" in back.meta
    with pytest.raises(FileExistsError):
        write_library(path, lib)
    write_library(path, lib, overwrite=True)


def test_library_file_is_plain_fits_for_astropy(tmp_path):
    lib = _library()
    path = write_library(tmp_path / "lib.fits", lib)
    with fits.open(path) as hdul:
        hdul.verify("exception")
        header = hdul[0].header
        assert hdul[0].data.shape == (4, P) and hdul[0].data.dtype.name == "float32"
        assert header["CHECKPT"] == lib.meta["checkpoint"]  # long value: CONTINUE cards
        assert header["CFGHASH"] == "0123456789abcdef"
        assert header["STYLESRC"] == lib.meta["style_source"]
        assert header["NTEMPL"] == 4 and header["LIBKIND"] == "translated"
        assert "DATE" in header
        assert header["CRVAL1"] == 4000.0 and header["CDELT1"] == 2.0
        np.testing.assert_array_equal(hdul["WAVE"].data, WAVE)
        table = hdul["LABELS"].data
        assert table.columns.names[:3] == ["teff", "logg", "feh"]
        assert hdul["LABELS"].columns["teff"].unit == "K"
        np.testing.assert_array_equal(table["logg"], lib.labels[:, 1])


def test_an_empty_library_round_trips(tmp_path):
    empty = build_library(np.zeros((0, 3)), _generate, wave=WAVE)
    back = read_library(write_library(tmp_path / "empty.fits", empty))
    assert back.flux.shape == (0, P) and len(back) == 0


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A run directory as training writes it (config.json, checkpoints/ with state and
    record) at step 1, holding a state of the tiny model's structure filled with small
    random numbers (initialising the model for real takes seconds; the slow test does)."""
    work = tmp_path_factory.mktemp("run")
    config = load_config("configs/tiny.py")
    save_config(config, work / "config.json")
    shapes = jax.eval_shape(lambda: create_train_state(config, jax.random.PRNGKey(0), 400))
    rng = np.random.default_rng(0)
    state = jax.tree.map(
        lambda a: (
            (0.1 * rng.normal(size=a.shape)).astype(a.dtype)
            if np.issubdtype(a.dtype, np.floating)
            else np.zeros(a.shape, a.dtype)
        ),
        shapes,
    )
    manager = checkpoints.make_manager(work, 2)
    checkpoints.save(manager, 1, state, {"fingerprint": fingerprint(config)})
    manager.wait_until_finished()
    manager.close()
    return work, config, state


def test_translator_restores_the_latest_checkpoint_and_translates(tiny_run):
    work, config, state = tiny_run
    tr = translator_from_run(work, n_pixels=400, batch=4)
    assert tr.step == 1 and tr.style_dim == config.model.style_dim == 4
    # only the generators are read, and exactly as saved
    jax.tree.map(np.testing.assert_array_equal, tr.gen_params, state.gen_params)
    assert tr.meta["checkpoint"].endswith("checkpoints/1") and len(tr.meta["config_hash"]) == 16
    rng = np.random.default_rng(0)
    flux = (1.0 + 0.05 * rng.normal(size=(6, 400))).astype(np.float32)
    styles = rng.normal(size=(6, 4)).astype(np.float32)
    out = tr(flux, styles)
    assert out.shape == (6, 400) and out.dtype == np.float32 and np.isfinite(out).all()
    np.testing.assert_allclose(tr(flux[:2], styles[:2]), out[:2], atol=1e-4)  # other shape
    codes = tr.observed_styles(flux)
    assert codes.shape == (6, 4) and np.isfinite(codes).all()
    with pytest.raises(ValueError, match="styles"):
        tr(flux, styles[:, :3])


def test_translator_refuses_missing_runs_and_foreign_checkpoints(tiny_run, tmp_path):
    work, _, _ = tiny_run
    with pytest.raises(FileNotFoundError, match="config.json"):
        translator_from_run(tmp_path, n_pixels=400)
    with pytest.raises(FileNotFoundError, match="step 5"):
        translator_from_run(work, n_pixels=400, step=5)
    import json

    old = tmp_path / "old"  # a run saved before model.arch existed: its default is taken
    old.mkdir()
    (old / "checkpoints").symlink_to(work / "checkpoints")
    saved = json.loads((work / "config.json").read_text())
    del saved["model"]["arch"]
    (old / "config.json").write_text(json.dumps(saved))
    assert translator_from_run(old, n_pixels=400).step == 1
    other = load_config("configs/tiny.py", ["model.mlp_dim=8"])
    (tmp_path / "checkpoints").symlink_to(work / "checkpoints")
    save_config(other, tmp_path / "config.json")
    with pytest.raises(ValueError, match="another model"):
        translator_from_run(tmp_path, n_pixels=400)


TINY_GRID = ["mock.grid.teff_step=1500.0", "mock.grid.logg_step=2.5", "mock.grid.feh_step=1.5"]


@pytest.mark.slow
def test_a_trained_tiny_run_builds_a_matched_library(tmp_path):
    """End to end: train 3 steps, restore, match partners in the observed store, translate,
    write and read the library."""
    from sost_jax.data.store import PreparedStore
    from sost_jax.library.styles import style_source_from_spec
    from sost_jax.mock.survey import make_mock_survey
    from sost_jax.sost.training import train_and_evaluate

    config = load_config("configs/tiny.py", TINY_GRID)
    mock = validate(config).mock
    make_mock_survey(tmp_path, mock, validate(config).preprocess, 48, 48, 4, progress=False)
    config.train.synthetic_store = str(tmp_path / "synthetic")
    config.train.observed_store = str(tmp_path / "observed")
    config.train.steps = 3
    train_and_evaluate(config, tmp_path / "run", progress=False)
    tr = translator_from_run(tmp_path / "run")
    assert tr.step == 3 and tr.n_pixels == 400
    synthetic = PreparedStore(config.train.synthetic_store)
    data = synthetic.read(np.arange(10))
    raw = Library(synthetic.wave, data["flux"], data["labels"], {"kind": "raw"})
    source = style_source_from_spec(
        "matched", tr.style_dim, observed=config.train.observed_store, encode=tr.observed_styles
    )
    lib = translate_library(raw, tr, source, meta=tr.meta)
    assert lib.flux.shape == (10, 400) and np.isfinite(lib.flux).all()
    assert lib.columns["partner"].shape == (10,)
    observed_ids = PreparedStore(config.train.observed_store).meta["id"]
    np.testing.assert_array_equal(lib.columns["partner_id"], observed_ids[lib.columns["partner"]])
    back = read_library(write_library(tmp_path / "lib.fits", lib))
    assert back.meta["step"] == 3 and back.meta["style_source"] == "matched"
    np.testing.assert_array_equal(back.flux, lib.flux)
    np.testing.assert_array_equal(back.columns["partner_id"], lib.columns["partner_id"])

    # The same run through the command line: emulator + both libraries, then a catalogue.
    from sost_jax.cli import main
    from sost_jax.inference.catalogue import read_catalogue

    cells = [
        "library.grid.teff_step=1500.0",
        "library.grid.logg_step=2.5",
        "library.grid.feh_step=1.5",
        "library.grid.min_stars=2",
        "emulator.max_epochs=20",
        "emulator.hidden=[16]",
        "library.translated_points_per_cell=2",
    ]
    sets = [a for c in [*TINY_GRID, *cells] for a in ("--set", c)]
    argv = ["library", "--out", str(tmp_path / "libs"), "--reference", str(tmp_path / "observed")]
    argv += ["--grid", str(tmp_path / "synthetic_grid"), "--run", str(tmp_path / "run")]
    assert main([*argv, "--config", "configs/tiny.py", *sets, "--quiet"]) == 0
    raw = read_library(tmp_path / "libs" / "library_raw.fits")
    sost = read_library(tmp_path / "libs" / "library_sost.fits")
    assert len(raw) == len(sost) > 0 and sost.meta["kind"] == "translated"
    np.testing.assert_array_equal(raw.labels, sost.labels)
    assert sost.meta["grid"]["teff_step"] == 1500.0 and sost.meta["step"] == 3
    # the translated emulator beside the library: trained on 2 draws per kept cell
    translated = tmp_path / "libs" / "translated_emulator"
    assert sost.meta["fit_emulator"] == str(translated)
    assert raw.meta["fit_emulator"] == str(tmp_path / "libs" / "emulator")
    report = json.loads((translated / "report.json").read_text())
    assert report["kind"] == "translated" and report["n_points"] == 2 * len(sost)
    assert report["step"] == 3 and report["run"] == str((tmp_path / "run").absolute())
    out = tmp_path / "catalogue"
    argv = [
        "infer",
        str(tmp_path / "test_fits"),
        "--library",
        str(tmp_path / "libs" / "library_sost.fits"),
    ]
    argv += ["--out", str(out), "--labels", str(tmp_path / "test_fits" / "labels.csv")]
    assert main([*argv, "--config", "configs/tiny.py", *sets, "--quiet"]) == 0
    cat = read_catalogue(out / "catalogue.csv")
    assert cat["teff"].shape == (4,) and np.isfinite(cat["ref_teff"]).all()
    assert (cat["teff_err"] >= 1500.0 / np.sqrt(12) - 1e-3).all()  # the cells' discreteness
    # the same files fitted through the translated emulator, from the grid's estimates
    fit_out = tmp_path / "catalogue_fit"
    argv[argv.index(str(out))] = str(fit_out)
    assert main([*argv, "--config", "configs/tiny.py", *sets, "--set", "infer.method=fit"]) == 0
    fitted = read_catalogue(fit_out / "catalogue.fits")
    np.testing.assert_array_equal(fitted["best_index"], cat["best_index"])
    assert np.isfinite(fitted["rv"]).all() and (fitted["n_iter"] >= 1).all()
    record = json.loads((fit_out / "run.json").read_text())
    assert record["fit"]["emulator"] == str(translated) and record["fit"]["calibration"] is None
