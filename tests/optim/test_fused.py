"""``fused=True``: flat buffers and one compiled pass must equal the plain path and torch.

The plain (uncompiled, blocked multi-tensor) path is the ground truth the rest of
``tests/optim`` holds against ``torch.optim``; here the fused path is held against both,
step for step, across the things that make flat buffers tricky: several shapes and a
non-contiguous parameter in one buffer, gradients that autograd re-creates or the user
replaces, parameters that skip a step or are frozen, checkpoints in both directions,
``p.data`` swapped behind the optimizer's back, and learning-rate schedules.

Each distinct (rule, flags, dtype) compiles once per process (seconds, cached on disk
afterwards), so the configurations below are few and shared between tests.
"""

from __future__ import annotations

import copy
import getpass
import io
import os
import pickle
import tempfile
from typing import Any

import pytest
import torch
from torch import Tensor

import descend
import descend.optim
from descend.optim import flat
from descend.optim.flat import FlatLayout, FusedUnavailable


@pytest.fixture(autouse=True, scope="module")
def _inductor_cache_of_this_cpu_capability():
    """Inductor's on-disk cache (torch 2.13) keys a compiled graph by the graph, not by the
    vector ISA its C++ was generated for: a kernel cached by a native run and loaded under
    ATEN_CPU_CAPABILITY=default no longer builds ("'at::vec' has not been declared"). A
    run that chooses a capability gets a cache of its own, so either order passes."""
    capability = os.environ.get("ATEN_CPU_CAPABILITY")
    if not capability:
        yield
        return
    base = os.environ.get("TORCHINDUCTOR_CACHE_DIR") or os.path.join(
        tempfile.gettempdir(), f"torchinductor_{getpass.getuser()}"
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TORCHINDUCTOR_CACHE_DIR", f"{base}-{capability}")
        yield


F64 = {"rtol": 1e-9, "atol": 1e-12}
F32 = {"rtol": 1e-5, "atol": 1e-6}

#: (class name, keyword arguments): every rule, plain and with every optional term
CONFIGS = [
    ("SGD", {}),
    ("SGD", {"momentum": 0.9, "nesterov": True, "weight_decay": 0.05, "maximize": True}),
    ("SGD", {"momentum": 0.9, "dampening": 0.3}),
    ("Adagrad", {}),
    ("Adagrad", {"lr_decay": 0.01, "weight_decay": 0.05, "initial_accumulator_value": 0.1}),
    ("RMSprop", {}),
    ("RMSprop", {"momentum": 0.5, "centered": True, "weight_decay": 0.05, "maximize": True}),
    ("Adam", {}),
    ("Adam", {"amsgrad": True, "weight_decay": 0.05, "maximize": True}),
    ("AdamW", {}),
    ("AdamW", {"amsgrad": True}),
]
IDS = [f"{name}-{'-'.join(kw) or 'plain'}" for name, kw in CONFIGS]
LR = {"SGD": 0.05, "Adagrad": 0.05, "RMSprop": 0.01, "Adam": 0.01, "AdamW": 0.01}


def shapes() -> list[Any]:
    """Mixed layout: a matrix, a vector longer than a cache block, a 0-d scalar, an odd
    size, and a transposed (non-contiguous) matrix."""
    return [(3, 4), (70_001,), (), (7,), ("t", 30, 20)]


def make_params(dtype: torch.dtype = torch.float64, seed: int = 0) -> list[Tensor]:
    gen = torch.Generator().manual_seed(seed)
    out = []
    for shape in shapes():
        if shape and shape[0] == "t":
            out.append(torch.randn(shape[1:], generator=gen, dtype=dtype).t())
        else:
            out.append(torch.randn(shape, generator=gen, dtype=dtype))
    return [p.requires_grad_() for p in out]


def loss_fn(params: list[Tensor], k: int) -> Tensor:
    """A smooth loss whose gradient changes with the step, so state matters, and whose
    gradient is Lipschitz with a modest constant, so that rounding differences between the
    paths do not grow into real ones (maximize ascends it without chaos)."""
    total = torch.zeros((), dtype=params[0].dtype)
    for i, p in enumerate(params):
        quadratic = ((p - 0.1 * (i + 1)) ** 2).sum() * (1 + 0.1 * k)
        total = total + quadratic + 0.1 * k * torch.sin(p).sum()
    return total


def backward(params: list[Tensor], k: int, set_to_none: bool = True) -> None:
    for p in params:
        if set_to_none:
            p.grad = None
        elif p.grad is not None:
            p.grad.zero_()
    loss_fn(params, k).backward()


def clones(params: list[Tensor]) -> list[Tensor]:
    return [p.detach().clone().requires_grad_() for p in params]


def assert_close(a: list[Tensor], b: list[Tensor], **tol: float) -> None:
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x.detach(), y.detach(), **tol)


def build(name: str, kwargs: dict[str, Any], params: list[Tensor], **extra: Any) -> Any:
    return getattr(descend.optim, name)(params, lr=LR[name], **kwargs, **extra)


# -- agreement ------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "kwargs"), CONFIGS, ids=IDS)
def test_fused_equals_plain_and_torch_float64(name: str, kwargs: dict[str, Any]) -> None:
    base = make_params()
    fused_p, plain_p, torch_p = clones(base), clones(base), clones(base)
    fused = build(name, kwargs, fused_p, fused=True)
    plain = build(name, kwargs, plain_p)
    theirs = getattr(torch.optim, name)(torch_p, lr=LR[name], **kwargs, foreach=False)
    for k in range(12):
        for params, opt in ((fused_p, fused), (plain_p, plain), (torch_p, theirs)):
            backward(params, k, set_to_none=k % 2 == 0)  # both ways autograd fills p.grad
            opt.step()
        assert_close(fused_p, plain_p, **F64)
        assert_close(fused_p, torch_p, **F64)
    for p in fused_p:
        assert fused.state[p]["step"] == 12 or name == "SGD"
    # the state has torch's names and values
    sd, td = fused.state_dict(), theirs.state_dict()
    for i in range(len(base)):
        theirs_state = td["state"].get(i, {})
        theirs_keys = {k for k, v in theirs_state.items() if isinstance(v, Tensor)} - {"step"}
        assert set(sd["state"][i]) - {"step"} == theirs_keys
        for key in theirs_keys:
            # state entries near zero come out of cancellation: tolerance on their scale
            value = theirs_state[key]
            scale = value.abs().max().item() if value.numel() else 0.0
            torch.testing.assert_close(sd["state"][i][key], value, rtol=1e-9, atol=1e-9 * scale)


@pytest.mark.parametrize(("name", "kwargs"), [CONFIGS[1], CONFIGS[8]], ids=[IDS[1], IDS[8]])
def test_fused_equals_plain_float32(name: str, kwargs: dict[str, Any]) -> None:
    base = make_params(torch.float32)
    fused_p, plain_p = clones(base), clones(base)
    fused = build(name, kwargs, fused_p, fused=True)
    plain = build(name, kwargs, plain_p)
    for k in range(10):
        for params, opt in ((fused_p, fused), (plain_p, plain)):
            backward(params, k)
            opt.step()
    assert_close(fused_p, plain_p, **F32)


# -- the flat layout ------------------------------------------------------------------------


def test_parameters_and_gradients_become_views_of_one_buffer() -> None:
    params = make_params()
    values = [p.detach().clone() for p in params]
    opt = descend.optim.SGD(params, lr=0.0, fused=True)  # lr 0: values must not move
    backward(params, 0)
    opt.step()
    (layout,) = opt._layouts[id(opt.param_groups[0])].values()
    assert isinstance(layout, FlatLayout)
    for p, v, pv, gv in zip(params, values, layout.param_views, layout.grad_views, strict=True):
        assert p.data_ptr() == pv.data_ptr() and p.untyped_storage().data_ptr() == (
            layout.param.untyped_storage().data_ptr()
        )
        assert p.grad is gv
        assert torch.equal(p.detach(), v)  # including the transposed one, now contiguous
        assert p.shape == v.shape
    # slots are aligned, padding is zero in every buffer
    for offset in layout.offsets:
        assert (offset * params[0].element_size()) % flat.ALIGN_BYTES == 0
    used = torch.zeros(layout.numel, dtype=torch.bool)
    for offset, numel in zip(layout.offsets, layout.numels, strict=True):
        used[offset : offset + numel] = True
    for buffer in layout.tensors:
        assert not buffer[~used].any()


def test_backward_accumulates_into_the_flat_gradient_buffer() -> None:
    params = make_params()
    opt = descend.optim.Adam(params, lr=0.01, fused=True)
    backward(params, 0)
    opt.step()
    (layout,) = opt._layouts[id(opt.param_groups[0])].values()
    opt.zero_grad(set_to_none=False)
    loss_fn(params, 1).backward()
    for p, gv in zip(params, layout.grad_views, strict=True):
        assert p.grad is gv  # autograd added in place: nothing to copy on the next step
    expected = clones(params)
    loss_fn(expected, 1).backward()
    for p, e in zip(params, expected, strict=True):
        torch.testing.assert_close(p.grad, e.grad, **F64)


def test_padding_stays_zero_through_steps() -> None:
    for name, kwargs in [CONFIGS[1], CONFIGS[4], CONFIGS[6], CONFIGS[8]]:
        params = make_params()
        opt = build(name, kwargs, params, fused=True)
        for k in range(4):
            backward(params, k)
            opt.step()
        (layout,) = opt._layouts[id(opt.param_groups[0])].values()
        used = torch.zeros(layout.numel, dtype=torch.bool)
        for offset, numel in zip(layout.offsets, layout.numels, strict=True):
            used[offset : offset + numel] = True
        for buffer in layout.tensors:
            assert not buffer[~used].any(), name


def test_a_parameter_without_gradient_is_skipped_as_torch_skips_it() -> None:
    """One step without a gradient for one parameter (the plain path over the views),
    then all of them again (back on the flat pass), must follow torch exactly."""
    base = make_params()
    ours_p, torch_p = clones(base), clones(base)
    ours = descend.optim.Adam(ours_p, lr=0.01, fused=True)
    theirs = torch.optim.Adam(torch_p, lr=0.01, foreach=False)
    for k in range(8):
        for params, opt in ((ours_p, ours), (torch_p, theirs)):
            backward(params, k)
            if k in (2, 3):
                params[1].grad = None
            opt.step()
        assert_close(ours_p, torch_p, **F64)
    assert ours.state[ours_p[1]]["step"] == 6 and ours.state[ours_p[0]]["step"] == 8


def test_a_frozen_parameter_gets_a_new_layout_and_keeps_its_values() -> None:
    base = make_params()
    ours_p, torch_p = clones(base), clones(base)
    ours = descend.optim.RMSprop(ours_p, lr=0.01, fused=True)
    theirs = torch.optim.RMSprop(torch_p, lr=0.01, foreach=False)
    for k in range(8):
        for params, opt in ((ours_p, ours), (torch_p, theirs)):
            backward(params, k)
            if k >= 3:
                params[0].grad = None  # frozen from step 3 on
            opt.step()
        assert_close(ours_p, torch_p, **F64)
    (layout,) = ours._layouts[id(ours.param_groups[0])].values()
    assert len(layout.params) == len(base) - 1, "the set without the frozen one is laid out"


def test_user_replaced_data_and_gradients_are_taken_in() -> None:
    base = make_params()
    ours_p, torch_p = clones(base), clones(base)
    ours = descend.optim.SGD(ours_p, lr=0.05, momentum=0.9, fused=True)
    theirs = torch.optim.SGD(torch_p, lr=0.05, momentum=0.9, foreach=False)
    for k in range(6):
        if k == 3:
            for params in (ours_p, torch_p):
                with torch.no_grad():
                    params[3].data = torch.full_like(params[3], 0.5)  # swapped storage
        for params, opt in ((ours_p, ours), (torch_p, theirs)):
            backward(params, k)
            params[0].grad = torch.ones_like(params[0])  # a gradient the user made
            opt.step()
        assert_close(ours_p, torch_p, **F64)


def test_learning_rate_schedule_needs_no_recompile() -> None:
    params = make_params()
    opt = descend.optim.Adam(params, lr=0.01, fused=True)
    schedule = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    reference = clones(params)
    ref_opt = torch.optim.Adam(reference, lr=0.01, foreach=False)
    ref_schedule = torch.optim.lr_scheduler.StepLR(ref_opt, step_size=1, gamma=0.5)
    backward(params, 0)
    opt.step()  # compiles (or loads) the kernel
    compiled = flat._COMPILED[(descend.optim.adam._fused_adam, (False, False))]
    backward(reference, 0)
    ref_opt.step()
    frames_before = torch._dynamo.utils.counters["frames"]["ok"]
    for k in range(1, 6):
        schedule.step()
        ref_schedule.step()
        backward(params, k)
        opt.step()
        backward(reference, k)
        ref_opt.step()
    assert torch._dynamo.utils.counters["frames"]["ok"] == frames_before, "recompiled"
    assert flat._COMPILED[(descend.optim.adam._fused_adam, (False, False))] is compiled
    assert_close(params, reference, **F64)


#: every float hyperparameter of each rule, with a second value to switch to mid-run
VARIED = {
    "SGD": {"lr": 0.03, "momentum": 0.8, "dampening": 0.1, "weight_decay": 0.02},
    "Adagrad": {"lr": 0.03, "lr_decay": 0.02, "weight_decay": 0.02, "eps": 1e-9},
    "RMSprop": {"lr": 0.003, "alpha": 0.9, "eps": 1e-7, "weight_decay": 0.02, "momentum": 0.3},
    "Adam": {"lr": 0.003, "betas": (0.8, 0.99), "eps": 1e-7, "weight_decay": 0.02},
}
START = {
    "SGD": {"momentum": 0.9, "dampening": 0.2, "weight_decay": 0.05},
    "Adagrad": {"lr_decay": 0.01, "weight_decay": 0.05},
    "RMSprop": {"momentum": 0.5, "weight_decay": 0.05},
    "Adam": {"weight_decay": 0.05},
}


@pytest.mark.parametrize("name", list(VARIED))
def test_hyperparameter_changes_need_no_recompile(name: str) -> None:
    """Schedules change lr, and OneCycleLR cycles momentum or betas: every float
    hyperparameter must reach the compiled kernel as a value, not a baked-in constant."""
    base = make_params()
    ours_p, torch_p = clones(base), clones(base)
    ours = build(name, START[name], ours_p, fused=True)
    theirs = getattr(torch.optim, name)(torch_p, lr=LR[name], **START[name], foreach=False)
    for k in range(6):
        if k == 2:
            frames = torch._dynamo.utils.counters["frames"]["ok"]
        if k >= 3:
            for opt in (ours, theirs):
                for key, value in VARIED[name].items():
                    if key == "betas":  # as OneCycleLR cycles beta1; both stay below 1
                        opt.param_groups[0][key] = (value[0] - 0.01 * k, value[1] - 0.001 * k)
                    else:
                        opt.param_groups[0][key] = value * (1 + 0.01 * k)
        for params, opt in ((ours_p, ours), (torch_p, theirs)):
            backward(params, k)
            opt.step()
        assert_close(ours_p, torch_p, **F64)
    assert torch._dynamo.utils.counters["frames"]["ok"] == frames, "a hyperparameter recompiled"


def test_parameter_groups_each_get_their_own_layout() -> None:
    base = make_params()
    ours_p, torch_p = clones(base), clones(base)

    def groups(params: list[Tensor]) -> list[dict[str, Any]]:
        return [{"params": params[:2], "lr": 0.02}, {"params": params[2:], "weight_decay": 0.1}]

    ours = descend.optim.AdamW(groups(ours_p), lr=0.01, fused=True)
    theirs = torch.optim.AdamW(groups(torch_p), lr=0.01, foreach=False)
    for k in range(5):
        for params, opt in ((ours_p, ours), (torch_p, theirs)):
            backward(params, k)
            opt.step()
        assert_close(ours_p, torch_p, **F64)
    assert len(ours._layouts) == 2


def test_complex_parameters_take_the_plain_path_and_match_torch() -> None:
    runs = []
    for cls, extra in ((descend.optim.Adam, {"fused": True}), (torch.optim.Adam, {})):
        z = torch.tensor([1 + 2j, -0.5 + 0.3j], dtype=torch.complex128, requires_grad=True)
        opt = cls([z], lr=0.01, **extra)
        for _ in range(5):
            opt.zero_grad()
            (z.abs() ** 3).sum().backward()
            opt.step()
        runs.append(z.detach())
    torch.testing.assert_close(runs[0], runs[1], **F64)


# -- checkpoints ----------------------------------------------------------------------------


def roundtrip(state_dict: dict[str, Any]) -> dict[str, Any]:
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


@pytest.mark.parametrize(("source", "target"), [(True, False), (False, True), (True, True)])
def test_state_dict_moves_between_fused_and_plain_in_lockstep(source: bool, target: bool) -> None:
    base = make_params()
    first_p = clones(base)
    first = descend.optim.Adam(first_p, lr=0.01, amsgrad=True, fused=source)
    for k in range(4):
        backward(first_p, k)
        first.step()
    second_p = clones(first_p)
    second = descend.optim.Adam(second_p, lr=0.01, amsgrad=True, fused=target)
    second.load_state_dict(roundtrip(first.state_dict()))
    for k in range(4, 9):
        for params, opt in ((first_p, first), (second_p, second)):
            backward(params, k)
            opt.step()
        assert_close(first_p, second_p, rtol=1e-13, atol=1e-15)
    assert second.state[second_p[0]]["step"] == 9


def test_torch_checkpoint_loads_into_fused() -> None:
    base = make_params()
    torch_p, ours_p = clones(base), clones(base)
    theirs = torch.optim.Adagrad(torch_p, lr=0.05, foreach=False)
    for k in range(3):
        backward(torch_p, k)
        theirs.step()
    with torch.no_grad():
        for p, q in zip(ours_p, torch_p, strict=True):
            p.copy_(q)
    ours = descend.optim.Adagrad(ours_p, lr=0.05, fused=True)
    ours.load_state_dict(roundtrip(theirs.state_dict()))
    for k in range(3, 7):
        for params, opt in ((torch_p, theirs), (ours_p, ours)):
            backward(params, k)
            opt.step()
        assert_close(ours_p, torch_p, **F64)


def test_load_state_dict_into_a_running_fused_optimizer() -> None:
    """Loading replaces the state tensors: the layout is rebuilt from the loaded values."""
    params = make_params()
    opt = descend.optim.Adam(params, lr=0.01, fused=True)
    backward(params, 0)
    opt.step()
    saved = copy.deepcopy(opt.state_dict())
    snapshot = [p.detach().clone() for p in params]
    backward(params, 1)
    opt.step()  # moves on from the saved point
    opt.load_state_dict(saved)
    with torch.no_grad():
        for p, s in zip(params, snapshot, strict=True):
            p.copy_(s)
    reference = clones(snapshot)
    ref_opt = descend.optim.Adam(reference, lr=0.01)
    ref_opt.load_state_dict(copy.deepcopy(saved))
    for k in range(1, 4):
        for ps, o in ((params, opt), (reference, ref_opt)):
            backward(ps, k)
            o.step()
        assert_close(params, reference, rtol=1e-13, atol=1e-15)


def test_deepcopy_and_pickle_keep_a_working_optimizer() -> None:
    params = make_params()
    opt = descend.optim.Adam(params, lr=0.01, fused=True)
    backward(params, 0)
    opt.step()
    for other in (copy.deepcopy(opt), pickle.loads(pickle.dumps(opt))):
        assert other._layouts == {}
        assert set(other.state_dict()["state"][0]) == {"step", "exp_avg", "exp_avg_sq"}


# -- the loop and errors --------------------------------------------------------------------


def test_minimize_runs_fused() -> None:
    def rosen(x: Tensor) -> Tensor:
        return (100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2).sum()

    plain = descend.minimize(rosen, [-1.2, 1.0], method="adam", lr=0.01, max_iter=300)
    fused = descend.minimize(rosen, [-1.2, 1.0], method="adam", lr=0.01, max_iter=300, fused=True)
    assert fused.nit == plain.nit
    torch.testing.assert_close(torch.as_tensor(fused.x), torch.as_tensor(plain.x), **F64)
    assert fused.history["f"] == pytest.approx(plain.history["f"], rel=1e-9, abs=1e-14)


def test_fused_and_foreach_together_are_refused() -> None:
    with pytest.raises(ValueError, match="fused=True and foreach=True"):
        descend.optim.Adam(make_params(), fused=True, foreach=True)


def test_a_rule_without_a_fused_kernel_refuses_fused() -> None:
    class Bare(descend.optim.Optimizer):
        def __init__(self, params: Any, fused: bool | None = None) -> None:
            super().__init__(params, {"lr": 0.1, "fused": fused})

    with pytest.raises(ValueError, match="Bare has no fused implementation"):
        Bare(make_params(), fused=True)


def test_compile_failure_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_compile(fn: Any, **kwargs: Any) -> Any:
        def run(*args: Any) -> None:
            raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found")

        return run

    def kernel(tensors: list[Tensor], scalars: tuple[float, ...], flags: tuple[bool, ...]) -> None:
        tensors[0].add_(scalars[0])

    monkeypatch.setattr(flat.torch, "compile", broken_compile)
    with pytest.raises(FusedUnavailable) as info:
        flat.fused_call(kernel, [torch.zeros(3)], (1.0,), (), "Adam")
    message = str(info.value)
    assert "Adam(fused=True)" in message and "C++ compiler" in message
    assert "fused=False" in message
    flat._COMPILED.pop((kernel, ()), None)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fused_on_cuda_equals_torch() -> None:
    base = [p.detach().cuda() for p in make_params()]
    ours_p, torch_p = clones(base), clones(base)
    ours = descend.optim.Adam(ours_p, lr=0.01, weight_decay=0.05, fused=True)
    theirs = torch.optim.Adam(torch_p, lr=0.01, weight_decay=0.05, foreach=False)
    for k in range(5):
        for params, opt in ((ours_p, ours), (torch_p, theirs)):
            backward(params, k)
            opt.step()
        assert_close(ours_p, torch_p, **F64)


def test_a_fused_step_counts_as_an_in_place_write() -> None:
    """The compiled kernel writes memory behind autograd's back; the step must still bump
    version counters, as torch's in-place updates do."""
    params = make_params()
    opt = descend.optim.Adam(params, lr=0.01, fused=True)
    backward(params, 0)
    opt.step()
    before = [p._version for p in params]
    state_before = [opt.state[p]["exp_avg"]._version for p in params]
    backward(params, 1)
    opt.step()
    assert all(p._version > v for p, v in zip(params, before, strict=True))
    assert all(
        opt.state[p]["exp_avg"]._version > v for p, v in zip(params, state_before, strict=True)
    )
    saved = (params[0] ** 3).sum()  # keeps params[0] for its backward
    opt.step()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        saved.backward()
