"""The prepared-dataset store: round trips, streaming reads, atomic shards, resumption."""

import shutil

import numpy as np
import pytest

from sost_jax.data.prepare import PrepareSettings, prepare_arrays
from sost_jax.data.store import PreparedStore, StoreWriter, write_rows

WAVE = np.linspace(4000.0, 5000.0, 64)


def _shard(rng, n, offset):
    return dict(
        flux=rng.normal(1, 0.1, (n, WAVE.size)).astype(np.float32),
        weight=rng.uniform(0, 1, (n, WAVE.size)).astype(np.float32),
        labels=rng.normal(0, 1, (n, 3)).astype(np.float32),
        meta={"id": np.array([f"s{offset + i}" for i in range(n)]), "snr": rng.uniform(size=n)},
    )


def test_round_trip_and_gather_in_any_order(tmp_path):
    rng = np.random.default_rng(0)
    writer = StoreWriter(tmp_path, WAVE, {"source": "test"})
    shards = [_shard(rng, 5, 0), _shard(rng, 3, 5)]
    writer.write_shard(0, **shards[0], failures=[("bad.fits", "truncated")])
    writer.write_shard(1, **shards[1])
    store = PreparedStore(tmp_path)
    assert len(store) == 8 and store.n_pixels == WAVE.size
    np.testing.assert_array_equal(store.wave, WAVE)
    all_flux = np.concatenate([s["flux"] for s in shards])
    idx = np.array([7, 0, 6, 2, 2])
    got = store.read(idx)
    np.testing.assert_array_equal(got["flux"], all_flux[idx])
    np.testing.assert_array_equal(store.meta["id"][idx], ["s7", "s0", "s6", "s2", "s2"])
    assert store.failures() == [("bad.fits", "truncated")]
    chunks = list(store.iter_chunks(3))
    assert [lo for lo, _ in chunks] == [0, 3, 6]
    np.testing.assert_array_equal(np.concatenate([c["flux"] for _, c in chunks]), all_flux)
    with pytest.raises(IndexError):
        store.read([8])


def test_blocks_of_rows_read_the_same_as_gathers(tmp_path):
    """Runs of rows take the one-read path; any other order the memory map: same arrays."""
    rng = np.random.default_rng(1)
    writer = StoreWriter(tmp_path, WAVE, {})
    shards = [_shard(rng, 6, 0), _shard(rng, 4, 6)]
    for i, shard in enumerate(shards):
        writer.write_shard(i, **shard)
    store = PreparedStore(tmp_path)
    every = {k: np.concatenate([s[k] for s in shards]) for k in ("flux", "weight", "labels")}
    for idx in (np.arange(10), np.arange(2, 5), np.arange(4, 9), [9], [3, 2, 1], [8, 9, 0, 1]):
        got = store.read(idx)
        for key, want in every.items():
            np.testing.assert_array_equal(got[key], want[np.asarray(idx)], err_msg=f"{key} {idx}")


def test_rows_written_in_pieces_with_gaps_make_a_compact_shard(tmp_path, monkeypatch):
    """Chunks written by several writers at their own offsets, with room left for skipped
    inputs: the finished shard holds exactly the written rows, in order."""
    import sost_jax.data.store

    rng = np.random.default_rng(4)
    shard = _shard(rng, 9, 0)
    spans = [(0, 3), (4, 2), (6, 0), (9, 4)]  # rows 3, 7, 8 and 13 left empty
    writer = StoreWriter(tmp_path, WAVE, {})
    folder = writer.clear_partial(0)
    for first, n in reversed(spans):  # in any order, as reader processes finish
        lo = sum(k for f, k in spans if f < first)
        for name in ("flux", "weight"):
            write_rows(folder, name, shard[name][lo : lo + n], first, 14)
    monkeypatch.setattr(sost_jax.data.store, "_MOVE_BYTES", 2 * WAVE.size * 4)  # 2 rows at a time
    writer.finish_shard(0, spans, shard["labels"], shard["meta"])
    store = PreparedStore(tmp_path)
    got = store.read(np.arange(9))
    for key in ("flux", "weight", "labels"):
        np.testing.assert_array_equal(got[key], shard[key], err_msg=key)
    assert np.load(tmp_path / "shards" / "00000" / "flux.npy").shape == (9, WAVE.size)
    assert not (tmp_path / "shards" / "00000.partial").exists()
    with pytest.raises(ValueError, match="labels have shape"):
        writer.clear_partial(1)
        write_rows(tmp_path / "shards" / "00001.partial", "flux", shard["flux"], 0, 9)
        writer.finish_shard(1, [(0, 9)], shard["labels"][:5], shard["meta"])


def test_partial_shard_is_invisible_and_settings_mismatch_refused(tmp_path):
    rng = np.random.default_rng(1)
    writer = StoreWriter(tmp_path, WAVE, {"source": "test"})
    writer.write_shard(0, **_shard(rng, 4, 0))
    (tmp_path / "shards" / "00001.partial").mkdir()  # an interrupted write
    assert writer.done_shards() == {0}
    assert len(PreparedStore(tmp_path)) == 4
    with pytest.raises(ValueError, match="other settings"):
        StoreWriter(tmp_path, WAVE, {"source": "something else"})


def test_bad_shard_arrays_are_refused(tmp_path):
    writer = StoreWriter(tmp_path, WAVE, {})
    shard = _shard(np.random.default_rng(2), 4, 0)
    shard["weight"] = shard["weight"][:3]
    with pytest.raises(ValueError, match="disagree"):
        writer.write_shard(0, **shard)


def test_not_a_store(tmp_path):
    assert not PreparedStore.is_store(tmp_path)
    with pytest.raises(FileNotFoundError, match="not a prepared store"):
        PreparedStore(tmp_path)


def test_fingerprint_follows_the_content(tmp_path):
    rng = np.random.default_rng(3)
    writer = StoreWriter(tmp_path / "s", WAVE, {"source": "test"})
    writer.write_shard(0, **_shard(rng, 4, 0))
    assert PreparedStore.is_store(tmp_path / "s")
    first = PreparedStore(tmp_path / "s").fingerprint
    shutil.copytree(tmp_path / "s", tmp_path / "copy")  # the same content elsewhere
    assert PreparedStore(tmp_path / "copy").fingerprint == first
    writer.write_shard(1, **_shard(rng, 2, 4))
    assert PreparedStore(tmp_path / "s").fingerprint != first


def test_replacing_leaves_the_old_file_when_the_writer_fails(tmp_path):
    from sost_jax.runtime.files import replacing, write_text

    path = tmp_path / "run.json"
    write_text(path, "old")
    with pytest.raises(RuntimeError), replacing(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]
    write_text(path, "new")
    assert path.read_text() == "new" and len(list(tmp_path.iterdir())) == 1


def _arrays(n=10, seed=0):
    rng = np.random.default_rng(seed)
    wave = np.linspace(3800.0, 6100.0, 3000)
    flux = 100.0 * (1 + 0.1 * np.sin(wave / 300.0))[None, :] * rng.uniform(0.5, 2, (n, 1))
    flux = flux + rng.normal(0, 1.0, flux.shape)
    ivar = np.ones_like(flux)
    ivar[3, :2000] = 0.0  # does not cover the grid: skipped with a reason
    labels = rng.normal(size=(n, 3))
    return wave, flux, ivar, labels


def test_prepare_arrays_resumes_to_the_same_store(tmp_path):
    wave, flux, ivar, labels = _arrays()
    settings = PrepareSettings(grid_start=4000.0, grid_stop=6000.0, grid_step=2.0)
    meta = {"id": np.array([f"star{i}" for i in range(10)])}
    full = prepare_arrays(tmp_path / "a", wave, flux, ivar, settings, labels, meta, shard_size=4)
    assert len(full) == 9 and full.complete
    assert [f[0] for f in full.failures()] == ["star3"]
    assert "cover" in full.failures()[0][1]
    np.testing.assert_allclose(full.labels, np.delete(labels, 3, axis=0), rtol=1e-6)
    # Interrupt: lose the middle shard, then run again.
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    shutil.rmtree(tmp_path / "b" / "shards" / "00001")
    assert not PreparedStore(tmp_path / "b").complete
    resumed = prepare_arrays(tmp_path / "b", wave, flux, ivar, settings, labels, meta, shard_size=4)
    np.testing.assert_array_equal(
        resumed.read(np.arange(9))["flux"], full.read(np.arange(9))["flux"]
    )
    np.testing.assert_array_equal(resumed.meta["id"], full.meta["id"])
    assert full.info["preprocess"]["grid_step"] == 2.0
