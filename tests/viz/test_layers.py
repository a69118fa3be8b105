"""Per-layer gradient norms: recorded by a callback, drawn as a heatmap."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from matplotlib.colors import LogNorm

import descend
from descend.viz import LayerGradientRecorder, plot_layer_gradients
from descend.viz.layers import layer_gradient_data


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 8), torch.nn.Tanh(),
        torch.nn.Linear(8, 1),
    )  # fmt: skip


@pytest.fixture(scope="module")
def recorded():
    g = torch.Generator().manual_seed(1)
    X = torch.randn(64, 3, generator=g)
    y = X.sum(1, keepdim=True)
    net = _net()
    recorder = LayerGradientRecorder(every=2)
    descend.fit(
        net, "mse", (X, y), optimizer="gd", lr=0.05, epochs=2, batch_size=16, seed=0,
        callbacks=[recorder], progress=False,
    )  # fmt: skip
    return net, recorder, (X, y)


def test_fit_records_each_layer_every_n_steps(recorded) -> None:
    _, recorder, _ = recorded
    data = recorder.as_dict()
    assert data["step"].tolist() == [2, 4, 6, 8]
    assert [k for k in data if k != "step"] == ["grad_norm[0]", "grad_norm[2]", "grad_norm[4]"]
    assert all(np.all(np.isfinite(v)) and np.all(v > 0) for k, v in data.items() if k != "step")


def test_the_recorded_norm_is_the_layers_gradient_norm() -> None:
    net = _net()
    X, y = torch.randn(10, 3), torch.randn(10, 1)
    recorder = LayerGradientRecorder(net)
    recorder.bind()
    torch.nn.functional.mse_loss(net(X), y).backward()
    recorder.record(5)
    expected = [
        math.sqrt(sum(float(p.grad.norm()) ** 2 for p in layer.parameters()))
        for layer in (net[0], net[2], net[4])
    ]
    np.testing.assert_allclose(recorder.norms[0], expected, rtol=1e-6)
    rms = LayerGradientRecorder(net, rms=True)
    rms.bind()
    rms.record(5)
    sizes = [sum(p.numel() for p in layer.parameters()) for layer in (net[0], net[2], net[4])]
    np.testing.assert_allclose(rms.norms[0], np.array(expected) / np.sqrt(sizes), rtol=1e-6)
    assert list(rms.as_dict())[1].startswith("grad_rms[")


def test_minimize_records_the_vector_from_the_start() -> None:
    recorder = LayerGradientRecorder()
    res = descend.minimize(
        lambda x: (x**2).sum(), [3.0, 4.0], "gd", lr=0.1, max_iter=5, callback=recorder
    )
    data = recorder.as_dict()
    assert data["step"].tolist() == list(range(res.nit + 1))
    assert data["grad_norm[x]"][0] == pytest.approx(10.0)  # |2 * (3, 4)|


def test_heatmap_shows_the_recorded_numbers(recorded, tmp_path) -> None:
    _, recorder, _ = recorded
    fig = plot_layer_gradients(recorder, tmp_path / "layers.png", dpi=40)
    assert (tmp_path / "layers.png").read_bytes()[:4] == b"\x89PNG"
    ax = fig.axes[0]
    (mesh,) = ax.collections
    table = np.vstack([v for k, v in recorder.as_dict().items() if k != "step"])
    np.testing.assert_allclose(np.asarray(mesh.get_array()).reshape(table.shape), table)
    assert isinstance(mesh.norm, LogNorm)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0", "2", "4"]
    assert ax.yaxis_inverted()  # the input layer on top


def test_dicts_and_history_columns_are_accepted() -> None:
    steps, names, _, what = layer_gradient_data({"enc": [1.0, 0.5], "dec": [2.0, 1.0]})
    assert names == ["enc", "dec"] and steps.tolist() == [0, 1] and what == "gradient norm"
    columns = {"iteration": np.array([0, 10]), "f": np.zeros(2), "grad_rms[a]": [1e-3, 1e-4]}
    steps, names, _, what = layer_gradient_data(columns)
    assert names == ["a"] and steps.tolist() == [0, 10] and what == "gradient RMS"
    fig = plot_layer_gradients({"a": [0.0, 1.0, 2.0]}, log=False)
    assert not isinstance(fig.axes[0].collections[0].norm, LogNorm)


@pytest.mark.parametrize(
    ("data", "error", "match"),
    [
        (3, TypeError, "data must be a LayerGradientRecorder"),
        ({}, ValueError, "data holds no layers"),
        ({"a": [1.0], "b": [1.0, 2.0]}, ValueError, "same number of recordings"),
        ({"a": []}, ValueError, "no recordings"),
        ({"step": [1, 2, 3], "a": [1.0, 2.0]}, ValueError, "3 steps for 2 recordings"),
    ],
)
def test_bad_data(data, error, match) -> None:
    with pytest.raises(error, match=match):
        plot_layer_gradients(data)


def test_recorder_arguments() -> None:
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        LayerGradientRecorder("net")
    with pytest.raises(ValueError, match="every must be an integer >= 1"):
        LayerGradientRecorder(every=0)
    with pytest.raises(ValueError, match="no layers to watch"):
        LayerGradientRecorder().on_begin(object())
