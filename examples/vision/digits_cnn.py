"""Vision: a small convolutional network on scikit-learn's 8x8 digits, trained by
``descend.fit`` and by the plain torch loop a practitioner would write, side by side.

The network is conv(1->16) -> batch norm -> ReLU -> conv(16->32) -> batch norm -> ReLU ->
2x2 max pool -> linear(512->10), its weights drawn by He initialization
(``descend.init``, variance 2 / fan_in, the choice that keeps ReLU activations' variance
constant through the layers). Both runs start from the same weights and take the same
budget: Adam, batches of 64, a cosine learning-rate schedule
lr_t = lr_0 (1 + cos(pi t / T)) / 2 over T steps, on the training images and their copies
shifted by one pixel up, down, left and right (a digit moved by a pixel is the same
digit; five times the data for free). ``descend.fit`` adds validation each epoch and
early stopping on the validation loss, which puts back the weights of the best epoch;
the torch loop trains to the end of its budget and keeps its last weights.

Run: python examples/vision/digits_cnn.py [--quick] [--plot digits.png]
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch
import torch._dynamo  # torch.optim loads it on first use: out of the timings
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

import descend
import descend.init

#: full mode: epochs (the budget both runs get), early-stopping patience; quick mode
FULL = {"epochs": 15, "patience": 5}
QUICK = {"epochs": 3, "patience": 2}
LR = 3e-3
BATCH = 64


def digits_split(seed: int) -> dict[str, torch.Tensor]:
    """The 1797 digits as (n, 1, 8, 8) images in [0, 1]: 60% train, 20% validation, 20%
    test, stratified by class."""
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).reshape(-1, 1, 8, 8).astype(np.float32)
    X_fit, X_test, y_fit, y_test = train_test_split(
        X, y, test_size=0.2, stratify=y, random_state=seed
    )
    X_train, X_val, y_train, y_val = train_test_split(
        X_fit, y_fit, test_size=0.25, stratify=y_fit, random_state=seed
    )
    arrays = {"X_train": X_train, "y_train": y_train, "X_val": X_val, "y_val": y_val,
              "X_test": X_test, "y_test": y_test}  # fmt: skip
    return {name: torch.as_tensor(a) for name, a in arrays.items()}


def with_shifted_copies(X: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``X`` and its four copies moved by one pixel (up, down, left, right; the pixels
    moved in are 0), with their labels: (5n, 1, 8, 8) and (5n,)."""
    padded = nn.functional.pad(X, (1, 1, 1, 1))
    moves = ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1))
    copies = [padded[:, :, 1 - dy : 9 - dy, 1 - dx : 9 - dx] for dy, dx in moves]
    return torch.cat(copies), y.repeat(len(moves))


def convnet(seed: int) -> nn.Module:
    """The network, He-initialized from ``seed``."""
    net = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 4 * 4, 10),
    )  # fmt: skip
    return descend.init.initialize(net, "he", seed=seed)


@torch.no_grad()
def accuracy(net: nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    net.eval()
    return float((net(X).argmax(dim=1) == y).float().mean())


@torch.no_grad()
def mean_loss(net: nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    net.eval()
    return float(nn.functional.cross_entropy(net(X), y))


def train_with_descend(net: nn.Module, data: dict, epochs: int, patience: int, seed: int):
    """``descend.fit``: Adam, cosine schedule, validation each epoch, early stopping on
    the validation loss (the best epoch's weights put back). The health monitors are off,
    as the torch loop has none, so that the seconds compare the same work."""
    result = descend.fit(
        net, "cross_entropy", (data["X_train"], data["y_train"]),
        optimizer="adam", lr=LR, batch_size=BATCH, epochs=epochs, schedule="cosine",
        validation=(data["X_val"], data["y_val"]), metric="accuracy",
        early_stopping={"monitor": "val_loss", "patience": patience},
        monitors=None, progress=False, seed=seed,
    )  # fmt: skip
    curve = result.epoch_history.as_dict()["val_loss"]
    return result.model, list(curve), result.epoch


def train_with_torch_loop(net: nn.Module, data: dict, epochs: int, seed: int):
    """What a practitioner writes without descend: torch.optim.Adam, CosineAnnealingLR
    stepped per batch, a shuffled pass per epoch; the last weights are kept."""
    X, y = data["X_train"], data["y_train"]
    steps_per_epoch = -(-len(X) // BATCH)
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps_per_epoch)
    order = torch.Generator().manual_seed(seed)
    curve = []
    for _ in range(epochs):
        net.train()
        for rows in torch.randperm(len(X), generator=order).split(BATCH):
            opt.zero_grad()
            nn.functional.cross_entropy(net(X[rows]), y[rows]).backward()
            opt.step()
            sched.step()
        curve.append(mean_loss(net, data["X_val"], data["y_val"]))
    return net, curve, epochs


def plot(path: str, curves: dict[str, list[float]], net: nn.Module, data: dict) -> None:
    """Validation loss per epoch of both runs, and the test digits ``net`` gets wrong."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with torch.no_grad():
        net.eval()
        predicted = net(data["X_test"]).argmax(dim=1)
    wrong = torch.nonzero(predicted != data["y_test"]).flatten()[:8].tolist()
    fig = plt.figure(figsize=(8, 3.2))
    ax = fig.add_subplot(1, 2, 1)
    for name, curve in curves.items():
        ax.semilogy(range(1, len(curve) + 1), curve, marker=".", label=name)
    ax.set(xlabel="epoch", ylabel="validation loss", title="CNN on 8x8 digits")
    ax.grid(alpha=0.3)
    ax.legend()
    for slot, row in enumerate(wrong):
        cell = fig.add_subplot(2, 8, 5 + slot + (slot >= 4) * 4)
        cell.imshow(data["X_test"][row, 0].numpy(), cmap="gray_r")
        cell.set_title(f"{int(data['y_test'][row])} as {int(predicted[row])}", fontsize=8)
        cell.axis("off")
    fig.text(0.75, 0.93, "test digits descend.fit's net gets wrong", ha="center")
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Train both ways, print the table, return the test accuracies by run name."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few epochs (seconds)")
    parser.add_argument("--plot", metavar="PATH", help="save validation curves (PNG)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    budget = QUICK if args.quick else FULL
    data = digits_split(args.seed)
    data["X_train"], data["y_train"] = with_shifted_copies(data["X_train"], data["y_train"])
    first = convnet(args.seed)
    runs = {
        "descend.fit": lambda net: train_with_descend(
            net, data, budget["epochs"], budget["patience"], args.seed
        ),
        "torch loop": lambda net: train_with_torch_loop(net, data, budget["epochs"], args.seed),
    }
    print(f"{'training':<14}{'epochs':>8}{'val acc':>10}{'test acc':>10}{'seconds':>10}")
    accuracies, curves, nets = {}, {}, {}
    for name, train in runs.items():
        start = time.perf_counter()
        net, curves[name], epochs = train(copy.deepcopy(first))
        seconds = time.perf_counter() - start
        nets[name] = net
        accuracies[name] = accuracy(net, data["X_test"], data["y_test"])
        val = accuracy(net, data["X_val"], data["y_val"])
        print(f"{name:<14}{epochs:>8}{val:>10.4f}{accuracies[name]:>10.4f}{seconds:>10.1f}")
    print(
        f"{len(data['y_train'])} training images (shifted copies included), "
        f"{len(data['y_test'])} test digits;"
    )
    print(f"both runs: the same He init, Adam lr {LR}, batches of {BATCH}, cosine schedule")
    if args.plot:
        plot(args.plot, curves, nets["descend.fit"], data)
    return accuracies


if __name__ == "__main__":
    main()
