"""The hand-written FITS parser agrees with astropy and refuses what it cannot read."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from fixtures_io import write_lamost_dr5

from sost_jax.data.io import fits_cards, fits_hdus, fitsfast
from sost_jax.data.io.fitsfast import FitsFormatError, FitsUnsupported


def _card(key: str, value: str) -> str:
    return f"{key:<8}= {value}".ljust(80)


def _header_bytes(cards: list[str]) -> bytes:
    text = "".join(c.ljust(80) for c in [*cards, "END"])
    return text.ljust(-(-len(text) // 2880) * 2880).encode("ascii")


def test_parse_header_reads_every_value_kind() -> None:
    raw = _header_bytes(
        [
            _card("SIMPLE", "T"),
            _card("BITPIX", "8"),
            _card("NAXIS", "0"),
            _card("FLAG", "F / a logical"),
            _card("NEG", "-42"),
            _card("PI", "3.14159 / comment"),
            _card("EXPO", "1.5D-03"),
            _card("NAME", "'O''Brien  ' / quote inside"),
            _card("SLASH", "'a/b'"),
            _card("EMPTY", "''"),
            _card("UNDEF", ""),
            "COMMENT this is not a value",
            _card("NEG", "7"),  # repeated keyword: the first one wins
        ]
    )
    header, data_start = fits_cards.parse_header(raw, 0)
    assert data_start == 2880
    assert header["SIMPLE"] is True and header["FLAG"] is False
    assert header["NEG"] == -42 and isinstance(header["NEG"], int)
    assert header["PI"] == 3.14159
    assert header["EXPO"] == pytest.approx(1.5e-3)
    assert header["NAME"] == "O'Brien"
    assert header["SLASH"] == "a/b"
    assert header["EMPTY"] == "" and header["UNDEF"] is None
    assert "COMMENT" not in header


def test_header_spanning_blocks_and_missing_end() -> None:
    cards = [_card("SIMPLE", "T"), _card("BITPIX", "8"), _card("NAXIS", "0")]
    cards += [_card(f"K{i}", str(i)) for i in range(60)]
    raw = _header_bytes(cards)
    header, data_start = fits_cards.parse_header(raw, 0)
    assert data_start == 2 * 2880 and header["K59"] == 59
    with pytest.raises(FitsFormatError, match="END"):
        fits_cards.parse_header(raw[:2880], 0)


def test_primary_keys_parse_only_those_cards(tmp_path: Path) -> None:
    """A reader that names the keywords it needs gets their values (first occurrence), the
    structural ones, and nothing else; a card it did not ask for is never parsed, so one the
    fast parser cannot read does not send the file to astropy."""
    path = write_lamost_dr5(tmp_path / "s.fits")
    raw = bytearray(fitsfast.load_bytes(path))
    full = fitsfast.read_hdus(bytes(raw), 2, backend="fast")
    keys = frozenset(("OBSID", "Z", "SNRG", "ABSENT"))
    some = fitsfast.read_hdus(bytes(raw), 2, backend="fast", primary_keys=keys)
    expected = {k: v for k, v in full[0].header.items() if k in keys | fits_cards.STRUCTURAL}
    assert some[0].header == expected and {"OBSID", "Z", "NAXIS"} <= set(expected)
    assert some[1].header == full[1].header  # extensions are parsed whole
    for name in full[1].data:
        assert np.array_equal(some[1].data[name], full[1].data[name])
    at = raw.find(b"TELESCOP=")
    raw[at : at + 80] = b"TELESCOP= (1.0, 2.0)".ljust(80)  # a complex value: unsupported
    with pytest.raises(FitsUnsupported):
        fitsfast.read_hdus(bytes(raw), 2, backend="fast")
    again = fitsfast.read_hdus(bytes(raw), 2, backend="fast", primary_keys=keys)
    assert again[0].header == expected
    with pytest.raises(FitsUnsupported):  # asked for, so parsed (and refused)
        fitsfast.read_hdus(bytes(raw), 2, backend="fast", primary_keys=keys | {"TELESCOP"})


@pytest.mark.parametrize("keys", [None, frozenset(("OBSID",))])
def test_non_integer_naxis_is_a_format_error(keys: frozenset[str] | None) -> None:
    """Whole or keyed, a header whose NAXIS is not an integer is reported as damaged."""
    raw = _header_bytes([_card("SIMPLE", "T"), _card("BITPIX", "8"), _card("NAXIS", "'two'")])
    with pytest.raises(FitsFormatError, match="NAXIS"):
        fits_hdus.scan(raw, 1, keys)


def test_complex_value_is_unsupported() -> None:
    raw = _header_bytes([_card("SIMPLE", "T"), _card("CPLX", "(1.0, 2.0)")])
    with pytest.raises(FitsUnsupported):
        fits_cards.parse_header(raw, 0)


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32, np.int64, np.float32, ">f8"])
def test_image_matches_astropy(tmp_path: Path, dtype: object) -> None:
    data = (np.arange(24).reshape(2, 3, 4) * 3).astype(dtype)
    path = tmp_path / "img.fits"
    fits.PrimaryHDU(data).writeto(path)
    raw = fitsfast.load_bytes(path)
    header, fast = fitsfast.read_header_and_data(raw, 0, backend="fast")
    _, slow = fitsfast.read_header_and_data(raw, 0, backend="astropy")
    assert fast.shape == (2, 3, 4) and np.array_equal(fast, slow)
    assert header["NAXIS3"] == 2


def test_bintable_formats_match_astropy(tmp_path: Path) -> None:
    n = 4
    cols = [
        fits.Column(name="E3", format="3E", array=np.arange(3 * n).reshape(n, 3)),
        fits.Column(name="D", format="D", array=np.linspace(0, 1, n)),
        fits.Column(name="J", format="J", array=np.arange(n) - 2),
        fits.Column(name="I2", format="2I", array=np.arange(2 * n).reshape(n, 2)),
        fits.Column(name="K", format="K", array=np.arange(n) * 10**12),
        fits.Column(name="B", format="B", array=np.arange(n)),
        fits.Column(name="S", format="5A", array=np.array(["ab", "cde", "", "xy z"])),
    ]
    path = tmp_path / "tab.fits"
    fits.BinTableHDU.from_columns(cols).writeto(path)
    raw = fitsfast.load_bytes(path)
    _, fast = fitsfast.read_header_and_data(raw, 1, backend="fast")
    _, slow = fitsfast.read_header_and_data(raw, 1, backend="astropy")
    assert list(fast) == list(slow)
    for name in fast:
        assert fast[name].shape == slow[name].shape, name
        assert np.array_equal(fast[name], slow[name]), name
    assert fast["S"].tolist() == ["ab", "cde", "", "xy z"]


def test_scaled_image_falls_back_to_astropy(tmp_path: Path) -> None:
    path = tmp_path / "scaled.fits"
    hdu = fits.PrimaryHDU(np.arange(10, dtype=np.int16))
    hdu.header["BSCALE"] = 2.0
    hdu.header["BZERO"] = 1.0
    hdu.writeto(path)
    raw = fitsfast.load_bytes(path)
    with pytest.raises(FitsUnsupported):
        fitsfast.read_hdus(raw, backend="fast")
    auto = fitsfast.read_hdus(raw)[0].data
    slow = fitsfast.read_hdus(raw, backend="astropy")[0].data
    assert np.array_equal(auto, slow) and auto[3] == 7.0


def test_variable_length_column_falls_back(tmp_path: Path) -> None:
    path = tmp_path / "vla.fits"
    arr = np.array([np.arange(2.0), np.arange(3.0)], dtype=object)
    col = fits.Column(name="V", format="PD()", array=arr)
    fits.BinTableHDU.from_columns([col]).writeto(path)
    raw = fitsfast.load_bytes(path)
    with pytest.raises(FitsUnsupported):
        fitsfast.read_hdus(raw, backend="fast")
    data = fitsfast.read_hdus(raw)[1].data
    assert np.array_equal(data["V"][1], [0.0, 1.0, 2.0])


def test_gzip_is_transparent(tmp_path: Path) -> None:
    plain = write_lamost_dr5(tmp_path / "s.fits")
    packed = tmp_path / "s.fits.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert fitsfast.load_bytes(packed) == plain.read_bytes()
    packed.write_bytes(gzip.compress(plain.read_bytes())[:-100])
    with pytest.raises(FitsFormatError, match="gzip"):
        fitsfast.load_bytes(packed)


def test_truncated_and_random_bytes_are_format_errors(tmp_path: Path) -> None:
    raw = fitsfast.load_bytes(write_lamost_dr5(tmp_path / "s.fits"))
    with pytest.raises(FitsFormatError, match="truncated"):
        fitsfast.read_hdus(raw[: len(raw) - 3000])
    noise = np.random.default_rng(1).bytes(6000)
    for backend in ("auto", "astropy"):
        with pytest.raises(FitsFormatError):
            fitsfast.read_hdus(noise, backend=backend)


def test_missing_hdu_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "one.fits"
    fits.PrimaryHDU(np.zeros(3)).writeto(path)
    with pytest.raises(FitsFormatError, match="HDU 1 absent"):
        fitsfast.read_header_and_data(fitsfast.load_bytes(path), 1)
