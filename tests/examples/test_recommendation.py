"""The recommendation gallery app: matrix factorization against least-squares theory on
ratings with a known truth, and the MovieLens u.data reader on a file the test writes."""

from __future__ import annotations

import numpy as np
import pytest


def test_quick_factorization_misses_held_out_ratings_by_what_least_squares_theory_allows(
    example, tmp_path, capsys
):
    figure = tmp_path / "mf.png"
    rmse = example("recommendation/matrix_factorization.py").main(
        ["--quick", "--plot", str(figure)]
    )
    assert rmse["noise floor"] == pytest.approx(0.3, rel=0.05)  # sigma, on 2400 ratings
    # converged least squares fits its p parameters to the noise of its own ratings,
    # leaving sigma sqrt(1 - p/n) (chi-square, n - p = 7100 dof: 1% std), and misses held-out
    # ratings by sigma sqrt(1 + p/(n - p)) (2400 ratings, the Gaussian-design idealization: 5%)
    assert rmse["descend MF, L-BFGS train"] == pytest.approx(rmse["train bound"], rel=0.03)
    assert rmse["descend MF, L-BFGS"] <= 1.05 * rmse["test bound"], rmse
    assert rmse["descend MF, Adam"] <= 1.05 * rmse["test bound"], rmse
    for baseline in ("ALS (NumPy)", "TruncatedSVD", "training mean"):
        assert rmse["descend MF, L-BFGS"] <= rmse[baseline] * 1.01, (baseline, rmse)
    table = capsys.readouterr().out
    assert max(len(line) for line in table.splitlines()) <= 80
    assert figure.stat().st_size > 0


def write_u_data(path, seed=0):
    """A MovieLens-100K-style file: ids from 1, integer ratings 1..5 of a low-rank truth."""
    rng = np.random.default_rng(seed)
    users, items = np.nonzero(rng.random((120, 80)) < 0.3)
    taste = rng.normal(size=(120, 2)) @ rng.normal(size=(2, 80))
    stars = np.clip(np.rint(3 + taste[users, items] + 0.3 * rng.normal(size=len(users))), 1, 5)
    stamps = rng.integers(874_724_710, 893_286_638, size=len(users))
    lines = [f"{u + 1}\t{i + 1}\t{int(r)}\t{t}" for u, i, r, t in zip(users, items, stars, stamps)]
    path.write_text("\n".join(lines) + "\n")
    return np.column_stack([users + 1, items + 1]), stars, stamps


def test_movielens_reader_returns_the_files_pairs_ratings_and_timestamps(example, tmp_path):
    reader = example("recommendation/movielens.py")
    path = tmp_path / "u.data"
    pairs, stars, stamps = write_u_data(path)
    read_pairs, read_ratings, read_stamps = reader.read_movielens(path)
    np.testing.assert_array_equal(read_pairs, pairs)
    np.testing.assert_array_equal(read_ratings, stars)
    np.testing.assert_array_equal(read_stamps, stamps)
    assert read_pairs.dtype == np.int64 and read_ratings.dtype == float

    (tmp_path / "ratings.dat").write_text("1::2::5::978300760\n")
    pairs, _, _ = reader.read_movielens(tmp_path / "ratings.dat", separator="::")
    assert pairs.tolist() == [[1, 2]]


def test_movielens_reader_names_the_file_and_line_it_cannot_read(example, tmp_path):
    reader = example("recommendation/movielens.py")
    bad = tmp_path / "u.data"
    bad.write_text("1\t2\t5\t881250949\n3\tfour\t3\t891717742\n")
    with pytest.raises(ValueError, match=r"u\.data, line 2: '3\\tfour\\t3\\t891717742'"):
        reader.read_movielens(bad)
    with pytest.raises(FileNotFoundError, match="path: no MovieLens ratings file"):
        reader.read_movielens(tmp_path / "missing.data")


def test_the_app_runs_on_a_movielens_file(example, tmp_path, capsys):
    path = tmp_path / "u.data"
    write_u_data(path, seed=1)
    rmse = example("recommendation/matrix_factorization.py").main(
        ["--quick", "--movielens", str(path)]
    )
    assert "noise floor" not in rmse  # no truth in a real file
    assert rmse["descend MF, L-BFGS"] < 0.8 * rmse["training mean"], rmse
    assert "held out" in capsys.readouterr().out


def test_a_bad_movielens_path_is_a_usage_error_not_a_stack_trace(example, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        example("recommendation/matrix_factorization.py").main(
            ["--movielens", str(tmp_path / "u.data")]
        )
    assert stop.value.code == 2
    assert "--movielens: path: no MovieLens ratings file at" in capsys.readouterr().err
