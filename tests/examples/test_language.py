"""The language gallery apps: skip-gram embeddings recover a generated corpus's topics and
its singular/plural direction; L1 logistic regression finds the few sentiment words, and
solves the same problem as scikit-learn's SAGA."""

from __future__ import annotations

import pytest


def test_quick_skipgram_recovers_the_topics_and_the_plural_direction(example, tmp_path, capsys):
    figure = tmp_path / "embeddings.png"
    scores = example("language/word_embeddings.py").main(["--quick", "--plot", str(figure)])
    ours, counts = scores["skip-gram (descend.fit)"], scores["PPMI + SVD (NumPy)"]
    # 6 topics: chance purity 1/6; one right answer class of 8 words among 131: chance 6%
    assert ours["purity"] >= 0.9 and counts["purity"] >= 0.9, scores
    assert ours["analogy"] >= 0.6, scores
    table = capsys.readouterr().out
    assert max(len(line) for line in table.splitlines()) <= 80
    assert figure.stat().st_size > 0


def test_quick_l1_logistic_regression_finds_the_sentiment_words_as_saga_does(
    example, tmp_path, capsys
):
    figure = tmp_path / "sentiment.png"
    scores = example("language/sentiment_l1.py").main(["--quick", "--plot", str(figure)])
    ours, saga = scores["descend (proximal GD)"], scores["sklearn saga"]
    # at the universal threshold alpha = 0.5 sqrt(2 log V / n) no null word enters, and
    # every sentiment word (|w*| = 1.5 per count) clears it
    assert ours["recall"] == 1.0 and ours["precision"] >= 0.8, scores
    # one convex problem, two solvers run to tight tolerances: one solution
    assert ours["distance to sklearn saga"] <= 1e-3, scores
    assert ours["nonzero"] == saga["nonzero"]
    assert ours["accuracy"] == pytest.approx(saga["accuracy"], abs=0.01)
    table = capsys.readouterr().out
    assert max(len(line) for line in table.splitlines()) <= 80
    assert figure.stat().st_size > 0
