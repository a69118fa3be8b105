"""Flat buffers and compiled single-pass kernels: the ``fused=True`` path of the update rules.

An elementwise rule run as separate tensor operations reads and writes every state tensor
once per operation (Adam: seven passes). Fused, it is one pass: read the parameter, the
gradient and the state once, write the parameter and the state once, which is the memory
traffic the rule cannot avoid. And one pass over one tensor costs the same whether the
model has one parameter or a thousand, provided the thousand live in one buffer.

So ``fused=True`` does two things:

* :class:`FlatLayout` re-points each parameter's ``.data`` at a view of one contiguous
  buffer per (device, dtype), and keeps the gradients and every state tensor in flat
  buffers laid out the same way. Autograd then accumulates gradients in place into the
  views (``p.grad`` is one); a gradient the user replaced or set to ``None`` and autograd
  re-created is copied in. Parameters, gradients and state are still ordinary per-parameter
  tensors to everyone else: ``state_dict`` keys, ``param_groups`` and schedulers are as in
  ``torch.optim``.
* :func:`fused_call` runs the rule's kernel, a plain function of flat tensors written with
  torch operations, through ``torch.compile`` (Inductor emits one vectorized C++ or Triton
  loop). Hyperparameters are passed as Python floats, which the compiler keeps symbolic, so
  a learning-rate schedule or the step count never triggers a recompile.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, TypeVar, cast

import torch
from torch import Tensor

#: slot offsets are rounded up to this many bytes, so every parameter view starts where a
#: vectorized load of the device would want it to (64 B: a cache line, an AVX-512 register)
ALIGN_BYTES = 64

Kernel = Callable[[list[Tensor], tuple[float, ...], tuple[bool, ...]], None]


class FusedRule(NamedTuple):
    """One step of a rule as a kernel of flat tensors: ``kernel(tensors, scalars, flags)``
    updates ``tensors = [param, grad, *state]`` in place. ``flags`` pick the kernel's static
    branches and stay the same from step to step of a run; ``scalars`` (the step's
    learning rate, bias corrections) may change every step."""

    kernel: Kernel
    scalars: tuple[float, ...]
    flags: tuple[bool, ...]


class FusedUnavailable(RuntimeError):
    """``fused=True`` was asked for, but the fused update cannot be compiled here."""


class FlatLayout:
    """Parameters of one (device, dtype), their gradients and their state, each flat.

    Built from the parameters of one bucket (in parameter-group order). The constructor
    copies each parameter into its slot and re-points ``p.data`` there; :meth:`adopt`
    brings gradients and state tensors into their slots (copying only those that are not
    already the layout's views) and reports whether the layout still describes the
    parameters. The slots are padded to :data:`ALIGN_BYTES`; padding stays zero in every
    buffer, and every rule maps zero parameter, gradient and state to zero.
    """

    def __init__(self, params: Sequence[Tensor], state_keys: Sequence[str]) -> None:
        first = params[0]
        self.device, self.dtype = first.device, first.dtype
        self.params = list(params)
        self.state_keys = tuple(state_keys)
        quantum = max(ALIGN_BYTES // first.element_size(), 1)
        self.offsets: list[int] = []
        self.numels: list[int] = []
        total = 0
        for p in self.params:
            self.offsets.append(total)
            self.numels.append(p.numel())
            total += -(-p.numel() // quantum) * quantum
        self.numel = total
        make = lambda: torch.zeros(total, dtype=self.dtype, device=self.device)  # noqa: E731
        self.param, self.grad = make(), make()
        self.state = [make() for _ in self.state_keys]
        self.param_views = self._views(self.param)
        self.grad_views = self._views(self.grad)
        self.state_views = [self._views(flat) for flat in self.state]
        self._state_views_by_param = list(zip(*self.state_views)) or [()] * len(self.params)
        for p, view in zip(self.params, self.param_views):
            view.copy_(p.detach())
            p.data = view
        self.param_ptrs = [view.data_ptr() for view in self.param_views]

    def _views(self, flat: Tensor) -> list[Tensor]:
        return [
            flat[offset : offset + numel].view(p.shape)
            for p, offset, numel in zip(self.params, self.offsets, self.numels)
        ]

    @property
    def tensors(self) -> list[Tensor]:
        """The flat parameter, gradient and state buffers, in the rule's list order."""
        return [self.param, self.grad, *self.state]

    def covers(self, params: Sequence[Tensor]) -> bool:
        """Whether ``params`` are exactly this layout's parameters, in order."""
        members = self.params
        return len(params) == len(members) and all(a is b for a, b in zip(params, members))

    def adopt(self, lists: Sequence[Sequence[Tensor]], state: Any) -> bool:
        """Bring ``lists = [params, grads, *state lists]`` into the flat buffers.

        Parameters whose ``.data`` was replaced since (``p.data = ...``, keeping the
        device, dtype and size) are copied back into their slots; gradients and state tensors
        that are not the layout's views are copied in, and ``p.grad`` / ``state[p][key]``
        re-pointed, so the next step finds them in place. Returns False when a parameter
        changed its number of elements: the layout is stale and must be rebuilt.
        """
        params, grads = lists[0], lists[1]
        for i, p in enumerate(params):
            if p.data_ptr() != self.param_ptrs[i]:
                if p.numel() != self.numels[i]:
                    return False
                view = self.param_views[i]
                view.copy_(p.detach())
                p.data = view
        grad_views = self.grad_views
        moved = [i for i, g in enumerate(grads) if g is not grad_views[i]]
        if moved:
            torch._foreach_copy_([grad_views[i] for i in moved], [grads[i] for i in moved])
            for i in moved:
                params[i].grad = grad_views[i]
        for k, key in enumerate(self.state_keys):
            views, current = self.state_views[k], lists[2 + k]
            moved = [i for i, t in enumerate(current) if t is not views[i]]
            if moved:
                torch._foreach_copy_([views[i] for i in moved], [current[i] for i in moved])
                for i in moved:
                    state[params[i]][key] = views[i]
        return True

    def advance(self, params: Sequence[Tensor], state: Any) -> int | None:
        """The common step, with as little Python per parameter as possible.

        When ``params`` (a parameter group's list) are exactly this layout's parameters,
        each with a gradient, at one step count, with data and state in place: copy in the
        gradients that autograd or the user put elsewhere, count the step in every
        parameter's ``state["step"]``, and return the new step. Otherwise return None,
        having changed nothing, and the caller takes the general path.
        """
        members = self.params
        if len(params) != len(members):
            return None
        keys = self.state_keys
        step = None
        states = []
        moved: list[int] = []
        moved_grads: list[Tensor] = []
        for i, (p, member, ptr, grad_view, views) in enumerate(
            zip(params, members, self.param_ptrs, self.grad_views, self._state_views_by_param)
        ):
            if p is not member or p.data_ptr() != ptr:
                return None
            grad = p.grad
            if grad is not grad_view:
                if grad is None or grad.is_sparse:
                    return None
                moved.append(i)
                moved_grads.append(grad)
            st = state.get(p)
            if st is None:
                return None
            count = st.get("step")
            if type(count) is not int or (step is not None and count != step):
                return None
            step = count
            for key, view in zip(keys, views):
                if st.get(key) is not view:
                    return None
            states.append(st)
        if step is None:
            return None
        if moved:
            grad_views = self.grad_views
            torch._foreach_copy_([grad_views[i] for i in moved], moved_grads)
            for i in moved:
                params[i].grad = grad_views[i]
        step += 1
        for st in states:
            st["step"] = step
        return step

    def zero_grad(self) -> None:
        self.grad.zero_()


# -- compiled kernels ----------------------------------------------------------------------

#: Inductor decides at compile time whether a CPU loop runs on several threads, from the
#: size of the example it compiles for; the buffers' sizes are symbolic, so a kernel first
#: compiled for a small model would stay single-threaded for every later one. Dynamic
#: threads always emit the parallel loop and let OpenMP size the team at run time.
F = TypeVar("F", bound=Callable[..., Any])

_OPTIONS: dict[str, Any] = {"cpp.dynamic_threads": True}

_COMPILED: dict[tuple[Kernel, tuple[bool, ...]], Callable[..., None]] = {}
_CHECKED: set[tuple[Kernel, tuple[bool, ...], torch.device, torch.dtype]] = set()


def own_code(fn: F, tag: str) -> F:
    """A copy of ``fn`` with its own code object, named ``<name>_<tag>``.

    torch.compile keeps one cache of compiled graphs per code object, capped at a few
    entries. One code object per variant (a kernel's flag combination, a race's rules and
    landscape) keeps each cache down to its dtypes and devices, so no variant falls off.
    """
    code = fn.__code__.replace(co_name=f"{fn.__name__}_{tag}")
    copy = types.FunctionType(code, fn.__globals__, code.co_name, fn.__defaults__, fn.__closure__)
    copy.__qualname__ = f"{fn.__qualname__}_{tag}"
    return cast(F, copy)


def fused_call(
    kernel: Kernel,
    tensors: list[Tensor],
    scalars: tuple[float, ...],
    flags: tuple[bool, ...],
    owner: str,
) -> None:
    """Run ``kernel(tensors, scalars, flags)`` compiled into one fused loop.

    ``flags`` pick the kernel's static branches; ``scalars`` vary freely (they are compiled
    as symbols, not constants). ``owner`` names the optimizer in error messages. The first
    call for a combination of flags, device and dtype compiles (seconds; Inductor caches
    the result on disk for later processes); a failure there raises
    :class:`FusedUnavailable` naming the cause.
    """
    key = (kernel, flags)
    compiled = _COMPILED.get(key)
    if compiled is None:
        compiled = torch.compile(
            own_code(kernel, "_".join("1" if f else "0" for f in flags) or "none"),
            dynamic=True,
            fullgraph=True,
            options=_OPTIONS,
        )
        _COMPILED[key] = compiled
    checked = (kernel, flags, tensors[0].device, tensors[0].dtype)
    if checked in _CHECKED:
        compiled(tensors, scalars, flags)
        return
    try:
        compiled(tensors, scalars, flags)
    except Exception as exc:
        raise FusedUnavailable(
            f"{owner}(fused=True) could not compile its fused update for "
            f"{tensors[0].dtype} tensors on {tensors[0].device} with torch.compile: "
            f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}. "
            "The fused path needs a working C++ compiler (CPU) or Triton (GPU); "
            "use fused=False (the default) for the uncompiled multi-tensor path."
        ) from exc
    _CHECKED.add(checked)


def check_fused_supported(owner: str) -> None:
    """Raise :class:`FusedUnavailable` early when torch.compile cannot run at all."""
    try:
        import torch._dynamo as dynamo

        supported = dynamo.is_dynamo_supported()
    except Exception as exc:  # pragma: no cover - depends on the installation
        raise FusedUnavailable(
            f"{owner}(fused=True) needs torch.compile, which failed to load: {exc}; use fused=False"
        ) from exc
    if not supported:  # pragma: no cover - depends on the Python version
        raise FusedUnavailable(
            f"{owner}(fused=True) needs torch.compile, which this Python/torch build does "
            "not support; use fused=False"
        )
