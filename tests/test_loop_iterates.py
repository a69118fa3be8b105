"""The descent loop keeps the previous and the best iterate with one copy per iteration.

The best iterate lives in the parameters, in the previous-iterate buffer or in a saved
buffer, depending on how f moved; whichever it is, a run that ends worse than its best must
hand back exactly the best point, and the step norm must be the distance between
consecutive iterates. A scripted optimizer walks through chosen points so that f rises and
falls on cue.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
import pytest
import torch
from torch import Tensor

from descend.engine import run_descent
from descend.engine.stopping import StoppingCriteria
from descend.objective import Objective
from descend.optim.optimizer import StepFailed
from descend.result import Status


class Scripted(torch.optim.Optimizer):
    """Moves the parameters to the next point of a script on every step; after the script,
    raises StepFailed (as a failed line search would) if asked to."""

    def __init__(self, params: Sequence[Tensor], script: list[list[float]], fail: bool) -> None:
        super().__init__(params, {"lr": 0.1})
        self.script, self.fail, self.k = script, fail, 0

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        if self.k == len(self.script):
            if self.fail:
                for p in self.param_groups[0]["params"]:
                    p.add_(100.0)  # the failed step leaves the point where it chose to
                raise StepFailed("line_search_failed", "no acceptable step")
            raise AssertionError("script exhausted")
        flat = torch.tensor(self.script[self.k], dtype=torch.float64)
        offset = 0
        for p in self.param_groups[0]["params"]:
            p.copy_(flat[offset : offset + p.numel()].view_as(p))
            offset += p.numel()
        self.k += 1
        return None


def run(script: list[list[float]], split: bool, fail: bool = False):
    start = torch.tensor([3.0, 4.0], dtype=torch.float64)
    params = [start[:1].clone(), start[1:].clone()] if split else [start.clone()]
    params = [p.requires_grad_() for p in params]
    objective = Objective.from_autograd(params, lambda: sum((p**2).sum() for p in params))
    stopping = StoppingCriteria(
        max_iter=len(script) + (1 if fail else 0), gtol=0.0, ftol=0.0, divergence_factor=1e300
    )
    optimizer = Scripted(params, script, fail)
    res = run_descent(objective, optimizer, stopping, record=True)
    return res, params


# f = |x|^2 along each script; the start (3, 4) has f = 25
SCRIPTS = {
    # best is the last point: nothing to restore
    "falls": [[2.0, 2.0], [1.0, 1.0], [0.5, 0.5]],
    # best one step before the end: it lives in the previous-iterate buffer
    "rises_once": [[2.0, 2.0], [1.0, 1.0], [3.0, 3.0]],
    # best several steps back: it was moved to the saved buffer
    "rises_long": [[2.0, 2.0], [1.0, 1.0], [3.0, 3.0], [4.0, 4.0], [5.0, 5.0]],
    # falls, rises, falls to a new best, rises again
    "zigzag": [[2.0, 2.0], [3.0, 3.0], [0.5, 0.5], [1.0, 1.0], [2.0, 0.0], [0.1, 0.1], [4, 4]],
    # never better than the start
    "start_best": [[4.0, 4.0], [5.0, 5.0]],
}


@pytest.mark.parametrize("split", [False, True], ids=["one_tensor", "two_tensors"])
@pytest.mark.parametrize("name", list(SCRIPTS))
def test_best_iterate_is_restored_exactly(name: str, split: bool) -> None:
    script = SCRIPTS[name]
    res, params = run(script, split)
    points = [[3.0, 4.0], *script]
    fs = [sum(v * v for v in point) for point in points]
    best = int(np.argmin(fs))
    x = torch.cat([p.detach().reshape(-1) for p in params])
    assert x.tolist() == points[best]
    assert res.fun == fs[best]
    assert res.status == Status.MAX_ITER
    if best != len(script):
        assert f"iteration {best}" in res.message
    # the history still records every iterate, and the step norms between them
    history = res.history.as_dict()
    np.testing.assert_array_equal(history["f"], fs)
    steps = [math.dist(a, b) for a, b in itertools.pairwise(points)]
    np.testing.assert_allclose(history["step_norm"][1:], steps, rtol=1e-15)
    np.testing.assert_array_equal(history["x"], np.array(points))


@pytest.mark.parametrize("split", [False, True], ids=["one_tensor", "two_tensors"])
def test_failed_step_after_a_rise_restores_the_best(split: bool) -> None:
    # f rises on the last scripted step, then the next step fails and moves the point away
    res, params = run([[2.0, 2.0], [1.0, 1.0], [3.0, 3.0]], split, fail=True)
    assert res.status == Status.LINE_SEARCH_FAILED
    x = torch.cat([p.detach().reshape(-1) for p in params])
    assert x.tolist() == [1.0, 1.0]
    assert res.fun == 2.0


@pytest.mark.parametrize("split", [False, True], ids=["one_tensor", "two_tensors"])
def test_failed_step_at_the_best_keeps_where_the_step_left(split: bool) -> None:
    # the last completed iterate is the best: as before, nothing is restored
    res, params = run([[2.0, 2.0], [1.0, 1.0]], split, fail=True)
    assert res.status == Status.LINE_SEARCH_FAILED
    assert res.fun == 2.0
    x = torch.cat([p.detach().reshape(-1) for p in params])
    assert x.tolist() == [101.0, 101.0]
