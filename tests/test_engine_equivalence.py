"""One engine under every front end: the same problem through ``minimize``, ``fit`` on the
full batch (a model whose only parameter is x, over a one-row data set) and ``multistart``
with one start gives the same iterates, statuses, messages, best-iterate handling and
callback stop reasons."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import descend
from descend import StoppingCriteria
from descend.callbacks import Callback

A = torch.tensor([[3.0, 0.5], [0.5, 1.0]], dtype=torch.float64)
B = torch.tensor([1.0, -2.0], dtype=torch.float64)
X0 = [2.0, 1.0]


def quadratic(x: torch.Tensor) -> torch.Tensor:
    """f(x) = x'Ax/2 - b'x, batched over leading dimensions."""
    return 0.5 * torch.einsum("...i,ij,...j->...", x, A, x) - x @ B


class Point(nn.Module):
    """A model whose one parameter is x; its 'prediction' on any row is f(x)."""

    def __init__(self) -> None:
        super().__init__()
        self.x = nn.Parameter(torch.tensor(X0, dtype=torch.float64))

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        return quadratic(self.x).expand(rows.shape[0])


def f_of(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return prediction.mean()


class StopAt(Callback):
    """Stops the run at iteration ``at``, giving a reason."""

    def __init__(self, at: int) -> None:
        self.at = at
        self.stop_reason: str | None = None

    def on_step(self, result) -> bool:
        if result.nit >= self.at:
            self.stop_reason = f"StopAt: iteration {self.at}"
            return True
        return False


def run_all(method: str, stopping: StoppingCriteria, callback=None, **options):
    """(minimize, fit, multistart) results on the same problem and rules."""
    fields = {k: getattr(stopping, k) for k in ("max_iter", "gtol", "ftol", "patience",
                                                "divergence_factor")}  # fmt: skip
    stop = callback and StopAt(callback)
    mini = descend.minimize(quadratic, X0, method, record=True, monitors=None, callback=stop,
                            **fields, **options)  # fmt: skip
    model = Point()
    data = (torch.zeros(1, 1, dtype=torch.float64), torch.zeros(1, dtype=torch.float64))
    trained = descend.fit(model, f_of, data, optimizer=method, batch_size="full",
                          epochs=None, max_steps=10**9, stopping=stopping, monitors=None,
                          progress=False, callbacks=callback and StopAt(callback),
                          **options)  # fmt: skip
    runs = None
    if callback is None:
        runs = descend.multistart(quadratic, k=1, x0=X0, method=method, record=True,
                                  vectorized=True, **fields, **options).results[0]  # fmt: skip
    return mini, trained, model.x.detach().numpy(), runs


CASES = {
    "gtol": ("gd", StoppingCriteria(max_iter=10_000, gtol=1e-6, ftol=0.0), {"lr": 0.2}),
    "max_iter": ("momentum", StoppingCriteria(max_iter=15, gtol=0.0, ftol=0.0), {"lr": 0.1}),
    "ftol": ("adam", StoppingCriteria(max_iter=5000, gtol=0.0, ftol=1e-10, patience=3),
             {"lr": 0.05}),
    "diverged": ("gd", StoppingCriteria(max_iter=1000, gtol=0.0, ftol=0.0), {"lr": 0.9}),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_minimize_fit_and_multistart_run_the_same_engine(case):
    method, stopping, options = CASES[case]
    mini, trained, x_fit, row = run_all(method, stopping, **options)
    assert mini.status == trained.status == row.status == case
    assert mini.message == trained.message == row.message
    assert mini.nit == trained.nit == row.nit
    assert mini.fun == trained.fun == row.fun
    np.testing.assert_array_equal(mini.x, x_fit)
    np.testing.assert_array_equal(mini.x, row.x)
    # the iterates: minimize's history measures x_0..x_k; fit's step rows x_0..x_{k-1}
    f = np.asarray(mini.history["f"])
    np.testing.assert_array_equal(trained.history["loss"], f[: trained.nit])
    np.testing.assert_array_equal(row.history["f"], f)
    np.testing.assert_array_equal(row.history["x"], mini.history["x"])


def test_divergence_returns_the_best_iterate_everywhere():
    method, stopping, options = CASES["diverged"]
    mini, trained, x_fit, row = run_all(method, stopping, **options)
    assert "Returned the best iterate (iteration 0" in mini.message
    f0 = float(quadratic(torch.tensor(X0, dtype=torch.float64)))
    assert mini.fun == trained.fun == row.fun == f0
    np.testing.assert_array_equal(x_fit, X0)


def test_a_callback_stop_reads_the_same_through_minimize_and_fit():
    stopping = StoppingCriteria(max_iter=1000, gtol=0.0, ftol=0.0)
    mini, trained, x_fit, _ = run_all("gd", stopping, callback=7, lr=0.1)
    assert mini.status == trained.status == "callback"
    assert mini.nit == trained.nit == 7
    assert mini.message == trained.message
    assert mini.message.startswith("StopAt: iteration 7; stopped after 7 iterations")
    np.testing.assert_array_equal(mini.x, x_fit)
