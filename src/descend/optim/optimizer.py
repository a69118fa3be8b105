"""The base of descend's update rules: a ``torch.optim.Optimizer`` with shared plumbing.

Every first-order rule is elementwise, so its math is written once as a function of
tensor lists (``torch._foreach_*``) and applied block by block: small tensors are batched
and large ones are split into views, so each block's tensors stay in cache while all of
the rule's passes run over them. That keeps the update close to the memory-bandwidth floor
whether the parameters are one big tensor or a thousand small ones, with no Python loop
over elements and no host synchronization.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import Tensor

from descend.validation import check_non_negative

Closure = Callable[[], Tensor]
TensorLists = Sequence[Sequence[Tensor]]

#: elements per block: each of the (up to 5) lists a rule touches keeps 512 KiB of float32
#: in L2 at this size; measured best between 2**16 and 2**18 on the reference machine.
BLOCK_NUMEL = 1 << 17


class StepFailed(RuntimeError):
    """Raised by ``step`` when no acceptable step exists (e.g. a line search failed).

    The parameters are left at the best point the step saw. ``status`` names the reason
    (``"line_search_failed"``, ``"diverged"``); the descent loop ends the run with it.
    """

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Optimizer(torch.optim.Optimizer):
    """Base class: closure evaluation, gradient gathering, lazy state and blocked updates.

    Subclasses implement ``_init_state(p, state, group)`` and ``_update(group, bucket)``.
    """

    def _state_keys(self, group: dict[str, Any]) -> tuple[str, ...]:
        """Per-parameter state tensors shaped like the parameter, in the order
        ``_update`` wants them; the base gathers them into lists."""
        return ()

    def __init__(self, params: Any, defaults: dict[str, Any]) -> None:
        defaults.setdefault("maximize", False)
        defaults.setdefault("foreach", None)
        super().__init__(params, defaults)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            for key, value in self.defaults.items():
                group.setdefault(key, value)

    # -- the contract -------------------------------------------------------------------

    def _init_state(self, p: Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        """Create the missing entries of ``state`` (called when any key is absent)."""
        for key in self._state_keys(group):
            if key not in state:
                state[key] = torch.zeros_like(p, memory_format=torch.preserve_format)

    def _update(self, group: dict[str, Any], step: int, lists: list[list[Tensor]]) -> None:
        """Apply the rule to ``lists = [params, grads, *state lists]`` that share ``step``."""
        raise NotImplementedError

    # -- the shared step ----------------------------------------------------------------

    @torch.no_grad()
    def step(self, closure: Closure | None = None) -> Tensor | None:  # type: ignore[override]
        """Perform one update; ``closure`` re-evaluates the loss (and gradients) if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for step, lists in self._buckets(group):
                self._update(group, step, lists)
        return loss

    def _buckets(self, group: dict[str, Any]) -> Iterator[tuple[int, list[list[Tensor]]]]:
        """Parameters with gradients, grouped by (device, dtype, step), with their state.

        Increments each parameter's step count. Gradients are negated for ``maximize``.
        """
        keys = self._state_keys(group)
        buckets: dict[tuple[Any, ...], list[list[Tensor]]] = defaultdict(
            lambda: [[] for _ in range(2 + len(keys))]
        )
        for p in group["params"]:
            grad = p.grad
            if grad is None:
                continue
            if grad.is_sparse:
                raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
            state = self.state[p]
            if len(state) <= len(keys):
                state.setdefault("step", 0)
                self._init_state(p, state, group)
            step = state["step"]
            if isinstance(step, Tensor):  # a state_dict saved by torch.optim
                step = int(step.item())
            state["step"] = step = step + 1
            lists = buckets[(p.device, p.dtype, step)]
            lists[0].append(p)
            lists[1].append(grad)
            for i, key in enumerate(keys):
                lists[2 + i].append(state[key])
        for (_, _, step), lists in buckets.items():
            if group["maximize"]:
                lists[1] = list(torch._foreach_neg(lists[1]))
            yield step, lists


def blocks(lists: list[list[Tensor]], numel: int = BLOCK_NUMEL) -> Iterator[list[list[Tensor]]]:
    """Split parallel tensor lists into cache-sized blocks of parallel sub-lists.

    Tensors smaller than ``numel`` are batched together; larger contiguous ones are cut
    into flat views of ``numel`` elements. In-place updates on the views update the
    original tensors.
    """
    batch: list[list[Tensor]] = [[] for _ in lists]
    filled = 0
    for i, first in enumerate(lists[0]):
        size = first.numel()
        if size > numel and all(lst[i].is_contiguous() for lst in lists):
            if batch[0]:
                yield batch
                batch, filled = [[] for _ in lists], 0
            pieces = [lst[i].view(-1).split(numel) for lst in lists]
            for j in range(len(pieces[0])):
                yield [[piece[j]] for piece in pieces]
            continue
        for dst, src in zip(batch, lists):
            dst.append(src[i])
        filled += size
        if filled >= numel:
            yield batch
            batch, filled = [[] for _ in lists], 0
    if batch[0]:
        yield batch


def check_weight_decay(value: float) -> float:
    return check_non_negative("weight_decay", value)
