"""Language (b): a bag-of-words sentiment classifier by L1-penalized logistic regression,
on generated documents where only a few words carry sentiment; the sparse weights name
those words. descend's estimator against scikit-learn's, same objective, same data.

Documents are word counts over a vocabulary of V words (Zipf frequencies 1/rank^0.8,
L words a document). A hidden weight vector w* is zero except on S sentiment words
(half raise the odds of a positive label, half lower them), and a document x is positive
with probability sigma(w* . x + b*). L1 logistic regression minimizes

    (1/n) sum_i log(1 + exp(-y_i (w . x_i + b))) + alpha |w|_1,      y_i in {-1, +1},

on the counts standardized per word (so that one alpha means the same for rare and
frequent words). The solution is exactly sparse: a word's weight is 0 unless its
correlation with the residual, (1/n) sum_i x_ij (y_i - p_i), reaches alpha. For a word
that carries no sentiment that correlation is noise of standard deviation at most
0.5 / sqrt(n), and the largest of V such is about sqrt(2 log V) times that, so
alpha = 0.5 sqrt(2 log V / n) (the "universal threshold") keeps the null words at 0.

descend's ``LogisticRegression(penalty="l1")`` solves it by proximal gradient descent
(after each gradient step the soft threshold w <- sign(w) max(|w| - eta alpha, 0)).
scikit-learn's ``LogisticRegression(l1_ratio=1, C=1 / (alpha n))`` solves the same
problem by SAGA, and (with a penalized intercept, so not quite the same problem) by
liblinear's coordinate descent.

Judged by: the support's precision and recall against the S true sentiment words, test
accuracy, and the largest weight difference from SAGA's.

Run: python examples/language/sentiment_l1.py [--quick] [--plot sentiment.png]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import sklearn.linear_model
import torch._dynamo  # noqa: F401  torch.optim loads it on first use: out of the timings
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

from descend.estimators import LogisticRegression

#: vocabulary size, documents (training; as many again for testing)
FULL = {"vocabulary": 2000, "documents": 4000}
QUICK = {"vocabulary": 500, "documents": 1500}
SENTIMENT_WORDS = 10
DOCUMENT_LENGTH = 60
WEIGHT = 1.5  # |w*| on a sentiment word


def documents(n: int, vocabulary: int, seed: int):
    """(counts (2n, V), labels in {0, 1} (2n,), w* (V,)): the first n rows for training.
    Sentiment words are drawn among the 200 most frequent (rare words say little)."""
    rng = np.random.default_rng(seed)
    frequency = 1.0 / np.arange(1, vocabulary + 1) ** 0.8
    counts = rng.multinomial(DOCUMENT_LENGTH, frequency / frequency.sum(), size=2 * n)
    truth = np.zeros(vocabulary)
    sentiment = rng.choice(min(200, vocabulary), size=SENTIMENT_WORDS, replace=False)
    truth[sentiment] = WEIGHT * np.resize([1.0, -1.0], SENTIMENT_WORDS)
    logits = counts @ truth - (counts @ truth).mean()
    labels = (rng.random(2 * n) < 1 / (1 + np.exp(-logits))).astype(int)
    return counts.astype(float), labels, truth


def support_scores(weights: np.ndarray, truth: np.ndarray) -> tuple[float, float, int]:
    """(precision, recall, size) of the nonzero weights as a guess of truth's support."""
    found, true = weights != 0, truth != 0
    hits = np.sum(found & true)
    return hits / max(found.sum(), 1), hits / true.sum(), int(found.sum())


def plot(path: str, weights: dict[str, np.ndarray], truth: np.ndarray, scale) -> None:
    """Each solver's nonzero weights per count (the standardized weights / the words'
    standard deviations ``scale``) over the vocabulary, beside the true weights."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.2))
    words = np.arange(len(truth))
    ax.scatter(words[truth != 0], truth[truth != 0], marker="x", color="black", s=40,
               label="true sentiment weight", zorder=3)  # fmt: skip
    for (name, w), marker in zip(weights.items(), "o.^"):
        shown = w != 0
        ax.scatter(words[shown], w[shown] / scale[shown], marker=marker, s=14, label=name)
    ax.axhline(0, color="gray", lw=0.5)
    ax.set(xlabel="word (by frequency rank)", ylabel="weight per count",
           title="L1 logistic regression: the nonzero weights (shrunk by the L1 term)")  # fmt: skip
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    """Fit the three solvers; returns {solver: {precision, recall, accuracy, ...}}."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small corpus (seconds)")
    parser.add_argument("--plot", metavar="PATH", help="save the weights (PNG)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    size = QUICK if args.quick else FULL
    n = size["documents"]
    X, y, truth = documents(n, size["vocabulary"], args.seed)
    scaler = StandardScaler().fit(X[:n])
    X_train, y_train, X_test, y_test = (
        scaler.transform(X[:n]),
        y[:n],
        scaler.transform(X[n:]),
        y[n:],
    )
    alpha = 0.5 * np.sqrt(2 * np.log(size["vocabulary"]) / n)
    print(f"{n} training documents, {n} test documents, {size['vocabulary']} words, "
          f"{SENTIMENT_WORDS} carry")  # fmt: skip
    print(f"sentiment; alpha = 0.5 sqrt(2 log V / n) = {alpha:.4f}")
    C = 1.0 / (alpha * n)
    models = {
        "descend (proximal GD)": LogisticRegression(penalty="l1", alpha=alpha, tol=1e-6),
        "sklearn saga": sklearn.linear_model.LogisticRegression(
            l1_ratio=1.0, C=C, solver="saga", tol=1e-8, max_iter=5000
        ),
        "sklearn liblinear": sklearn.linear_model.LogisticRegression(
            l1_ratio=1.0, C=C, solver="liblinear", tol=1e-8, max_iter=5000
        ),
    }
    figures: dict[str, dict[str, float]] = {}
    weights = {}
    print(f"{'solver':<23}{'precision':>10}{'recall':>8}{'nonzero':>9}{'test acc':>10}"
          f"{'seconds':>9}")  # fmt: skip
    for name, model in models.items():
        start = time.perf_counter()
        with warnings.catch_warnings():  # reported below as a distance, not a warning
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X_train, y_train)
        seconds = time.perf_counter() - start
        weights[name] = model.coef_.ravel()
        precision, recall, nonzero = support_scores(weights[name], truth)
        accuracy = model.score(X_test, y_test)
        figures[name] = {"precision": precision, "recall": recall, "nonzero": nonzero,
                         "accuracy": accuracy}  # fmt: skip
        print(f"{name:<23}{precision:>10.2f}{recall:>8.2f}{nonzero:>9d}{accuracy:>10.3f}"
              f"{seconds:>9.2f}")  # fmt: skip
    bayes = np.mean((X[n:] @ truth - (X @ truth).mean() > 0) == y_test)
    print(f"{'the true weights':<23}{'':>27}{bayes:>10.3f}")
    for name in ("sklearn saga", "sklearn liblinear"):
        gap = float(np.abs(weights["descend (proximal GD)"] - weights[name]).max())
        figures["descend (proximal GD)"][f"distance to {name}"] = gap
        print(f"largest weight difference, descend vs {name}: {gap:.1e}")
    if args.plot:
        plot(args.plot, weights, truth, scaler.scale_)
    return figures


if __name__ == "__main__":
    main()
