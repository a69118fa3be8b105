"""Data sources: CSV/Parquet streams match in-memory training on the same rows and order,
shuffle deterministically within a bounded buffer, and resume mid-epoch by replay."""

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from descend import fit
from descend.train import InMemory, Stream, stream
from descend.train.data import Converter, FullPass


def table(n=503, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = X @ rng.normal(size=d) + 0.1 * rng.normal(size=n)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(d)])
    frame["target"] = y
    return frame


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stream")
    frame = table()
    frame.to_parquet(folder / "all.parquet", row_group_size=97)
    frame.to_csv(folder / "all.csv", index=False)
    for i, start in enumerate((0, 170, 340)):
        frame.iloc[start : start + 170].to_parquet(folder / f"part-{i}.parquet", row_group_size=50)
    return folder, frame


def train(data, **kw):
    torch.manual_seed(0)
    net = nn.Linear(4, 1)
    kw = {
        "optimizer": "adam",
        "lr": 0.01,
        "batch_size": 16,
        "epochs": 2,
        "seed": 0,
        "progress": False,
        **kw,
    }
    res = fit(net, "mse", data, **kw)
    return torch.cat([p.detach().reshape(-1) for p in net.parameters()]), res


@pytest.mark.parametrize("name", ["all.parquet", "all.csv", "part-*.parquet"])
@pytest.mark.parametrize(("chunk", "buffer"), [(64, 100), (7, 7), (1000, 10_000)])
def test_stream_without_shuffle_matches_in_memory_bitwise(files, name, chunk, buffer):
    folder, frame = files
    X, y = frame.drop(columns="target").to_numpy(), frame["target"].to_numpy()
    expected, ref = train((X, y), shuffle=False)
    got, res = train(
        stream(folder / name, "target", chunk_rows=chunk, buffer_rows=buffer), shuffle=False
    )
    assert torch.equal(got, expected)
    np.testing.assert_array_equal(res.history["loss"], ref.history["loss"])
    assert res.nit == ref.nit == 2 * 32  # ceil(503 / 16)


def test_stream_knows_its_rows_for_parquet_not_csv(files):
    folder, frame = files
    assert stream(folder / "all.parquet", "target").num_rows == len(frame)
    assert stream(folder / "part-*.parquet", "target").num_rows == len(frame)
    assert stream(folder / "all.csv", "target").num_rows is None


def epoch_rows(source, seed, batch_size=16, skip=0):
    g = torch.Generator().manual_seed(seed)
    return [y for _, y in source.batches(batch_size, shuffle=True, generator=g, skip=skip)]


def test_shuffled_stream_sees_every_row_once_in_a_seeded_order(files):
    folder, frame = files
    source = Stream(folder / "part-*.parquet", "target", chunk_rows=30, buffer_rows=120)
    a, b, c = epoch_rows(source, 1), epoch_rows(source, 1), epoch_rows(source, 2)
    assert all(torch.equal(u, v) for u, v in zip(a, b)) and len(a) == len(b)
    assert not torch.equal(torch.cat(a), torch.cat(c))
    got = np.sort(torch.cat(a).numpy())
    np.testing.assert_array_equal(got, np.sort(frame["target"].to_numpy()))
    assert not np.array_equal(torch.cat(a).numpy(), frame["target"].to_numpy())
    assert all(len(batch) == 16 for batch in a[:-1])


def test_skip_replays_the_epoch_and_resumes_after_k_batches(files):
    folder, _ = files
    source = Stream(folder / "all.parquet", "target", chunk_rows=40, buffer_rows=90)
    whole = epoch_rows(source, 3)
    rest = epoch_rows(source, 3, skip=11)
    assert len(rest) == len(whole) - 11
    assert all(torch.equal(u, v) for u, v in zip(whole[11:], rest))
    memory = InMemory(torch.randn(50, 2), torch.arange(50.0))
    whole = epoch_rows(memory, 4, batch_size=8)
    rest = epoch_rows(memory, 4, batch_size=8, skip=3)
    assert all(torch.equal(u, v) for u, v in zip(whole[3:], rest))


def test_stream_holds_at_most_a_buffer_of_rows(files, monkeypatch):
    folder, _ = files
    source = Stream(folder / "all.parquet", "target", chunk_rows=25, buffer_rows=60)
    read = []
    original = source._arrays

    def counting(generator):
        for X, y in original(generator):
            read.append(len(X))
            yield X, y

    monkeypatch.setattr(source, "_arrays", counting)
    # rows read ahead of what was served never exceed one buffer plus one chunk
    batches = source.batches(16, shuffle=True, generator=torch.Generator().manual_seed(0))
    served = 0
    for X, _ in batches:
        served += len(X)
        assert sum(read) - served <= 60 + 25
    assert sum(read) == served == 503


def test_full_batch_stream_accumulates_the_full_gradient(files):
    folder, frame = files
    X, y = frame.drop(columns="target").to_numpy(), frame["target"].to_numpy()
    # 10 epochs: f still falls, so no run returns an earlier iterate lower by float32 noise
    kw = {"optimizer": "gd", "lr": 0.2, "batch_size": "full", "epochs": 10}
    expected, ref = train((X, y), **kw)
    got, res = train(stream(folder / "all.csv", "target", chunk_rows=50), **kw)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)  # float32, other sum order
    np.testing.assert_allclose(res.history["loss"], ref.history["loss"], rtol=1e-5)
    assert isinstance(
        next(
            stream(folder / "all.csv", "target").batches(
                None, shuffle=False, generator=torch.Generator()
            )
        ),
        FullPass,
    )


def test_validation_can_be_a_stream(files):
    folder, frame = files
    X, y = frame.drop(columns="target").to_numpy(), frame["target"].to_numpy()
    _, res = train((X[:400], y[:400]), validation=stream(folder / "all.parquet", "target"))
    _, ref = train((X[:400], y[:400]), validation=(X, y))
    np.testing.assert_allclose(
        res.epoch_history["val_loss"], ref.epoch_history["val_loss"], rtol=1e-6
    )


def test_stream_errors_name_the_problem(files, tmp_path):
    folder, _ = files
    with pytest.raises(ValueError, match="target column 'label' is not in"):
        stream(folder / "all.parquet", "label")
    with pytest.raises(ValueError, match=r"feature column\(s\) \['zz'\]"):
        stream(folder / "all.parquet", "target", features=["x0", "zz"])
    with pytest.raises(FileNotFoundError, match="no file matches"):
        stream(tmp_path / "*.parquet", "target")
    (tmp_path / "data.txt").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="unknown file type"):
        stream(tmp_path / "data.txt", "b")
    with pytest.raises(ValueError, match="chunk_rows must be an integer >= 1, got 0"):
        stream(folder / "all.parquet", "target", chunk_rows=0)


def test_converter_casts_features_and_checks_labels():
    conv = Converter(torch.float32, "long")
    X, y = conv(np.ones((3, 2)), np.array([0.0, 1.0, 2.0]))
    assert X.dtype == torch.float32 and y.dtype == torch.int64
    with pytest.raises(ValueError, match="integer class labels"):
        conv(np.ones((2, 2)), np.array([0.5, 1.0]))
    with pytest.raises(TypeError, match="must be numeric"):
        Converter(torch.float32, "float")(np.array([["a"], ["b"]], dtype=object), [1, 2])
