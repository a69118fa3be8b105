"""Language (a): word embeddings by skip-gram with negative sampling (word2vec), trained by
``descend.fit`` on a corpus generated from a known latent structure, and judged by how
much of that structure the vectors recover.

The corpus: each of T topics owns B nouns, each with a singular and a plural form
("t3w7", "t3w7s"), and a few adjectives ("t3a1", no number); verbs carry a number and no
topic ("v2", "v2s"); function words carry neither. A sentence picks a topic and a number
and draws nouns of that topic in that number, adjectives of that topic, verbs in that
number and function words. So a noun's contexts say its topic (through the adjectives
and the other nouns) and its number (through the verbs), and nothing else: its vector
should be a topic part plus a number part, and "plural - singular" one direction.

Skip-gram with negative sampling (Mikolov et al. 2013) scores a (word, context) pair by
s = u_w . v_c and minimizes, over the pairs seen within a window and K random "negative"
contexts per pair drawn from the unigram distribution to the power 3/4,

    - log sigma(u_w . v_c) - sum_k log sigma(-u_w . v_k),

which is logistic regression on pairs labelled seen (1) / drawn (0): ``descend.fit`` with
the ``bce_with_logits`` loss, Adam and a cosine schedule (the negatives are drawn once,
from a seeded generator). At its optimum u_w . v_c = PMI(w, c) - log K (Levy & Goldberg
2014), so the practitioner's count-based alternative, compared in the same run, is the
truncated SVD of the positive PMI matrix.

Judged by: topic purity, the share of each noun's 5 nearest nouns (cosine) from its own
topic (chance: about 1/T); and analogies "a : a-plural :: b : ?" over nouns a, b of
different topics, answered by the word nearest u_as - u_a + u_b (the question's three
words excluded), right when it is a plural noun of b's topic (a topic's nouns share
their contexts, so b-plural and its topic's other plurals are one answer to the corpus).

Run: python examples/language/word_embeddings.py [--quick] [--plot embeddings.png]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch._dynamo  # torch.optim loads it on first use: out of the timings
from torch import nn

import descend

#: corpus sizes: topics, nouns per topic, sentences; training epochs
FULL = {"topics": 8, "base_words": 12, "sentences": 6000, "epochs": 6}
QUICK = {"topics": 6, "base_words": 8, "sentences": 1500, "epochs": 3}
ADJECTIVES = 4  # per topic
VERBS = 4  # each in two numbers
FUNCTION_WORDS = 6
SENTENCE_LENGTH = 10
#: the chance that a sentence's word is a noun, an adjective, a verb, a function word
PARTS_OF_SPEECH = (0.4, 0.2, 0.2, 0.2)
WINDOW = 2
NEGATIVES = 5
DIMENSION = 8
NEIGHBOURS = 5


def vocabulary(topics: int, base_words: int) -> list[str]:
    """Nouns "t<topic>w<noun>" and "t<topic>w<noun>s" first (noun id 2 (t B + b) +
    plural), then adjectives, verbs, function words."""
    nouns = [f"t{t}w{b}{s}" for t in range(topics) for b in range(base_words) for s in "_s"]
    adjectives = [f"t{t}a{j}" for t in range(topics) for j in range(ADJECTIVES)]
    verbs = [f"v{j}{s}" for j in range(VERBS) for s in "_s"]
    return [w.rstrip("_") for w in nouns + adjectives + verbs] + [
        f"f{f}" for f in range(FUNCTION_WORDS)
    ]


def topic_corpus(topics: int, base_words: int, sentences: int, seed: int) -> np.ndarray:
    """(sentences, SENTENCE_LENGTH) word ids: each sentence one topic and one number; each
    word a noun (Zipf weights 1/rank), adjective, verb or function word."""
    rng = np.random.default_rng(seed)
    zipf = 1.0 / np.arange(1, base_words + 1)
    shape = (sentences, SENTENCE_LENGTH)
    topic = rng.integers(0, topics, size=(sentences, 1))
    plural = rng.integers(0, 2, size=(sentences, 1))
    noun = 2 * (topic * base_words + rng.choice(base_words, p=zipf / zipf.sum(), size=shape))
    first_adjective = 2 * topics * base_words
    first_verb = first_adjective + topics * ADJECTIVES
    first_function = first_verb + 2 * VERBS
    choices = [
        noun + plural,
        first_adjective + topic * ADJECTIVES + rng.integers(0, ADJECTIVES, shape),
        first_verb + 2 * rng.integers(0, VERBS, shape) + plural,
        first_function + rng.integers(0, FUNCTION_WORDS, shape),
    ]
    part = rng.choice(len(choices), p=PARTS_OF_SPEECH, size=shape)
    return np.choose(part, choices)


def skipgram_pairs(corpus: np.ndarray, n_words: int, seed: int):
    """(word, context) pairs within ``WINDOW`` of each other in a sentence, labelled 1, and
    ``NEGATIVES`` pairs per seen pair with the context drawn from unigram^(3/4), labelled 0."""
    both_ways = []
    for offset in range(1, WINDOW + 1):
        left, right = corpus[:, :-offset].ravel(), corpus[:, offset:].ravel()
        both_ways += [np.column_stack([left, right]), np.column_stack([right, left])]
    seen = np.concatenate(both_ways)
    counts = np.bincount(corpus.ravel(), minlength=n_words) ** 0.75
    rng = np.random.default_rng(seed)
    drawn = np.column_stack([
        np.repeat(seen[:, 0], NEGATIVES),
        rng.choice(n_words, p=counts / counts.sum(), size=len(seen) * NEGATIVES),
    ])  # fmt: skip
    pairs = np.concatenate([seen, drawn])
    labels = np.concatenate([np.ones(len(seen)), np.zeros(len(drawn))])
    return pairs, labels, seen


class SkipGram(nn.Module):
    """Score s = u_w . v_c of (word, context) id pairs; ``words`` holds the vectors u."""

    def __init__(self, n_words: int, dimension: int, seed: int) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        # word2vec's start: u uniform in +-0.5/d, v at 0
        self.words = nn.Parameter((torch.rand(n_words, dimension, generator=g) - 0.5) / dimension)
        self.contexts = nn.Parameter(torch.zeros(n_words, dimension))

    def forward(self, pairs: torch.Tensor) -> torch.Tensor:
        word, context = pairs[:, 0].long(), pairs[:, 1].long()
        return (self.words[word] * self.contexts[context]).sum(dim=1)


def train_skipgram(pairs, labels, n_words: int, epochs: int, seed: int) -> np.ndarray:
    model = SkipGram(n_words, DIMENSION, seed)
    descend.fit(
        model, "bce_with_logits", (pairs, labels), optimizer="adam", lr=0.02,
        batch_size=1024, epochs=epochs, schedule="cosine", progress=False, seed=seed,
    )  # fmt: skip
    return model.words.detach().numpy()


def ppmi_svd(seen: np.ndarray, n_words: int, dimension: int) -> np.ndarray:
    """Rows of U sqrt(S) from the truncated SVD of max(PMI, 0) over the seen pairs."""
    counts = np.zeros((n_words, n_words))
    np.add.at(counts, (seen[:, 0], seen[:, 1]), 1.0)
    expected = counts.sum(1, keepdims=True) * counts.sum(0, keepdims=True) / counts.sum()
    with np.errstate(divide="ignore"):
        ppmi = np.maximum(np.log(counts / expected), 0.0)
    U, S, _ = np.linalg.svd(ppmi)
    return U[:, :dimension] * np.sqrt(S[:dimension])


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def topic_purity(vectors: np.ndarray, topics: int, base_words: int) -> float:
    """Mean share, over the content words, of their NEIGHBOURS nearest content words
    (cosine) that belong to their topic."""
    n_content = 2 * topics * base_words
    unit = unit_rows(vectors[:n_content])
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    nearest = np.argsort(-similarity, axis=1)[:, :NEIGHBOURS]
    topic_of = np.arange(n_content) // (2 * base_words)
    return float(np.mean(topic_of[nearest] == topic_of[:, None]))


def analogy_accuracy(vectors: np.ndarray, topics: int, base_words: int) -> float:
    """Share of "a : as :: b : ?" answered by a plural of b's topic, over base words a, b
    of different topics (a topic's words share their contexts, so bs and b2s are the
    same answer as far as the corpus can tell)."""
    unit = unit_rows(vectors)
    singular = 2 * np.arange(topics * base_words)
    a, b = np.meshgrid(singular, singular, indexing="ij")
    other_topic = a // (2 * base_words) != b // (2 * base_words)
    a, b = a[other_topic], b[other_topic]
    scores = (unit[a + 1] - unit[a] + unit[b]) @ unit.T
    rows = np.arange(len(a))
    for excluded in (a, a + 1, b):
        scores[rows, excluded] = -np.inf
    answer = scores.argmax(axis=1)
    same_topic = answer // (2 * base_words) == b // (2 * base_words)
    return float(np.mean(same_topic & (answer % 2 == 1)))


def plot(path: str, vectors: np.ndarray, topics: int, base_words: int) -> None:
    """The content words' vectors projected on their first two principal axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    content = unit_rows(vectors[: 2 * topics * base_words])
    centered = content - content.mean(axis=0)
    _, _, axes = np.linalg.svd(centered, full_matrices=False)
    xy = centered @ axes[:2].T
    topic_of = np.arange(len(content)) // (2 * base_words)
    plural = np.arange(len(content)) % 2 == 1
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for marker, chosen in (("o", ~plural), ("^", plural)):
        ax.scatter(xy[chosen, 0], xy[chosen, 1], c=topic_of[chosen], cmap="tab10",
                   vmin=0, vmax=9, marker=marker, s=22)  # fmt: skip
    ax.set(title="skip-gram vectors: colour = topic, triangle = plural",
           xlabel="first principal axis", ylabel="second principal axis")  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    """Train and judge both embeddings; returns {method: {"purity", "analogy"}}."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small corpus (seconds)")
    parser.add_argument("--plot", metavar="PATH", help="save the vectors' 2-D projection")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    size = QUICK if args.quick else FULL
    topics, base_words = size["topics"], size["base_words"]
    words = vocabulary(topics, base_words)
    corpus = topic_corpus(topics, base_words, size["sentences"], args.seed)
    pairs, labels, seen = skipgram_pairs(corpus, len(words), args.seed)
    print(f"{corpus.size} tokens, {len(words)} words ({topics} topics); {len(seen)} "
          f"seen pairs, {len(labels) - len(seen)} negatives")  # fmt: skip
    embeddings = {
        "skip-gram (descend.fit)": lambda: train_skipgram(
            pairs, labels, len(words), size["epochs"], args.seed
        ),
        "PPMI + SVD (NumPy)": lambda: ppmi_svd(seen, len(words), DIMENSION),
    }
    print(f"{'embedding':<26}{'topic purity':>14}{'analogies':>12}{'seconds':>10}")
    figures, vectors = {}, {}
    for name, build in embeddings.items():
        start = time.perf_counter()
        vectors[name] = build()
        seconds = time.perf_counter() - start
        figures[name] = {
            "purity": topic_purity(vectors[name], topics, base_words),
            "analogy": analogy_accuracy(vectors[name], topics, base_words),
        }
        print(f"{name:<26}{figures[name]['purity']:>14.3f}"
              f"{figures[name]['analogy']:>12.3f}{seconds:>10.1f}")  # fmt: skip
    # chance: a random word is of the answer's topic and plural: B of the V - 3 candidates
    print(f"{'chance':<26}{1 / topics:>14.3f}{base_words / (len(words) - 3):>12.3f}")
    if args.plot:
        plot(args.plot, vectors["skip-gram (descend.fit)"], topics, base_words)
    return figures


if __name__ == "__main__":
    main()
