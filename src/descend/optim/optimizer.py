"""The base of descend's update rules: a ``torch.optim.Optimizer`` with shared plumbing.

Every first-order rule is elementwise, so its math is written once as a function of
tensor lists (``torch._foreach_*``) and applied block by block: small tensors are batched
and large ones are split into views, so each block's tensors stay in cache while all of
the rule's passes run over them, whether the parameters are one big tensor or a thousand
small ones. There is no Python loop over elements, no host synchronization and no
compiler.

With ``fused=True`` a rule also runs as one compiled pass over flat buffers
(:mod:`descend.optim.flat`): one read and one write of each tensor per step, the
memory-bandwidth floor, at the cost of a compile on the first step. Both paths keep
torch's state names, per-parameter step counts and ``state_dict`` format, and either can
resume the other's checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import Tensor

from descend.optim.capabilities import Capabilities
from descend.optim.flat import FlatLayout, FusedRule, check_fused_supported, fused_call
from descend.optim.sharded import is_sharded, refuse_sharded
from descend.validation import check_non_negative, check_unit_interval

Closure = Callable[[], Tensor]
TensorLists = Sequence[Sequence[Tensor]]
#: what torch._foreach_* ops take; they return lists, which their stubs call tuples
ForeachList = list[Tensor] | tuple[Tensor, ...]

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

    Subclasses implement ``_init_state(p, state, group)`` and ``_update(group, bucket)``;
    a subclass that also implements ``fused_rule(group, step)`` (its rule as one
    compiled pass over flat buffers, see :mod:`descend.optim.flat`) supports
    ``fused=True``. A rule that keeps per-parameter scalars besides the step count (NAdam's
    momentum product, ASGD's step size) implements ``_advance_scalars``; its ``_update``
    then takes their values as extra arguments.

    FSDP2's sharded parameters (DTensors): an elementwise rule steps each rank's local
    shard, which is the whole tensor's step restricted to it; a rule whose norms and sums
    DTensor takes over all the shards sets ``steps_on_shards`` (LAMB, LARS, Prodigy); any
    other rule refuses them by name (:mod:`descend.optim.sharded`).
    """

    capabilities = Capabilities()
    #: the rule's DTensor operations give the whole tensor's step on sharded parameters
    steps_on_shards = False

    def _state_keys(self, group: dict[str, Any]) -> tuple[str, ...]:
        """Per-parameter state tensors shaped like the parameter, in the order
        ``_update`` wants them; the base gathers them into lists."""
        return ()

    def __init__(self, params: Any, defaults: dict[str, Any]) -> None:
        defaults.setdefault("maximize", False)
        defaults.setdefault("foreach", None)
        defaults.setdefault("fused", None)
        self._layouts: dict[int, dict[tuple[Any, ...], FlatLayout]] = {}
        self._missed: dict[tuple[Any, ...], tuple[int, ...]] = {}
        self._bucket_kinds: list[tuple[Any, ...]] = []
        super().__init__(params, defaults)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            for key, value in self.defaults.items():
                group.setdefault(key, value)
        # load_state_dict comes through here with new groups and new state tensors: the
        # flat layouts describe the old ones, and are rebuilt on the next fused step
        self._layouts = {}
        self._missed = {}

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        if group.get("fused"):
            name = type(self).__name__
            if group.get("foreach"):
                raise ValueError(f"{name}: fused=True and foreach=True cannot be used together")
            if type(self).fused_rule is Optimizer.fused_rule:
                raise ValueError(f"{name} has no fused implementation; use fused=False")
            check_fused_supported(name)
            refuse_sharded(group["params"], "fused=True packs the parameters into one flat "
                           "buffer (use fused=False on sharded parameters)")  # fmt: skip

    def _local_shards(
        self, p: Tensor, grad: Tensor, state: list[Tensor], lists: list[list[Tensor]]
    ) -> None:
        """An elementwise rule steps the local shards of a sharded parameter, its gradient
        and state (in place: a DTensor's local tensor is its storage); others refuse."""
        if not self.capabilities.elementwise:
            refuse_sharded([p], f"{type(self).__name__} needs whole tensors for its step")
        for i, t in enumerate([p, grad, *state]):
            lists[i].append(t.to_local() if is_sharded(t) else t)

    # -- the contract -------------------------------------------------------------------

    def _init_state(self, p: Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        """Create the missing entries of ``state`` (called when any key is absent)."""
        for key in self._state_keys(group):
            if key not in state:
                state[key] = torch.zeros_like(p, memory_format=torch.preserve_format)

    def _advance_scalars(self, state: dict[str, Any], group: dict[str, Any]) -> tuple[float, ...]:
        """Advance a parameter's scalar state (kept as torch keeps it: 0-d tensors) by the
        step just counted in ``state["step"]``, and return the values ``_update`` reads.

        Parameters are bucketed by these values, so a bucket shares them and ``_update``
        receives them after ``lists``. The base keeps no scalars: ``()``. The fused path
        counts steps without this hook, so a rule with scalars has no ``fused_rule``.
        """
        return ()

    def _update(self, group: dict[str, Any], step: int, lists: list[list[Tensor]]) -> None:
        """Apply the rule to ``lists = [params, grads, *state lists]`` that share ``step``
        (and the values of ``_advance_scalars``, passed after ``lists``)."""
        raise NotImplementedError

    def fused_rule(self, group: dict[str, Any], step: int) -> FusedRule | None:
        """Step ``step`` of ``group`` as a kernel of flat tensors ``[param, grad, *state]``
        (the gradient not negated for ``maximize``), for ``torch.compile``; None: the rule
        has none. ``fused=True`` runs it on flat buffers (:meth:`_fused_update`), and a
        playground race compiles several steps of several rules into one kernel
        (:mod:`descend.engine.compiled_rows`)."""
        return None

    def _fused_update(self, group: dict[str, Any], step: int, flat: list[Tensor]) -> None:
        """Apply the rule in one compiled pass to ``flat = [param, grad, *state]``, each a
        single flat tensor."""
        rule = self.fused_rule(group, step)
        assert rule is not None, "add_param_group refuses fused=True without a fused rule"
        fused_call(rule.kernel, flat, rule.scalars, rule.flags, type(self).__name__)

    def kernel_state(self, p: Tensor) -> tuple[tuple[str, ...], list[Tensor]]:
        """The names and tensors of ``p``'s state in the order the rule's kernels take them
        (after the parameter and its gradient), created as ``p``'s first step creates them."""
        group = next(g for g in self.param_groups if any(q is p for q in g["params"]))
        keys = self._state_keys(group)
        state = self._ensure_state(p, group, keys)
        return keys, [state[key] for key in keys]

    def _ensure_state(
        self, p: Tensor, group: dict[str, Any], keys: tuple[str, ...]
    ) -> dict[str, Any]:
        """``p``'s state, with its step count and the rule's tensors made if missing."""
        state = self.state[p]
        if len(state) <= len(keys):
            state.setdefault("step", 0)
            self._init_state(p, state, group)
        return state

    # -- the shared step ----------------------------------------------------------------

    @torch.no_grad()
    # torch's stub: a closure returns a float; descend's return the loss tensor
    def step(self, closure: Closure | None = None) -> Tensor | None:  # type: ignore[override]
        """Perform one update; ``closure`` re-evaluates the loss (and gradients) if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            if group["fused"]:
                self._fused_step(group)
                continue
            for step, lists, scalars in self._buckets(group):
                self._plain_update(group, step, lists, scalars)
        return loss

    def _plain_update(
        self,
        group: dict[str, Any],
        step: int,
        lists: list[list[Tensor]],
        scalars: tuple[float, ...] = (),
    ) -> None:
        if group["maximize"]:
            lists[1] = list(torch._foreach_neg(lists[1]))
        self._update(group, step, lists, *scalars)

    def _fused_step(self, group: dict[str, Any]) -> None:
        """One step of a ``fused=True`` group: each bucket that is exactly a flat layout's
        parameters takes the compiled pass; any other (a parameter without a gradient this
        step, parameters at different step counts) takes the plain path over the same
        tensors, which are views of the flat buffers, so both paths stay interchangeable."""
        keys = self._state_keys(group)
        layouts = self._layouts.get(id(group))
        layout: FlatLayout | None
        if layouts is not None and len(layouts) == 1:
            layout = next(iter(layouts.values()))
            step = None
            if layout.state_keys == keys:
                step = layout.advance(group["params"], self.state)
            if step is not None:
                self._fused_run(group, step, layout)
                return
        buckets = self._buckets(group)
        kinds = self._bucket_kinds
        for (step, lists, _), kind in zip(buckets, kinds):
            if kind[1].is_complex:  # the lists hold real views, not the parameters
                self._plain_update(group, step, lists)
                continue
            layout = self._layout_for(group, kind, keys, lists[0], kinds.count(kind) == 1)
            if layout is not None and not layout.adopt(lists, self.state):
                layout = self._layouts[id(group)][kind] = FlatLayout(lists[0], keys)
                layout.adopt(lists, self.state)
            if layout is None:
                self._plain_update(group, step, lists)
            else:
                self._fused_run(group, step, layout)

    def _fused_run(self, group: dict[str, Any], step: int, layout: FlatLayout) -> None:
        self._fused_update(group, step, layout.tensors)
        # the compiled kernel writes the buffers' memory behind autograd's back: count the
        # writes as in-place ops would, so a stale saved tensor still fails in backward and
        # caches keyed on versions (descend.objective) see the new values
        torch.autograd.graph.increment_version(layout.params)
        torch.autograd.graph.increment_version(layout.state)

    def _layout_for(
        self,
        group: dict[str, Any],
        kind: tuple[Any, ...],
        keys: tuple[str, ...],
        params: list[Tensor],
        alone: bool,
    ) -> FlatLayout | None:
        """The layout that holds exactly ``params``, built if need be; None: use the plain
        path this step.

        A different set of parameters than the layout's (one was frozen, one has no
        gradient this step) gets a layout of its own only when it is the only bucket of its
        device and dtype, and the same set came last step too: a set that keeps changing,
        or parameters split across step counts, would otherwise re-lay (copy) everything
        every step.
        """
        layouts = self._layouts.setdefault(id(group), {})
        layout = layouts.get(kind)
        if layout is not None and layout.state_keys == keys:
            if layout.covers(params):
                return layout
            ids, missed_key = _ids(params), (id(group), kind)
            missed, self._missed[missed_key] = self._missed.get(missed_key), ids
            if not (alone and missed == ids):
                return None
        self._missed.pop((id(group), kind), None)
        layout = layouts[kind] = FlatLayout(params, keys)
        return layout

    def _buckets(
        self, group: dict[str, Any]
    ) -> list[tuple[int, list[list[Tensor]], tuple[float, ...]]]:
        """Parameters with gradients, grouped by (device, dtype, step, scalars), with their
        state: ``(step, [params, grads, *state lists], scalars)`` per bucket.

        Increments each parameter's step count (creating its state on the first step) and
        advances its scalar state (``_advance_scalars``).
        Complex tensors come as real views (``torch.view_as_real``); ``_bucket_kinds``
        holds each bucket's (device, dtype) of the parameters themselves.
        """
        keys = self._state_keys(group)
        width = 2 + len(keys)
        buckets: dict[tuple[Any, ...], list[list[Tensor]]] = {}
        for p in group["params"]:
            grad = p.grad
            if grad is None:
                continue
            if grad.is_sparse:
                raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
            state = self._ensure_state(p, group, keys)
            step = state["step"]
            if type(step) is not int:  # a tensor or float, from a torch.optim state_dict
                step = int(step.item() if isinstance(step, Tensor) else step)
            state["step"] = step = step + 1
            where = (p.device, p.dtype, step, self._advance_scalars(state, group))
            lists = buckets.get(where)
            if lists is None:
                lists = buckets[where] = [[] for _ in range(width)]
            if p.is_complex():
                # as torch.optim does: a complex number is a pair of reals to every rule, so
                # a squared gradient is |g|^2 (re^2 + im^2 summed by the rule), not g*g
                lists[0].append(torch.view_as_real(p))
                lists[1].append(torch.view_as_real(grad))
                for i, key in enumerate(keys):
                    lists[2 + i].append(torch.view_as_real(state[key]))
                continue
            if is_sharded(p) and not self.steps_on_shards:
                self._local_shards(p, grad, [state[key] for key in keys], lists)
                continue
            lists[0].append(p)
            lists[1].append(grad)
            for i, key in enumerate(keys):
                lists[2 + i].append(state[key])
        self._bucket_kinds = [where[:2] for where in buckets]
        return [(where[2], lists, where[3]) for where, lists in buckets.items()]


def _ids(tensors: list[Tensor]) -> tuple[int, ...]:
    return tuple(map(id, tensors))


def blocks(lists: list[list[Tensor]], numel: int = BLOCK_NUMEL) -> Iterator[list[list[Tensor]]]:
    """Split parallel tensor lists into cache-sized blocks of parallel sub-lists.

    Tensors smaller than ``numel`` are batched together; larger contiguous ones are cut
    into flat views of ``numel`` elements. In-place updates on the views update the
    original tensors. Only plain tensors are cut: a tensor subclass (FSDP2's sharded
    DTensor) cannot give a flat view of its whole, so it stays one piece.
    """
    if len(lists[0]) == 1 and lists[0][0].numel() <= numel:  # minimize's usual case
        yield lists
        return
    batch: list[list[Tensor]] = [[] for _ in lists]
    filled = 0
    for i, first in enumerate(lists[0]):
        size = first.numel()
        if size > numel and all(_cuttable(lst[i]) for lst in lists):
            if batch[0]:
                yield batch
                batch, filled = [[] for _ in lists], 0
            pieces = [lst[i].view(-1).split(numel) for lst in lists]
            for j in range(len(pieces[0])):
                yield [[piece[j]] for piece in pieces]
            continue
        if filled and filled + size > numel:  # keep every batch within the cache budget
            yield batch
            batch, filled = [[] for _ in lists], 0
        for dst, src in zip(batch, lists):
            dst.append(src[i])
        filled += size
    if batch[0]:
        yield batch


def _cuttable(t: Tensor) -> bool:
    """A plain contiguous tensor (or parameter), whose flat view is the whole tensor."""
    return type(t) in (Tensor, torch.nn.Parameter) and t.is_contiguous()


def check_weight_decay(value: float) -> float:
    return check_non_negative("weight_decay", value)


def decayed(
    params: list[Tensor], grads: list[Tensor], lr: float, weight_decay: float, decoupled: bool
) -> list[Tensor]:
    """Weight decay before a rule's step; returns the gradients the step should use.

    Decoupled (AdamW's form): the parameters are multiplied by :math:`1 - \\eta\\lambda` in
    place and the gradients come back as they were. Coupled (L2): the gradients plus
    :math:`\\lambda\theta`, in new tensors (the caller's gradients stay untouched).
    """
    if weight_decay == 0:
        return grads
    if decoupled:
        torch._foreach_mul_(params, 1 - lr * weight_decay)
        return grads
    return list(torch._foreach_add(grads, params, alpha=weight_decay))


def check_betas(betas: Any) -> tuple[float, float]:
    """``betas`` must be a pair, each in [0, 1); returned as a tuple."""
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    check_unit_interval("betas[0]", betas[0])
    check_unit_interval("betas[1]", betas[1])
    return (betas[0], betas[1])


def scalar_state(value: float) -> Tensor:
    """A per-parameter scalar as ``torch.optim`` keeps one (NAdam's ``mu_product``, ASGD's
    ``eta`` and ``mu``): a 0-d CPU tensor of torch's scalar dtype, float64 when that is the
    default dtype and float32 otherwise. Its rounding is part of torch's trajectory, and
    the same type keeps checkpoints interchangeable."""
    return torch.tensor(value, dtype=_scalar_dtype())


def own_scalar(state: dict[str, Any], key: str) -> Tensor:
    """``state[key]`` as :func:`scalar_state` keeps it, restored where need be.

    ``load_state_dict`` casts every state tensor but ``step`` to its parameter's dtype and
    device; the value itself came from the scalar dtype, so casting back is exact, and a
    resumed run goes on rounding as the uninterrupted one does.
    """
    value = state[key]
    if not isinstance(value, Tensor) or value.dtype != _scalar_dtype() or not value.is_cpu:
        value = state[key] = scalar_state(float(value))
    return value


def _scalar_dtype() -> torch.dtype:
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32
