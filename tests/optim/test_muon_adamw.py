"""MuonWithAdamW: one optimizer that is torch.optim.Muon on the hidden matrices and
torch.optim.AdamW on the rest, step for step; muon_groups splits a model as Muon's
authors do."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from descend.optim import MuonWithAdamW, muon_groups


def network() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 1)
    ).double()
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(64, 4, generator=gen, dtype=torch.float64)
    return model, x, torch.sin(x.sum(dim=1, keepdim=True))


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, opts: list, steps: int) -> None:
    for _ in range(steps):
        for opt in opts:
            opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        for opt in opts:
            opt.step()


def test_muon_groups_split_hidden_matrices_from_the_rest() -> None:
    model = nn.Sequential(nn.Embedding(10, 8), nn.Linear(8, 8), nn.LayerNorm(8), nn.Linear(8, 3))
    hidden, rest = muon_groups(model)
    assert hidden["use_muon"] and not rest["use_muon"]
    assert [p is model[1].weight for p in hidden["params"]] == [True]
    assert len(rest["params"]) == len(list(model.parameters())) - 1


@pytest.mark.parametrize("adjust_lr_fn", [None, "match_rms_adamw"])
def test_is_torchs_muon_and_adamw_side_by_side(adjust_lr_fn: str | None) -> None:
    ours_model, x, y = network()
    theirs_model, _, _ = network()
    options = dict(lr=0.02, momentum=0.9, weight_decay=0.05, adjust_lr_fn=adjust_lr_fn)
    ours = MuonWithAdamW(muon_groups(ours_model), **options, adamw_lr=1e-3, adamw_weight_decay=0.01)
    hidden, rest = muon_groups(theirs_model)
    theirs = [
        torch.optim.Muon(hidden["params"], **options),
        torch.optim.AdamW(rest["params"], lr=1e-3, betas=(0.9, 0.95), weight_decay=0.01),
    ]
    for _ in range(30):
        train(ours_model, x, y, [ours], 1)
        train(theirs_model, x, y, theirs, 1)
        for p, q in zip(ours_model.parameters(), theirs_model.parameters(), strict=True):
            torch.testing.assert_close(p, q, rtol=1e-9, atol=1e-12)
    assert set(ours.state[ours_model[0].weight]) - {"step"} == {"momentum_buffer"}
    assert set(ours.state[ours_model[4].weight]) - {"step"} == {"exp_avg", "exp_avg_sq"}


def test_one_state_dict_resumes_in_lockstep() -> None:
    model, x, y = network()
    copy, _, _ = network()
    original = MuonWithAdamW(muon_groups(model))
    train(model, x, y, [original], 10)
    buffer = io.BytesIO()
    torch.save(original.state_dict(), buffer)
    buffer.seek(0)
    copy.load_state_dict(model.state_dict())
    resumed = MuonWithAdamW(muon_groups(copy))
    resumed.load_state_dict(torch.load(buffer))
    train(model, x, y, [original], 10)
    train(copy, x, y, [resumed], 10)
    for p, q in zip(model.parameters(), copy.parameters(), strict=True):
        assert torch.equal(p, q)


def test_a_muon_group_takes_matrices_only() -> None:
    with pytest.raises(ValueError, match=r"2-D.*\(3,\)"):
        MuonWithAdamW([{"params": [torch.zeros(3, requires_grad=True)], "use_muon": True}])
    with pytest.raises(ValueError, match="adamw_lr"):
        MuonWithAdamW([torch.zeros(3, requires_grad=True)], adamw_lr=-1.0)
