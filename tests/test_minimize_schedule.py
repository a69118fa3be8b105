"""``minimize(schedule=..., clip_grad_norm=..., clip_grad_value=...)`` is the torch.optim
loop a user would write: backward, clip, step, ``scheduler.step()``, with torch's own
schedulers and clipping functions, iterate for iterate in float64."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler as T

import descend
from descend.problems import get_problem

ROSENBROCK = get_problem("rosenbrock")
START = [-1.2, 1.0]
STEPS = 60

#: minimize's method and options, and torch.optim's class and options for the same rule
RULES = {
    "momentum": ({"lr": 1e-3, "momentum": 0.9}, torch.optim.SGD),
    "adam": ({"lr": 0.05, "betas": (0.8, 0.99)}, torch.optim.Adam),
}


def _torch_loop(optimizer_class, options, schedule=None, clip=lambda x: None, steps=STEPS):
    """torch.optim's run on Rosenbrock from START: each iterate, the unclipped gradient's
    norm there and the lr its step used; ``schedule(optimizer)`` builds the schedulers and
    returns ``step(loss)``, called after each optimizer step."""
    x = torch.tensor(START, dtype=torch.float64, requires_grad=True)
    optimizer = optimizer_class([x], **options)
    step_schedule = schedule(optimizer) if schedule is not None else lambda loss: None
    xs, norms, rates = [], [], []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = ROSENBROCK.fn(x)
        loss.backward()
        xs.append(x.detach().clone().numpy())
        norms.append(x.grad.norm().item())
        rates.append(optimizer.param_groups[0]["lr"])
        clip(x)
        optimizer.step()
        step_schedule(loss.item())
    xs.append(x.detach().clone().numpy())
    return np.array(xs), np.array(norms), np.array(rates)


def _stepped(*schedulers):
    def step(loss):
        for scheduler in schedulers:
            scheduler.step()

    return step


def _warmup_then(after, warm):
    """Warmup's reference: a linear warmup over ``warm`` steps, then ``after`` (built first)."""

    def build(optimizer):
        late = after(optimizer)
        linear = T.LinearLR(optimizer, start_factor=0.01, end_factor=1.0, total_iters=warm)
        done = [0]

        def step(loss):
            if done[0] < warm:
                linear.step()
                done[0] += 1
            else:
                late.step()

        return step

    return build


def _plateau(optimizer):
    scheduler = T.ReduceLROnPlateau(optimizer, factor=0.1, patience=2, threshold=0.05)
    return scheduler.step


#: minimize's schedule argument, and the torch schedulers a hand loop steps for it
SCHEDULES = {
    "cosine": ("cosine", lambda opt: _stepped(T.CosineAnnealingLR(opt, T_max=STEPS))),
    "step": ("step", lambda opt: _stepped(T.StepLR(opt, step_size=STEPS // 3, gamma=0.1))),
    "exponential": ("exponential", lambda opt: _stepped(T.ExponentialLR(opt, gamma=0.9))),
    "one_cycle": (
        "one_cycle",
        lambda opt: _stepped(
            T.OneCycleLR(opt, max_lr=opt.param_groups[0]["lr"], total_steps=STEPS)
        ),
    ),
    "warmup_cosine": (
        {"name": "warmup_cosine", "warmup_steps": 8},
        lambda opt: _stepped(
            T.SequentialLR(
                opt,
                [
                    T.LinearLR(opt, start_factor=0.01, total_iters=8),
                    T.CosineAnnealingLR(opt, T_max=STEPS - 8),
                ],
                milestones=[8],
            )
        ),
    ),
    "exponential after warmup": (
        {"name": "exponential", "gamma": 0.95, "warmup_steps": 5},
        _warmup_then(lambda opt: T.ExponentialLR(opt, gamma=0.95), 5),
    ),
    "plateau": ({"name": "plateau", "patience": 2, "threshold": 0.05}, _plateau),
}


def _minimize(method, **keywords):
    options, _ = RULES[method]
    return descend.minimize(
        ROSENBROCK.fn, START, method, max_iter=STEPS, gtol=0.0, record=True, monitors=None,
        **options, **keywords,
    )  # fmt: skip


def _assert_same_run(res, reference):
    xs, norms, rates = reference
    np.testing.assert_allclose(res.history["x"], xs, rtol=0, atol=1e-12)
    # the gradient magnifies the iterates' last-bit differences by the curvature (~1e3)
    np.testing.assert_allclose(res.history["grad_norm"][:STEPS], norms, rtol=1e-9)
    np.testing.assert_allclose(res.history["lr"][:STEPS], rates, rtol=1e-12, atol=0)


@pytest.mark.parametrize("method", sorted(RULES))
@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_a_schedule_is_torchs_scheduler_stepped_after_every_step(method, name):
    schedule, reference = SCHEDULES[name]
    res = _minimize(method, schedule=schedule)
    options, optimizer_class = RULES[method]
    _assert_same_run(res, _torch_loop(optimizer_class, options, reference))
    assert res.nit == STEPS
    rates = res.history["lr"][:STEPS]
    assert len(set(rates.tolist())) > 1, "the schedule never moved the learning rate"


@pytest.mark.parametrize("method", sorted(RULES))
def test_clipping_is_torchs_clip_before_each_step(method):
    """Rosenbrock's gradient at the start is about 232 long: a norm of 1 and entries of 0.5
    bind on the first steps. The recorded gradient norm is the one before clipping."""
    options, optimizer_class = RULES[method]
    by_norm = _torch_loop(
        optimizer_class, options, clip=lambda x: torch.nn.utils.clip_grad_norm_([x], 1.0)
    )
    assert by_norm[1][0] > 1.0  # the clip binds
    _assert_same_run(_minimize(method, clip_grad_norm=1.0), by_norm)

    def both(x):
        torch.nn.utils.clip_grad_value_([x], 0.5)
        torch.nn.utils.clip_grad_norm_([x], 0.6)

    cosine = SCHEDULES["cosine"][1]
    reference = _torch_loop(optimizer_class, options, cosine, clip=both)
    res = _minimize(method, clip_grad_value=0.5, clip_grad_norm=0.6, schedule="cosine")
    _assert_same_run(res, reference)
    unclipped = _torch_loop(optimizer_class, options, cosine)
    assert not np.allclose(reference[0], unclipped[0])  # clipping changed the run


def test_without_schedule_or_clipping_the_run_is_the_plain_one():
    options, optimizer_class = RULES["adam"]
    _assert_same_run(_minimize("adam"), _torch_loop(optimizer_class, options))


@pytest.mark.parametrize(
    "keywords, error, words",
    [
        ({"clip_grad_norm": 0.0}, ValueError, r"clip_grad_norm must be in \(0, inf\), got 0.0"),
        ({"clip_grad_value": -1}, ValueError, r"clip_grad_value must be in \(0, inf\), got -1"),
        ({"clip_grad_norm": math.nan}, ValueError, r"clip_grad_norm"),
        ({"schedule": "cosin"}, ValueError, r"unknown schedule 'cosin'; valid names: step, "),
        ({"schedule": {"gamma": 0.5}}, ValueError, r"a schedule dict needs a 'name'"),
        ({"schedule": 3}, TypeError, r"schedule must be a name \(step, exponential"),
        ({"schedule": "cosine", "restarts": 3}, ValueError, r"restarts= .* schedule="),
    ],
)
def test_bad_schedules_and_thresholds_are_refused_naming_the_argument(keywords, error, words):
    with pytest.raises(error, match=words):
        descend.minimize(ROSENBROCK.fn, START, "adam", max_iter=5, **keywords)


@pytest.mark.parametrize("method", ["lbfgs", "newton", "cg", "BFGS", "L-BFGS-B"])
def test_line_search_and_second_order_methods_refuse_them_naming_the_ones_that_take_them(
    method,
):
    for keywords in ({"schedule": "cosine"}, {"clip_grad_norm": 1.0}, {"clip_grad_value": 1.0}):
        (given,) = keywords
        with pytest.raises(
            ValueError,
            match=rf"method '{method}' takes line-search or curvature steps, which {given}= "
            r"would break; the first-order methods take them: gd, momentum, .*adam",
        ):
            descend.minimize(ROSENBROCK.fn, START, method, **keywords)
