"""Checkpoint and resume: a run killed by SIGKILL mid-epoch and resumed in a new process
ends bit-identical to a run never interrupted."""

import numpy as np
import pytest
import torch
from resume_helpers import sigkill_then_resume
from torch import nn

from descend import fit
from descend.callbacks import Checkpoint


def test_sigkill_mid_epoch_then_resume_is_bit_identical(tmp_path):
    sigkill_then_resume(tmp_path, [])


def toy(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 3, generator=g, dtype=torch.float64)
    return X, X @ torch.tensor([1.0, -1.0, 2.0], dtype=torch.float64)


def test_resume_in_process_from_every_checkpoint(tmp_path):
    X, y = toy()
    kw = {
        "optimizer": "momentum",
        "lr": 0.05,
        "batch_size": 10,
        "epochs": 3,
        "seed": 5,
        "schedule": "one_cycle",
        "progress": False,
    }
    torch.manual_seed(0)
    reference = nn.Linear(3, 1).double()
    start = {k: v.clone() for k, v in reference.state_dict().items()}
    ref = fit(reference, "mse", (X, y), **kw)
    path = tmp_path / "c-{step}.pt"
    model = nn.Linear(3, 1).double()
    model.load_state_dict(start)
    fit(model, "mse", (X, y), checkpoint=Checkpoint(path, every_steps=1, every_epochs=None), **kw)
    for step in (1, 6, 7, 12, 20):  # 7 batches per epoch: 7 and 14 end epochs
        fresh = nn.Linear(3, 1).double()
        res = fit(
            fresh,
            "mse",
            (X, y),
            resume=str(path).format(step=step),
            checkpoint=Checkpoint(path, every_steps=1, every_epochs=None),
            **kw,
        )
        assert torch.equal(fresh.weight, reference.weight), step
        np.testing.assert_array_equal(res.history["loss"], ref.history["loss"])
        np.testing.assert_array_equal(res.epoch_history["loss"], ref.epoch_history["loss"])


def test_resume_true_starts_fresh_without_a_file_and_continues_with_one(tmp_path):
    X, y = toy()
    path = tmp_path / "run.pt"
    torch.manual_seed(0)
    model = nn.Linear(3, 1).double()
    res = fit(model, "mse", (X, y), epochs=2, seed=1, checkpoint=path, resume=True, progress=False)
    assert res.epoch == 2 and path.exists()
    more = fit(model, "mse", (X, y), epochs=4, seed=1, checkpoint=path, resume=True, progress=False)
    assert more.epoch == 4 and more.nit == 4 * 2 and len(more.epoch_history) == 4


def test_resume_refuses_a_different_run(tmp_path):
    X, y = toy()
    path = tmp_path / "run.pt"
    fit(nn.Linear(3, 1).double(), "mse", (X, y), epochs=1, seed=1, checkpoint=path, progress=False)
    with pytest.raises(ValueError, match="saved with batch_size=32, this run has batch_size=8"):
        fit(
            nn.Linear(3, 1).double(),
            "mse",
            (X, y),
            batch_size=8,
            seed=1,
            resume=path,
            progress=False,
        )
    with pytest.raises(ValueError, match="saved with seed=1"):
        fit(nn.Linear(3, 1).double(), "mse", (X, y), seed=2, resume=path, progress=False)
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        fit(nn.Linear(3, 1).double(), "mse", (X, y), resume=tmp_path / "nope.pt", progress=False)
