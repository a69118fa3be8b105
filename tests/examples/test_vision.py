"""The vision gallery app: a He-initialized CNN with batch norm on the 8x8 digits, trained by
descend.fit (cosine schedule, early stopping) and by a plain torch loop from the same weights."""

from __future__ import annotations


def test_quick_cnn_reaches_the_accuracy_of_its_budget_and_matches_a_torch_loop(
    example, tmp_path, capsys
):
    figure = tmp_path / "digits.png"
    accuracies = example("vision/digits_cnn.py").main(["--quick", "--plot", str(figure)])
    # 3 epochs over 5385 images: about 99% on any seed; 95% leaves room for other CPUs
    assert accuracies["descend.fit"] >= 0.95, accuracies
    # the same rule from the same weights on the same budget: the same quality
    assert accuracies["descend.fit"] >= accuracies["torch loop"] - 0.02, accuracies
    table = capsys.readouterr().out
    assert "descend.fit" in table and "torch loop" in table
    assert max(len(line) for line in table.splitlines()) <= 80
    assert figure.stat().st_size > 0
