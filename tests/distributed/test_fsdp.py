"""descend's optimizers on FSDP2 (``torch.distributed.fsdp.fully_shard``) parameters, on 2
CPU gloo processes: each rank holds half of every tensor (a DTensor) and the gradient of
its own half of the batch; after three steps the gathered parameters must equal those of
one process stepping the same rule on the whole batch.

torch 2.13 runs FSDP2 on CPU with gloo. One launch of two workers (this file run as a
script) serves every test: the workers step each case and write the largest difference
from the one-process run, or the error the step raised.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from test_second_order import join_group, launch, leave_group  # one launcher for both
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard

import descend.optim

TOLERANCE = 1e-10  # float64, three steps: rounding only (sums over shards in another order)
WIDE = 300  # 600 x 300 weights: more elements than one update block (2**17)

#: rules whose step on FSDP2's sharded parameters is the one-process step: the elementwise
#: rules, and LAMB, LARS and Prodigy, whose norms and sums DTensor takes over all shards
WORKS: dict[str, dict[str, Any]] = {
    "SGD": {"lr": 0.05},
    "Adam": {"lr": 0.01},
    "AdamW": {"lr": 0.01, "weight_decay": 0.1},
    "RMSprop": {"lr": 0.01},
    "Adagrad": {"lr": 0.05},
    "Adamax": {"lr": 0.01},
    "NAdam": {"lr": 0.01},
    "RAdam": {"lr": 0.01},
    "Adadelta": {"lr": 1.0},
    "Rprop": {"lr": 0.01},
    "Lion": {"lr": 0.01},
    "ADOPT": {"lr": 0.01},
    "Yogi": {"lr": 0.01},
    "ScheduleFreeSGD": {"lr": 0.05},
    "ScheduleFreeAdamW": {"lr": 0.01},
    "Prodigy": {"lr": 1.0},
    "LAMB": {"lr": 0.01, "weight_decay": 0.01},
    "LARS": {"lr": 5.0, "momentum": 0.9, "weight_decay": 1e-3},
}

#: the same rules on tensors wider than one update block (2**17 elements): the rule steps
#: each rank's local shard whole, never a flat view a shard cannot give
WIDE_CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "SGD-momentum": ("SGD", {"lr": 0.05, "momentum": 0.9}),
    "ASGD": ("ASGD", {"lr": 0.01}),
    "Adam-wide": ("Adam", {"lr": 0.01}),
    "NAdam-wide": ("NAdam", {"lr": 0.01}),
}

#: rules that need whole tensors: a ValueError naming what they need and the alternatives
REFUSED: dict[str, tuple[str, dict[str, Any], str]] = {
    "Muon": ("Muon", {"lr": 0.01}, "Muon orthogonalizes each whole weight matrix"),
    "MuonWithAdamW": ("MuonWithAdamW", {"lr": 0.01}, "Muon orthogonalizes"),
    "LBFGS": ("LBFGS", {"lr": 1.0}, "as one flat vector"),
    "BFGS": ("BFGS", {"lr": 1.0}, "as one flat vector"),
    "Adafactor": ("Adafactor", {"lr": 0.01}, "Adafactor needs whole tensors"),
    "Adam-fused": ("Adam", {"lr": 0.01, "fused": True}, "fused=True packs the parameters"),
}


def network(hidden: int) -> torch.nn.Module:
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(600, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 3)
    )
    return net.double()


def step_case(name: str, options: dict[str, Any], hidden: int, rank: int) -> dict[str, Any]:
    """Three steps of ``name`` on the FSDP2 network (this rank's half of the batch) and on
    a whole network (the whole batch); the largest difference of the parameters."""
    mesh = init_device_mesh("cpu", (2,))
    X = torch.randn(2, 8, 600, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    Y = torch.randn(2, 8, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    sharded, whole = network(hidden), network(hidden)
    for layer in sharded:
        if isinstance(layer, torch.nn.Linear):
            fully_shard(layer, mesh=mesh)
    fully_shard(sharded, mesh=mesh)
    keep = (lambda p: p.ndim == 2) if name.startswith("Muon") else (lambda p: True)
    ours = [p for p in sharded.parameters() if keep(p)]
    theirs = [p for p in whole.parameters() if keep(p)]
    cls = getattr(descend.optim, name)
    if name == "MuonWithAdamW":
        ours, theirs = [{"params": ours, "use_muon": True}], [{"params": theirs, "use_muon": True}]
    try:
        runs = (
            (cls(ours, **options), lambda: sharded(X[rank]), Y[rank]),
            (cls(theirs, **options), lambda: whole(X.reshape(-1, 600)), Y.reshape(-1, 3)),
        )
        for _ in range(3):
            for opt, predict, target in runs:

                def closure(opt=opt, predict=predict, target=target) -> torch.Tensor:
                    opt.zero_grad()
                    loss = torch.nn.functional.mse_loss(predict(), target)
                    loss.backward()
                    return loss

                opt.step(closure)
    except Exception as error:  # the test reads what the step raised
        return {"error": f"{type(error).__name__}: {error}"}
    params = [p for group in ours for p in group["params"]] if name == "MuonWithAdamW" else ours
    wholes = [p for g in theirs for p in g["params"]] if name == "MuonWithAdamW" else theirs
    gap = max((p.full_tensor() - q).abs().max().item() for p, q in zip(params, wholes))
    return {"gap": gap}


def worker(rank: int, world: int, folder: Path) -> None:
    join_group(rank, world, folder)
    out = {name: step_case(name, options, 10, rank) for name, options in WORKS.items()}
    for key, (name, options) in WIDE_CASES.items():
        out[key] = step_case(name, options, WIDE, rank)
    for key, (name, options, _) in REFUSED.items():
        out[key] = step_case(name, options, 10, rank)
    (folder / f"rank{rank}.json").write_text(json.dumps(out))
    leave_group()


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("fsdp")
    launch(__file__, folder)
    ranks = [json.loads((folder / f"rank{r}.json").read_text()) for r in range(2)]
    assert ranks[0] == ranks[1]  # the gathered parameters are the same on both ranks
    return ranks[0]


@pytest.mark.parametrize("name", WORKS)
def test_a_step_on_fsdp2_shards_is_the_one_process_step(cases: dict, name: str) -> None:
    assert "error" not in cases[name], cases[name]["error"]
    assert cases[name]["gap"] <= TOLERANCE


@pytest.mark.parametrize("key", WIDE_CASES)
def test_tensors_wider_than_an_update_block_step_as_on_one_process(cases: dict, key: str) -> None:
    assert "error" not in cases[key], cases[key]["error"]
    assert cases[key]["gap"] <= TOLERANCE


@pytest.mark.parametrize("key", REFUSED)
def test_rules_that_need_whole_tensors_refuse_shards_by_name(cases: dict, key: str) -> None:
    error = cases[key].get("error", "")
    assert error.startswith("ValueError: parameter 0 is sharded"), cases[key]
    assert REFUSED[key][2] in error and "LAMB or LARS" in error


if __name__ == "__main__":
    worker(int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]))
