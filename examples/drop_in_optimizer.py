"""descend.optim as a drop-in torch.optim: train a small MLP on scikit-learn's digits.

Run: .venv/bin/python examples/drop_in_optimizer.py
"""

from __future__ import annotations

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import descend


def main() -> None:
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X / 16.0, y, random_state=0)
    X_train, X_test = (torch.tensor(a, dtype=torch.float32) for a in (X_train, X_test))
    y_train, y_test = torch.tensor(y_train), torch.tensor(y_test)

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    optimizer = descend.optim.Adam(model.parameters(), lr=1e-2)  # torch.optim.Adam's arguments
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=30)
    loss_fn = torch.nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(0)

    for epoch in range(30):
        for batch in torch.randperm(len(X_train), generator=generator).split(64):
            optimizer.zero_grad()
            loss = loss_fn(model(X_train[batch]), y_train[batch])
            loss.backward()
            optimizer.step()
        scheduler.step()
        if epoch % 10 == 9:
            with torch.no_grad():
                accuracy = (model(X_test).argmax(1) == y_test).float().mean().item()
            print(f"epoch {epoch + 1:2d}  loss {loss.item():.4f}  test accuracy {accuracy:.3f}")


if __name__ == "__main__":
    main()
