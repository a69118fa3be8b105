"""descend.init.initialize: schemes by name from a seeded generator."""

import math

import pytest
import torch
from torch import nn

from descend.init import SCHEMES, initialize


def mlp():
    return nn.Sequential(nn.Linear(300, 200), nn.ReLU(), nn.LayerNorm(200), nn.Linear(200, 100))


@pytest.mark.parametrize("scheme", [*SCHEMES, "glorot", "kaiming"])
def test_same_seed_same_weights_other_seed_other_weights(scheme):
    a, b, c = (
        initialize(mlp(), scheme, seed=1),
        initialize(mlp(), scheme, seed=1),
        initialize(mlp(), scheme, seed=2),
    )
    for (name, p), q, r in zip(a.named_parameters(), b.parameters(), c.parameters()):
        assert torch.equal(p, q), name
        if p.dim() >= 2 and scheme != "zeros":
            assert not torch.equal(p, r), name


def test_initialize_leaves_the_global_rng_alone():
    net = mlp()
    torch.manual_seed(5)
    expected = torch.rand(2)
    torch.manual_seed(5)
    initialize(net, "he", seed=0)
    torch.testing.assert_close(torch.rand(2), expected, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("scheme", "std"),
    [
        ("xavier", math.sqrt(2 / (300 + 200))),
        ("xavier_normal", math.sqrt(2 / (300 + 200))),
        ("he", math.sqrt(2 / 300)),
        ("he_normal", math.sqrt(2 / 300)),
        ("lecun", math.sqrt(1 / 300)),
        ("normal", 0.01),
        ("uniform", 0.1 / math.sqrt(12)),
    ],
)
def test_weights_have_the_scheme_variance(scheme, std):
    weight = initialize(mlp(), scheme, seed=0)[0].weight.detach()
    assert weight.std().item() == pytest.approx(std, rel=0.02)
    assert abs(weight.mean().item()) < 0.05 * std + 1e-4


def test_orthogonal_rows_biases_and_norm_scales():
    net = initialize(mlp(), "orthogonal", seed=0, bias=0.1)
    w = net[0].weight.detach()  # 200 x 300: orthonormal rows
    torch.testing.assert_close(w @ w.T, torch.eye(200), atol=1e-5, rtol=0)
    assert torch.all(net[0].bias == 0.1) and torch.all(net[3].bias == 0.1)
    assert torch.all(net[2].weight == 1.0)  # LayerNorm scale keeps its value
    assert torch.all(net[2].bias == 0.1)


def test_generator_and_device_independence():
    g = torch.Generator().manual_seed(3)
    a = initialize(nn.Linear(4, 4), "he", generator=g)
    b = initialize(nn.Linear(4, 4), "he", seed=3)
    assert torch.equal(a.weight, b.weight)
    if torch.cuda.is_available():
        c = initialize(nn.Linear(4, 4).cuda(), "he", seed=3)
        assert torch.equal(c.weight.cpu(), b.weight)


def test_errors_name_the_scheme_and_the_valid_names():
    with pytest.raises(ValueError, match="unknown init scheme 'glorious'; valid names: xavier"):
        initialize(nn.Linear(2, 2), "glorious")
    with pytest.raises(TypeError, match="module must be a torch.nn.Module"):
        initialize("net", "he")


def test_fit_init_uses_the_run_seed():
    from descend import fit

    X, y = torch.randn(8, 3), torch.randn(8)
    a, b = nn.Linear(3, 1), nn.Linear(3, 1)
    fit(a, "mse", (X, y), epochs=1, max_steps=1, lr=1e-12, init="lecun", seed=4, progress=False)
    fit(b, "mse", (X, y), epochs=1, max_steps=1, lr=1e-12, init="lecun", seed=4, progress=False)
    assert torch.equal(a.weight, b.weight)
