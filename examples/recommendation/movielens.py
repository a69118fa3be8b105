"""A reader for the MovieLens 100K ratings file (``u.data``), for users who have it.

The file (https://grouplens.org/datasets/movielens/100k/; not downloaded here) has one
rating a line, four tab-separated integers: ``user id``, ``item id``, ``rating`` (1-5),
``timestamp`` (seconds since 1970). The later MovieLens files (``ratings.dat``, ``::``
separated) hold the same four fields: pass ``separator="::"``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

FIELDS = ("user id", "item id", "rating", "timestamp")


def read_movielens(
    path: str | Path, separator: str = "\t"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read a MovieLens ratings file.

    Args:
        path: the file (``u.data``).
        separator: the field separator (``"\\t"`` for 100K, ``"::"`` for 1M and 10M).

    Returns:
        ``(pairs, ratings, timestamps)``: (n, 2) int64 (user id, item id) pairs as
        ``descend.estimators.MatrixFactorization`` takes them, (n,) float ratings, (n,)
        int64 timestamps.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: a line without four integer fields, naming the file and the line.

    Example:
        >>> pairs, ratings, _ = read_movielens("ml-100k/u.data")
        >>> MatrixFactorization(n_components=20).fit(pairs, ratings)
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path: no MovieLens ratings file at {str(path)!r}")
    rows = []
    with path.open(encoding="latin-1") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            fields = line.rstrip("\r\n").split(separator)
            try:
                if len(fields) != len(FIELDS):
                    raise ValueError
                rows.append([int(field) for field in fields])
            except ValueError:
                raise ValueError(
                    f"{path}, line {number}: {line.strip()!r} is not four integers "
                    f"({', '.join(FIELDS)}) separated by {separator!r}"
                ) from None
    if not rows:
        raise ValueError(f"{path} holds no ratings")
    table = np.asarray(rows, dtype=np.int64)
    return table[:, :2], table[:, 2].astype(float), table[:, 3]
