"""Dead ReLU units: units whose activation is zero on every example of a batch."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from descend.monitors.diagnosis import Diagnosis, Severity
from descend.monitors.monitor import Monitor
from descend.validation import check_int, check_number

#: activation modules whose units can die (output exactly 0 on a whole input range)
RELU_TYPES: tuple[type[nn.Module], ...] = (nn.ReLU, nn.ReLU6)


class DeadReLUMonitor(Monitor):
    r"""Reports ReLU layers where many units output zero on every example.

    A ReLU unit with pre-activation :math:`z \le 0` on every input outputs 0 and gets
    zero gradient, so nothing moves it back: it is dead. One step before each check it
    puts forward hooks on the model's ``nn.ReLU``/``nn.ReLU6`` modules; the forward pass
    of the checked step records, per unit (a feature, or a channel of a convolution),
    whether it was positive for any example (and position). The hooks come off right
    after, so other steps pay nothing. A unit counts as dead when it was zero on the
    whole batch at ``patience`` checks in a row; the monitor reports when some layer has
    at least ``threshold`` of its units dead. ``torch.nn.functional.relu`` calls have no
    module to hook and are not seen.

    Args:
        model: the network (bound by ``fit``; pass it when you run the loop yourself).
        every: check interval in steps, an integer >= 2.
        threshold: share of dead units in a layer that is reported, in (0, 1].
        patience: consecutive checks a unit must be dead at, an integer >= 1.

    Example:
        >>> with torch.no_grad():
        ...     net[0].bias.fill_(-100.0)  # every hidden unit below zero on every row
        >>> monitor = DeadReLUMonitor(net, every=2)
        >>> res = fit(net, "mse", (X, y), monitors=[monitor], epochs=3, progress=False)
        >>> monitor.diagnoses[0].evidence["dead_fraction"]
        1.0
    """

    kinds = ("dead_relu",)
    state = ("alive", "batch", "streak", "armed_at", "armed")

    def __init__(
        self,
        model: nn.Module | None = None,
        *,
        every: int = 50,
        threshold: float = 0.5,
        patience: int = 2,
    ) -> None:
        super().__init__(every=check_int("every", every, low=2))
        if model is not None and not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.model = model
        self.threshold = check_number("threshold", threshold, low=0.0, high=1.0, low_open=True)
        self.patience = check_int("patience", patience, low=1)

    def begin(self, result: Any) -> None:
        self.relus: list[tuple[str, nn.Module]] = []
        if self.model is not None:
            self.relus = [
                (name or type(m).__name__, m)
                for name, m in self.model.named_modules()
                if isinstance(m, RELU_TYPES)
            ]
        self.handles: list[Any] = []
        self.alive: dict[int, Tensor] = {}
        self.batch = 0
        self.streak: dict[int, Tensor] = {}  # per layer: consecutive checks dead, per unit
        self.armed_at = -10
        self.armed = False  # hooks on: they watch the forward pass of step armed_at + 1

    def watch(self, nit: int) -> int:
        if not self.relus:
            return 2**62
        if self.handles and nit == self.armed_at + 1:
            self._evaluate(nit)
        elif self.handles:
            self._disarm()  # a step went by unseen: the hooks saw an unknown mix
        if not self.handles and nit % self.every == self.every - 1:
            self._arm(nit)
        return nit + 1 if self.handles else self.next_multiple(nit) - 1

    def resume(self) -> None:
        if self.armed:  # saved between arming and the step it watches: hook up again
            self._hook_up()

    def release(self) -> None:
        self._disarm()

    def _arm(self, nit: int) -> None:
        self.alive = {}
        self.armed_at = nit
        self._hook_up()

    def _hook_up(self) -> None:
        for i, (_, module) in enumerate(self.relus):
            self.handles.append(module.register_forward_hook(self._hook(i)))
        self.armed = True

    def _disarm(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles = []
        self.armed = False

    def _hook(self, index: int) -> Any:
        def hook(module: nn.Module, inputs: Any, output: Tensor) -> None:
            if self.failure is not None or not isinstance(output, Tensor) or output.dim() < 2:
                return
            try:
                self._record(index, output)
            except Exception as error:  # inside the model's forward pass: never raise there
                self.fail("its forward hook", self.armed_at + 1, error)

        return hook

    def _record(self, index: int, output: Tensor) -> None:
        with torch.no_grad():
            positive = output.detach() > 0
            alive = positive.any(dim=0)
            if alive.dim() > 1:
                alive = alive.flatten(1).any(dim=1)  # a channel lives if any position does
        self.batch = output.shape[0]
        held = self.alive.get(index)
        self.alive[index] = alive if held is None or held.shape != alive.shape else held | alive

    def _evaluate(self, nit: int) -> None:
        self._disarm()
        if not self.alive:
            return
        layers = sorted(self.alive)
        with torch.no_grad():
            for i in layers:
                dead = ~self.alive[i]
                held = self.streak.get(i)
                if held is None or held.shape != dead.shape:
                    held = torch.zeros(dead.shape, dtype=torch.int32, device=dead.device)
                self.streak[i] = (held + 1) * dead
            counts = (
                torch.stack([(self.streak[i] >= self.patience).sum().double() for i in layers])
                .cpu()
                .tolist()
            )
        sizes = [self.alive[i].numel() for i in layers]
        fractions = [c / n for c, n in zip(counts, sizes)]
        worst = max(range(len(layers)), key=lambda j: fractions[j])
        if fractions[worst] < self.threshold:
            return
        names = [self.relus[i][0] for i in layers]
        evidence: dict[str, float] = {
            "dead_fraction": fractions[worst],
            "dead_units": int(sum(counts)),
            "units": int(sum(sizes)),
            "batch_size": self.batch,
            "checks": self.patience,
        }
        for name, fraction in zip(names, fractions):
            evidence[f"dead_fraction[{name}]"] = fraction
        self.report(
            Diagnosis(
                kind="dead_relu",
                severity=Severity.ERROR if fractions[worst] >= 0.99 else Severity.WARNING,
                step=nit,
                message=(
                    f"{fractions[worst]:.0%} of the units after {names[worst]} "
                    f"({int(counts[worst])} of {sizes[worst]}) output zero on every example "
                    f"of the batch ({self.batch} examples) at {self.patience} checks in a row: "
                    "they are dead, get no gradient and cannot recover"
                ),
                evidence=evidence,
                suggestion=(
                    "lower the learning rate (a large step can push units dead), start the "
                    "biases at 0 or slightly positive with a Kaiming init, use LeakyReLU, "
                    "ELU or GELU, or add normalization before the activation"
                ),
            )
        )

    def __repr__(self) -> str:
        model = type(self.model).__name__ if self.model is not None else None
        return f"DeadReLUMonitor(model={model}, every={self.every})"
