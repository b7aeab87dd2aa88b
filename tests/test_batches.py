"""Unpaired batch streams: deterministic per seed, resumable from a position, host shards."""

import numpy as np
import pytest

from sost_jax.data.batches import BatchStream, Position, split_validation
from sost_jax.data.store import PreparedStore, StoreWriter


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    writer = StoreWriter(root, np.arange(5.0), {}, n_shards=2)
    for s in range(2):
        rows = np.arange(10 * s, 10 * s + 10, dtype=np.float32)
        flux = np.repeat(rows[:, None], 5, axis=1)  # row i is all i
        writer.write_shard(s, flux, flux + 0.5, np.zeros((10, 3)), {"id": rows.astype(int)})
    return PreparedStore(root)


def _rows(batch):
    return batch["x"][:, 0].astype(int).tolist()


def test_epochs_cover_the_indices_once_in_a_seeded_order(store):
    stream = BatchStream(store, np.arange(20), batch_size=6, seed=3)
    pos, seen = Position(), []
    for _ in range(3):  # 3 batches of 6 per epoch (the last 2 rows wait for the next epoch)
        batch, pos = stream.batch_at(pos)
        seen += _rows(batch)
    assert len(set(seen)) == 18 and pos == Position(0, 18)
    batch, pos = stream.batch_at(pos)
    assert pos == Position(1, 6)  # a batch never spans two epochs
    again = BatchStream(store, np.arange(20), batch_size=6, seed=3)
    assert _rows(again.batch_at(Position())[0]) == seen[:6]
    other = BatchStream(store, np.arange(20), batch_size=6, seed=4)
    assert _rows(other.batch_at(Position())[0]) != seen[:6]


def test_iterate_resumes_from_a_position(store):
    stream = BatchStream(store, np.arange(20), batch_size=4, seed=0)
    it = stream.iterate(Position())
    first = [next(it) for _ in range(7)]
    it.close()
    it = stream.iterate(first[2][1])  # the position after the third batch
    for want in first[3:]:
        got = next(it)
        assert _rows(got[0]) == _rows(want[0]) and got[1] == want[1]
    it.close()


def test_host_shards_split_each_global_batch(store):
    parts = [BatchStream(store, np.arange(20), 3, seed=1, shard=(i, 2)) for i in range(2)]
    whole = BatchStream(store, np.arange(20), 6, seed=1)
    pos = Position()
    for _ in range(4):
        (a, pa), (b, pb) = parts[0].batch_at(pos), parts[1].batch_at(pos)
        w, pw = whole.batch_at(pos)
        assert _rows(a) + _rows(b) == _rows(w) and pa == pb == pw
        pos = pw
    np.testing.assert_array_equal(a["w"], a["x"] + 0.5)


def test_validation_split_is_disjoint_and_fixed():
    train, val = split_validation(100, 10, seed=0)
    assert len(val) == 10 and not set(train) & set(val) and len(train) == 90
    np.testing.assert_array_equal(val, split_validation(100, 10, seed=0)[1])
    with pytest.raises(ValueError, match="hold out"):
        split_validation(5, 5, seed=0)


def test_too_small_a_store_is_refused(store):
    with pytest.raises(ValueError, match="needs at least"):
        BatchStream(store, np.arange(4), batch_size=6, seed=0)
