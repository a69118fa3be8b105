"""Schedules by name step the learning rate exactly as torch's schedulers would; warmup
composes with plateau reduction; factories, instances and intervals."""

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.optim import lr_scheduler as T

from descend import fit
from descend.callbacks import ReduceLROnPlateau
from descend.train import Schedule

N, BATCH, EPOCHS, LR = 40, 8, 6, 0.1  # 5 steps per epoch, 30 in all


def data(n=N):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(n, 2, generator=g)
    return X, X.sum(1)


def lrs_of_fit(schedule, **kw):
    torch.manual_seed(0)
    kw = {"optimizer": "gd", "lr": LR, "batch_size": BATCH, "epochs": EPOCHS, **kw}
    res = fit(nn.Linear(2, 1), "mse", data(), schedule=schedule, progress=False, **kw)
    return res.history["lr"], res


def lrs_of_torch(build, interval, epochs=EPOCHS, per_epoch=N // BATCH):
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=LR)
    sched = build(opt)
    out = []
    for _ in range(epochs):
        for _ in range(per_epoch):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            if interval == "step":
                sched.step()
        if interval == "epoch":
            sched.step()
    return np.array(out)


TOTAL = EPOCHS * N // BATCH


@pytest.mark.parametrize(
    ("name", "build", "interval"),
    [
        ("step", lambda o: T.StepLR(o, step_size=2, gamma=0.1), "epoch"),
        ("exponential", lambda o: T.ExponentialLR(o, gamma=0.9), "epoch"),
        ("cosine", lambda o: T.CosineAnnealingLR(o, T_max=TOTAL), "step"),
        ("one_cycle", lambda o: T.OneCycleLR(o, max_lr=[LR], total_steps=TOTAL), "step"),
        (
            "warmup_cosine",
            lambda o: T.SequentialLR(
                o,
                [T.LinearLR(o, 0.01, 1.0, total_iters=1), T.CosineAnnealingLR(o, TOTAL - 1)],
                milestones=[1],
            ),
            "step",
        ),
    ],
)
def test_named_schedule_steps_the_lr_as_torch_does(name, build, interval):
    ours, _ = lrs_of_fit(name)
    np.testing.assert_array_equal(ours, lrs_of_torch(build, interval))
    assert len(set(ours.tolist())) > 2  # it really changed


def test_schedule_options_by_dict():
    ours, _ = lrs_of_fit({"name": "step", "step_size": 1, "gamma": 0.5})
    expected = lrs_of_torch(lambda o: T.StepLR(o, step_size=1, gamma=0.5), "epoch")
    np.testing.assert_array_equal(ours, expected)
    ours, _ = lrs_of_fit({"name": "exponential", "gamma": 0.5, "interval": "step"})
    np.testing.assert_array_equal(
        ours, lrs_of_torch(lambda o: T.ExponentialLR(o, gamma=0.5), "step")
    )


def test_factory_and_schedule_with_interval():
    ours, _ = lrs_of_fit(lambda opt: T.MultiStepLR(opt, milestones=[2, 4]))
    np.testing.assert_array_equal(
        ours, lrs_of_torch(lambda o: T.MultiStepLR(o, milestones=[2, 4]), "epoch")
    )
    ours, _ = lrs_of_fit(Schedule(lambda opt: T.MultiStepLR(opt, [7, 9]), interval="step"))
    np.testing.assert_array_equal(
        ours, lrs_of_torch(lambda o: T.MultiStepLR(o, milestones=[7, 9]), "step")
    )


def test_scheduler_instance_on_a_given_optimizer():
    torch.manual_seed(0)
    net = nn.Linear(2, 1)
    opt = torch.optim.SGD(net.parameters(), lr=LR)
    res = fit(
        net,
        "mse",
        data(),
        optimizer=opt,
        batch_size=BATCH,
        epochs=EPOCHS,
        schedule=T.StepLR(opt, step_size=3, gamma=0.1),
        progress=False,
    )
    np.testing.assert_allclose(res.epoch_history["lr"], [LR] * 3 + [LR / 10] * 3)
    other = torch.optim.SGD(nn.Linear(2, 1).parameters(), lr=LR)
    with pytest.raises(ValueError, match="different optimizer"):
        fit(net, "mse", data(), optimizer=opt, schedule=T.StepLR(other, 3), progress=False)


def flat_problem():
    """Rows the zero model already fits exactly: the loss never improves (a plateau)."""
    X = torch.randn(N, 2, generator=torch.Generator().manual_seed(1))
    net = nn.Linear(2, 1)
    nn.init.zeros_(net.weight)
    nn.init.zeros_(net.bias)
    return net, X, torch.zeros(N)


def test_warmup_then_plateau_composes():
    net, X, y = flat_problem()
    warm = 7
    res = fit(
        net,
        "mse",
        (X, y),
        optimizer="gd",
        lr=LR,
        batch_size=BATCH,
        epochs=EPOCHS,
        schedule={"name": "plateau", "warmup_steps": warm, "patience": 1, "factor": 0.5},
        progress=False,
    )
    lrs = res.history["lr"]
    # linear warmup 0.01 lr -> lr over 7 steps, exactly LinearLR's values
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=LR)
    linear = T.LinearLR(opt, start_factor=0.01, end_factor=1.0, total_iters=warm)
    expected = []
    for _ in range(warm):
        expected.append(opt.param_groups[0]["lr"])
        opt.step()
        linear.step()
    np.testing.assert_array_equal(lrs[:warm], expected)
    assert lrs[0] == pytest.approx(0.01 * LR) and lrs[warm] == pytest.approx(LR)
    # then the plateau: the loss is flat, so after patience=1 + 1 epochs the lr halves
    epoch_lr = res.epoch_history["lr"]
    assert epoch_lr[1] == pytest.approx(LR)  # epoch 2 ended inside the warmup window
    assert epoch_lr[-1] < LR / 2 and np.all(np.diff(epoch_lr[1:]) <= 0)


def test_plateau_watches_validation_loss_when_there_is_one():
    plateau = {"name": "plateau", "patience": 0, "factor": 0.1}
    _, alone = lrs_of_fit(plateau)
    assert np.all(np.diff(alone.epoch_history["loss"]) < 0)  # training loss always improves
    assert alone.epoch_history["lr"][-1] == LR  # so the plateau never fires on it
    X, _ = data()
    _, watched = lrs_of_fit(plateau, validation=(X[:8], torch.zeros(8)))  # gets worse
    assert watched.epoch_history["lr"][-1] < LR
    with pytest.raises(ValueError, match="monitors 'val_acc'"):
        lrs_of_fit({"name": "plateau", "monitor": "val_acc"})


def test_reduce_lr_on_plateau_callback_uses_torchs_rule():
    net, X, y = flat_problem()
    res = fit(
        net,
        "mse",
        (X, y),
        optimizer="gd",
        lr=LR,
        batch_size=BATCH,
        epochs=EPOCHS,
        callbacks=[ReduceLROnPlateau(patience=1, factor=0.5)],
        progress=False,
    )
    # torch's rule on a constant metric: reduce after patience + 1 bad epochs, then again
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=LR)
    ref = T.ReduceLROnPlateau(opt, patience=1, factor=0.5, threshold=1e-4, threshold_mode="abs")
    expected = []
    for _ in range(EPOCHS):  # the epoch history records the lr each epoch trained with
        expected.append(opt.param_groups[0]["lr"])
        ref.step(0.0)
    np.testing.assert_allclose(res.epoch_history["lr"], expected)
    assert expected[-1] < LR


def test_schedules_that_need_the_step_count_say_so_for_streams(tmp_path):
    import pandas as pd

    from descend.train import stream

    X, y = data()
    frame = pd.DataFrame(X.numpy(), columns=["a", "b"])
    frame["y"] = y.numpy()
    frame.to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(ValueError, match="needs the number of steps.*give max_steps"):
        fit(
            nn.Linear(2, 1),
            "mse",
            stream(tmp_path / "d.csv", "y"),
            schedule="cosine",
            progress=False,
        )
    res = fit(
        nn.Linear(2, 1),
        "mse",
        stream(tmp_path / "d.csv", "y"),
        batch_size=8,
        lr=0.01,
        schedule="cosine",
        max_steps=12,
        epochs=None,
        progress=False,
    )
    assert res.history["lr"][-1] == pytest.approx(0.01 * (1 + math.cos(math.pi * 11 / 12)) / 2)
