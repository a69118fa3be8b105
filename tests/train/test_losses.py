"""The named losses check their target against the model's output: a target of the wrong
shape or a label outside the classes is a ValueError naming both, never a silent
broadcast or torch's IndexError."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from descend import fit
from descend.train.losses import get_loss


@pytest.fixture
def X():
    return torch.randn(20, 3, generator=torch.Generator().manual_seed(0))


def train(build, loss, X, y):
    torch.manual_seed(0)
    return fit(build(), loss, (X, y), optimizer="gd", epochs=2, seed=0, progress=False)


def test_a_target_of_another_shape_is_refused_naming_both(X):
    y = torch.randn(20, 2)
    with pytest.raises(
        ValueError,
        match=r"loss 'mse': the target has shape \(20, 2\) but the model's output has shape "
        r"\(20, 1\); mse takes one value per output, a target of shape \(20, 1\)",
    ):
        fit(nn.Linear(3, 1), "mse", (X, y), batch_size="full", progress=False)


def test_the_same_values_in_another_shape_are_one_target(X):
    y = X.sum(1)
    flat = train(lambda: nn.Linear(3, 1), "mse", X, y)
    column = train(lambda: nn.Linear(3, 1), "mse", X, y.unsqueeze(1))
    assert torch.equal(
        torch.as_tensor(flat.history["loss"]), torch.as_tensor(column.history["loss"])
    )


@pytest.mark.parametrize("bad", [5, -1])
@pytest.mark.parametrize(
    ("loss", "model"),
    [
        ("cross_entropy", lambda: nn.Linear(3, 3)),
        ("nll", lambda: nn.Sequential(nn.Linear(3, 3), nn.LogSoftmax(dim=1))),
    ],
)
def test_labels_outside_the_classes_are_refused_naming_the_class_count(X, loss, model, bad):
    y = torch.tensor([0, 1, 2, bad] * 5)
    with pytest.raises(
        ValueError,
        match=rf"loss '{loss}': labels must be class indices 0\.\.2 for the model's 3 outputs "
        rf"\(classes\), got {bad}; encode the labels as 0\.\.n_classes-1",
    ):
        train(model, loss, X, y)


def test_torch_ignored_label_is_still_a_label_to_skip(X):
    y = torch.tensor([0, 1, -100, 2] * 5)
    res = train(lambda: nn.Linear(3, 3), "cross_entropy", X, y)
    assert res.nit == 2


def test_class_labels_take_one_per_row():
    loss = get_loss("cross_entropy")
    prediction = torch.randn(4, 3)
    with pytest.raises(
        ValueError,
        match=r"the target has shape \(4, 2\) but the model's output has shape \(4, 3\); "
        r"cross_entropy takes one class label per row, a target of shape \(4,\)",
    ):
        loss(prediction, torch.zeros(4, 2, dtype=torch.long))
    labels = torch.tensor([0, 2, 1, 1])
    assert torch.equal(loss(prediction, labels.unsqueeze(1)), loss(prediction, labels))


def test_a_callable_loss_is_called_as_given():
    def total(prediction, target):
        return (prediction - target).sum()

    loss = get_loss(total)
    assert loss(torch.ones(2, 1), torch.zeros(2)).item() == 4.0  # broadcasts, as asked
