"""Partitioners: every row dealt to exactly one client, seeded, the skew each promises."""

from __future__ import annotations

import pytest
import torch

from descend.federated import dirichlet, iid, label_counts, pathological, plot_partition

LABELS = torch.arange(10).repeat_interleave(50)  # 500 rows, 10 classes of 50


def dealt_once(parts, rows):
    every = torch.cat(parts).sort().values
    return torch.equal(every, torch.arange(rows))


def test_iid_deals_equal_shares_from_a_seed():
    parts = iid(503, 20, seed=1)
    assert dealt_once(parts, 503)
    assert {p.numel() for p in parts} == {25, 26}
    assert all(torch.equal(a, b) for a, b in zip(parts, iid(503, 20, seed=1)))
    assert not all(torch.equal(a, b) for a, b in zip(parts, iid(503, 20, seed=2)))


def test_dirichlet_small_alpha_skews_labels_large_alpha_does_not():
    skewed = dirichlet(LABELS, 10, 0.1, seed=0)
    even = dirichlet(LABELS, 10, 1000.0, seed=0)
    assert dealt_once(skewed, 500) and dealt_once(even, 500)
    top = lambda parts: (label_counts(LABELS, parts).max(1).values /  # noqa: E731
                         label_counts(LABELS, parts).sum(1)).mean()  # fmt: skip
    assert top(skewed) > 0.5 > 0.2 > top(even)
    again = dirichlet(LABELS, 10, 0.1, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(skewed, again))


def test_pathological_gives_each_client_its_few_classes():
    parts = pathological(LABELS, 10, 2, seed=0)
    assert dealt_once(parts, 500)
    counts = label_counts(LABELS, parts)
    assert counts.shape == (10, 10)
    assert ((counts > 0).sum(1) <= 2).all()


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: dirichlet(LABELS, 10, 0.0, seed=0), "alpha"),
        (lambda: dirichlet(LABELS, 10, -1.0, seed=0), "alpha"),
        (lambda: iid(5, 6, seed=0), "clients"),
        (lambda: dirichlet(LABELS, 501, 1.0, seed=0), "clients"),
        (lambda: pathological(LABELS, 300, 2, seed=0), "classes_per_client"),
        (lambda: dirichlet(LABELS[:12], 12, 0.01, seed=0), "no rows"),
    ],
)
def test_bad_arguments_are_refused_by_name(call, argument):
    with pytest.raises(ValueError, match=argument):
        call()


def test_plot_partition_stacks_each_clients_labels():
    counts = label_counts(LABELS, dirichlet(LABELS, 6, 0.3, seed=0))
    fig = plot_partition(counts, classes=[f"d{c}" for c in range(10)], title="t")
    ax = fig.axes[0]
    assert len(ax.patches) == 6 * 10
    tops = {}
    for bar in ax.patches:
        x = round(bar.get_x() + bar.get_width() / 2)
        tops[x] = max(tops.get(x, 0), bar.get_y() + bar.get_height())
    assert [tops[k] for k in range(6)] == counts.sum(1).tolist()
    with pytest.raises(ValueError, match="counts"):
        plot_partition(torch.zeros(3))
