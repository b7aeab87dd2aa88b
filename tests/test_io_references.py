"""Catalogue readers: CSV and FITS tables with aliases, the MILES parameter table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from fixtures_io import LAMOST_DIR, MILES_DIR, needs

from sost_jax.data.io import read_lamost, read_miles_params, read_reference_catalog
from sost_jax.data.spectra import ReadError


@needs(LAMOST_DIR)
def test_lasp_csv_through_aliases() -> None:
    table = read_reference_catalog(LAMOST_DIR / "LASP_Adam_inferred.csv")
    for name in ("id", "teff", "logg", "feh", "rv", "teff_err", "iter"):
        assert name in table, name
    assert table["teff"].dtype == np.float64 and table["iter"].dtype == np.int64
    assert 3000 < table["teff"].min() and table["teff"].max() < 10000
    # ids lose the ".fits" suffix, so they match the spectra's meta["id"]
    spec = read_lamost(LAMOST_DIR / f"{table['id'][0]}.fits")
    assert spec.meta["id"] == table["id"][0]


@needs(MILES_DIR)
def test_miles_params() -> None:
    with pytest.warns(UserWarning, match="022"):
        params = read_miles_params(MILES_DIR / "MILES_params.db")
    assert set(params) == {"miles_id", "teff", "logg", "feh"}
    assert len(params["miles_id"]) == 984
    i = np.flatnonzero(params["miles_id"] == 272)[0]
    assert params["teff"][i] == 6024 and params["logg"][i] == 4.5 and params["feh"][i] == -1.44
    j = np.flatnonzero(params["miles_id"] == 838)[0]
    assert params["teff"][j] == 2748 and np.isnan(params["feh"][j])
    assert np.nanmax(params["teff"]) < 99999 and np.nanmax(np.abs(params["feh"])) < 10


def test_csv_types_comments_and_missing_values(tmp_path: Path) -> None:
    path = tmp_path / "cat.csv"
    path.write_text("# a comment\nobsid,RA,Dec,Teff,note\n1,10.5,-3.0,5000,ok\n2,11.0,-4.0,,bad\n")
    table = read_reference_catalog(path)
    assert list(table) == ["id", "ra", "dec", "teff", "note"]
    assert table["id"].tolist() == ["1", "2"]
    assert table["ra"].dtype == np.float64 and np.isnan(table["teff"][1])
    assert table["note"].tolist() == ["ok", "bad"]


def test_explicit_mapping_and_selection(tmp_path: Path) -> None:
    path = tmp_path / "cat.csv"
    path.write_text("star,T,G,M,extra\na,5000,4.0,0.1,9\nb,6000,3.5,-0.2,9\n")
    mapped = read_reference_catalog(
        path, columns={"star": "id", "T": "teff", "G": "logg", "M": "feh"}
    )
    assert list(mapped) == ["id", "teff", "logg", "feh"]
    assert mapped["teff"].tolist() == [5000, 6000]
    selected = read_reference_catalog(path, columns=["star", "T"], aliases={})
    assert list(selected) == ["star", "T"]
    with pytest.raises(ReadError, match="cat.csv.*not found"):
        read_reference_catalog(path, columns=["teff"])


def test_alias_priority_keeps_the_loser(tmp_path: Path) -> None:
    path = tmp_path / "two.csv"
    path.write_text("pred_Teff,Teff\n1,2\n")
    table = read_reference_catalog(path)
    assert table["teff"].tolist() == [2] and table["pred_Teff"].tolist() == [1]


def test_fits_table(tmp_path: Path) -> None:
    cols = [
        fits.Column(name="OBSID", format="K", array=np.array([7, 8])),
        fits.Column(name="TEFF", format="E", array=np.array([4500.0, 5500.0])),
        fits.Column(name="NAME", format="6A", array=np.array(["x", "yy"])),
    ]
    path = tmp_path / "cat.fits"
    fits.BinTableHDU.from_columns(cols).writeto(path)
    table = read_reference_catalog(path)
    assert table["id"].tolist() == ["7", "8"]
    assert table["teff"].dtype.isnative and table["teff"].tolist() == [4500.0, 5500.0]
    assert table["NAME"].tolist() == ["x", "yy"]


def test_bad_catalogues(tmp_path: Path) -> None:
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b\n1,2\n3\n")
    with pytest.raises(ReadError, match="ragged.csv.*row 3"):
        read_reference_catalog(ragged)
    with pytest.raises(ReadError, match="unknown catalogue format"):
        read_reference_catalog(tmp_path / "x.parquet")
    with pytest.raises(ReadError, match="absent.csv"):
        read_reference_catalog(tmp_path / "absent.csv")
