"""Capabilities: every rule declares them, and each declared flag holds in behaviour.

The declarations are claims other layers act on (multistart stacks problems as rows of
one tensor when a rule is elementwise, the estimators turn an L2 term into weight decay
when a rule couples it, fit refuses mini-batches when a rule needs a fixed batch), so each
flag is checked by what it promises, not by its value alone.
"""

from __future__ import annotations

import inspect
from dataclasses import fields

import pytest
import torch

import descend.optim
from descend.optim import Capabilities, ProximalL1, capabilities
from descend.optim.capabilities import TORCH_CAPABILITIES

OURS = [
    cls
    for name in descend.optim.__all__
    if isinstance(cls := getattr(descend.optim, name), type)
    and issubclass(cls, torch.optim.Optimizer)
    and cls not in (descend.optim.Optimizer, ProximalL1)
]

EXPECTED = {
    descend.optim.SGD: Capabilities(elementwise=True, couples_weight_decay=True),
    descend.optim.Adagrad: Capabilities(elementwise=True, couples_weight_decay=True),
    descend.optim.RMSprop: Capabilities(elementwise=True, couples_weight_decay=True),
    descend.optim.Adam: Capabilities(elementwise=True, couples_weight_decay=True),
    descend.optim.AdamW: Capabilities(elementwise=True),
    descend.optim.NAdam: Capabilities(elementwise=True, couples_weight_decay=True),
    descend.optim.RAdam: Capabilities(elementwise=True, couples_weight_decay=True),
    descend.optim.Adamax: Capabilities(elementwise=True, couples_weight_decay=True),
    descend.optim.Adadelta: Capabilities(elementwise=True, couples_weight_decay=True),
    descend.optim.ASGD: Capabilities(elementwise=True, couples_weight_decay=True),
    descend.optim.Rprop: Capabilities(elementwise=True),
    descend.optim.Adafactor: Capabilities(),
    descend.optim.Lion: Capabilities(elementwise=True),
    descend.optim.ADOPT: Capabilities(elementwise=True, couples_weight_decay=True),
    descend.optim.Yogi: Capabilities(elementwise=True, couples_weight_decay=True),
    descend.optim.ScheduleFreeSGD: Capabilities(elementwise=True, couples_weight_decay=True),
    descend.optim.ScheduleFreeAdamW: Capabilities(elementwise=True),
    descend.optim.Muon: Capabilities(),
    descend.optim.MuonWithAdamW: Capabilities(),
    descend.optim.Prodigy: Capabilities(),
    descend.optim.LARS: Capabilities(),
    descend.optim.LAMB: Capabilities(),
    descend.optim.BFGS: Capabilities(needs_fixed_batch=True, second_order=True),
    descend.optim.LBFGS: Capabilities(needs_fixed_batch=True, second_order=True),
    descend.optim.TorchLBFGS: Capabilities(needs_fixed_batch=True, second_order=True),
    descend.optim.ConjugateGradient: Capabilities(needs_fixed_batch=True),
    descend.optim.Newton: Capabilities(needs_fixed_batch=True, second_order=True),
    descend.optim.TrustRegion: Capabilities(needs_fixed_batch=True, second_order=True),
    descend.optim.NaturalGradient: Capabilities(
        needs_fixed_batch=True, couples_weight_decay=True, second_order=True
    ),
}

ELEMENTWISE = [cls for cls in OURS if capabilities(cls).elementwise] + [
    cls for cls, caps in TORCH_CAPABILITIES.items() if caps.elementwise
]
COUPLED = [cls for cls in ELEMENTWISE if capabilities(cls).couples_weight_decay]
DECOUPLED = [
    cls
    for cls in ELEMENTWISE
    if not capabilities(cls).couples_weight_decay
    and "weight_decay" in inspect.signature(cls.__init__).parameters
]


def lr_for(cls: type) -> dict[str, float]:
    return {"lr": 0.1} if "lr" in inspect.signature(cls.__init__).parameters else {}


@pytest.mark.parametrize("cls", OURS, ids=lambda c: c.__name__)
def test_every_rule_of_descend_optim_declares_its_own(cls):
    assert "capabilities" in vars(cls), f"{cls.__name__} inherits its capabilities"
    assert capabilities(cls) == EXPECTED[cls]


def test_the_table_covers_every_rule():
    assert set(OURS) == set(EXPECTED)


def test_instances_answer_as_their_class():
    x = torch.zeros(3, requires_grad=True)
    assert capabilities(descend.optim.Adam([x])) == capabilities(descend.optim.Adam)
    assert capabilities(torch.optim.LBFGS([x])).needs_fixed_batch


def test_torch_classes_come_from_the_table_and_unknown_classes_promise_nothing():
    assert capabilities(torch.optim.SGD) == Capabilities(
        elementwise=True, couples_weight_decay=True
    )
    assert capabilities(torch.optim.AdamW) == Capabilities(elementwise=True)
    assert capabilities(torch.optim.LBFGS) == Capabilities(
        needs_fixed_batch=True, second_order=True
    )

    class Mine(torch.optim.Optimizer):
        pass

    class MyLBFGS(torch.optim.LBFGS):
        pass

    assert capabilities(Mine) == Capabilities()
    assert all(not getattr(capabilities(object), f.name) for f in fields(Capabilities))
    assert capabilities(MyLBFGS).needs_fixed_batch  # a subclass keeps its base's answer


@pytest.mark.parametrize(
    "cls",
    [
        torch.optim.Adam,
        torch.optim.NAdam,
        torch.optim.RAdam,
        descend.optim.NAdam,
        descend.optim.RAdam,
    ],
    ids=lambda c: f"{c.__module__}.{c.__name__}",
)
def test_an_instance_with_decoupled_decay_does_not_couple(cls):
    x = torch.zeros(3, requires_grad=True)
    assert capabilities(cls([x])).couples_weight_decay
    decoupled = cls([x], weight_decay=0.1, decoupled_weight_decay=True)
    assert not capabilities(decoupled).couples_weight_decay
    assert capabilities(decoupled).elementwise


@pytest.mark.parametrize(
    "cls", [descend.optim.NAdam, descend.optim.RAdam], ids=lambda c: c.__name__
)
def test_decoupled_decay_of_nadam_and_radam_is_not_the_l2_gradient(cls):
    torch.manual_seed(1)
    x0 = torch.randn(2, 3, dtype=torch.float64)
    decayed = run(cls, x0, weight_decay=0.3, decoupled_weight_decay=True)
    coupled = run(cls, x0, weight_decay=0.3)
    assert not torch.allclose(decayed, coupled, rtol=1e-6, atol=1e-9)


def test_a_proximal_wrapper_is_its_inner_rule_plus_proximal():
    x = torch.zeros(3, requires_grad=True)
    wrapped = ProximalL1(descend.optim.Adam([x]), l1=0.1)
    assert capabilities(wrapped) == Capabilities(
        elementwise=True, couples_weight_decay=True, proximal=True
    )
    assert capabilities(ProximalL1).proximal


# -- each flag holds in behaviour --------------------------------------------------------


def quartic(x: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
    """Rows are independent problems, row i scaled by ``scale[i]``."""
    if scale is None:
        scale = torch.arange(1, x.shape[0] + 1, dtype=x.dtype)
    scale = scale.reshape(-1, 1)
    return (scale * (x - 1.0) ** 4 + scale * x**2).sum()


def run(cls: type, x0: torch.Tensor, scale=None, steps: int = 5, **options) -> torch.Tensor:
    x = x0.clone().requires_grad_(True)
    opt = cls([x], **lr_for(cls), **options)
    for _ in range(steps):
        opt.zero_grad()
        quartic(x, scale).backward()
        opt.step()
    return x.detach()


@pytest.mark.parametrize("cls", ELEMENTWISE, ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_elementwise_rules_move_stacked_rows_as_if_alone(cls):
    if cls is torch.optim.SparseAdam:
        pytest.skip("SparseAdam takes sparse gradients only")
    torch.manual_seed(0)
    x0 = torch.randn(3, 4, dtype=torch.float64)
    scale = torch.tensor([1.0, 10.0, 100.0], dtype=torch.float64)
    together = run(cls, x0, scale)
    for i in range(3):
        alone = run(cls, x0[i : i + 1], scale[i : i + 1])
        torch.testing.assert_close(alone[0], together[i], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("cls", COUPLED, ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_coupled_weight_decay_is_the_gradient_of_the_l2_term(cls):
    torch.manual_seed(1)
    x0 = torch.randn(2, 3, dtype=torch.float64)
    lam = 0.3
    decayed = run(cls, x0, weight_decay=lam)
    x = x0.clone().requires_grad_(True)
    opt = cls([x], **lr_for(cls))
    for _ in range(5):
        opt.zero_grad()
        (quartic(x) + 0.5 * lam * (x * x).sum()).backward()
        opt.step()
    torch.testing.assert_close(decayed, x.detach(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("cls", DECOUPLED, ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_decoupled_weight_decay_is_not_the_l2_gradient(cls):
    torch.manual_seed(1)
    x0 = torch.randn(2, 3, dtype=torch.float64)
    decayed = run(cls, x0, weight_decay=0.3)
    x = x0.clone().requires_grad_(True)
    opt = cls([x], **lr_for(cls), weight_decay=0.0)
    for _ in range(5):
        opt.zero_grad()
        (quartic(x) + 0.15 * (x * x).sum()).backward()
        opt.step()
    assert not torch.allclose(decayed, x.detach(), rtol=1e-6, atol=1e-9)


def closure_calls_per_step(cls: type) -> int:
    x = torch.tensor([3.0, -2.0], dtype=torch.float64)
    if cls is descend.optim.Muon:  # weight matrices only
        x = x.reshape(1, 2)
    x.requires_grad_(True)
    opt = cls([x], **lr_for(cls))
    calls = 0

    def closure():
        nonlocal calls
        calls += 1
        opt.zero_grad()
        loss = quartic(x.reshape(1, -1))
        loss.backward()
        return loss

    most = 0
    for _ in range(5):
        calls = 0
        opt.step(closure)
        most = max(most, calls)
    return most


FIXED_BATCH = [cls for cls in OURS if cls is not descend.optim.NaturalGradient]


@pytest.mark.parametrize("cls", FIXED_BATCH, ids=lambda c: c.__name__)
def test_only_rules_that_need_a_fixed_batch_evaluate_more_than_once_per_step(cls):
    calls = closure_calls_per_step(cls)
    if capabilities(cls).needs_fixed_batch:
        assert calls >= 2  # a trial point beyond the start: both must see one batch
    else:
        assert calls == 1
