"""Out-of-core training: logistic regression streamed from a Parquet file larger than memory
is meant to be, in bounded memory.

Generates a Parquet file of ``--rows`` rows (``--features`` float64 features and a 0/1
label drawn from a logistic model with known weights) into a temporary folder, chunk by
chunk, then trains one epoch over it with each engine, each in a fresh process so that its
peak resident memory is its own:

* ``descend``: ``descend.fit(nn.Linear(d, 1), "bce_with_logits", descend.train.stream(...),
  optimizer="adam", batch_size=4096, epochs=1)``, shuffling within a 131,072-row buffer
  (and the order of row groups);
* ``sklearn``: what a user would otherwise write: ``SGDClassifier(loss="log_loss")``
  ``.partial_fit`` on each 65,536-row record batch read with pyarrow (no shuffling);
* ``read``: only reading the record batches into NumPy: the I/O ceiling.

Each worker reports its throughput (rows per second of training wall time), its peak
resident memory (``VmHWM`` of ``/proc/self/status``, reset after imports where the
kernel allows, else ``resource.getrusage``), the resident memory after imports (torch,
pyarrow, and the parts of torch that ``torch.optim`` loads on first use), and the
accuracy on 50,000 held-out rows from the same model. The file is deleted afterwards.

Torch runs single-threaded by default here (``--threads``): on a small shared machine its
intra-op threads spin-wait for each other and a tiny model gets many times slower.

Run: ``python benchmarks/out_of_core.py`` (8.5 million rows, a 2.1 GB file; a few
minutes) or ``--rows 200000`` for a quick look. Goal: peak memory under 500 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

CHUNK_ROWS = 65_536
BUFFER_ROWS = 262_144  # rows generated per write
SHUFFLE_ROWS = 131_072  # rows descend shuffles together (16 MB of float32 at 31 features)
BATCH = 4096


def true_weights(features: int) -> np.ndarray:
    return np.random.default_rng(12345).normal(size=features) / np.sqrt(features) * 3


def draw(rng: np.random.Generator, rows: int, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    X = rng.normal(size=(rows, w.size))
    p = 1.0 / (1.0 + np.exp(-(X @ w + 0.25)))
    return X, (rng.random(rows) < p).astype(np.float64)


def generate(path: str, rows: int, features: int) -> None:
    """Write the file in 262,144-row slices (about 64 MB each) so generation stays small."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    w = true_weights(features)
    rng = np.random.default_rng(0)
    names = [f"x{i}" for i in range(features)]
    schema = pa.schema([(n, pa.float64()) for n in names] + [("y", pa.float64())])
    with pq.ParquetWriter(path, schema, compression="snappy") as writer:
        done = 0
        while done < rows:
            n = min(BUFFER_ROWS, rows - done)
            X, y = draw(rng, n, w)
            arrays = [pa.array(X[:, j]) for j in range(features)] + [pa.array(y)]
            writer.write_table(
                pa.Table.from_arrays(arrays, schema=schema), row_group_size=2 * CHUNK_ROWS
            )
            done += n


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        return True
    except OSError:
        return False


def _peak_mb(reset: bool) -> float:
    hwm = _status_kb("VmHWM") if reset else None
    if hwm is not None:
        return hwm / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(engine: str, path: str, features: int, threads: int) -> dict:
    import pyarrow.parquet as pq
    import torch

    import descend
    from descend.train import stream

    torch.set_num_threads(threads)
    # torch.optim imports more of torch on first use (~70 MB): count it as import, not data
    descend.optim.Adam([torch.zeros(1, requires_grad=True)])
    held_X, held_y = draw(np.random.default_rng(99), 50_000, true_weights(features))
    names = [f"x{i}" for i in range(features)]
    rows = pq.ParquetFile(path).metadata.num_rows
    base = (_status_kb("VmRSS") or 0) / 1024
    reset = _reset_peak()
    start = time.perf_counter()
    if engine == "descend":
        torch.manual_seed(0)
        model = torch.nn.Linear(features, 1)
        res = descend.fit(
            model,
            "bce_with_logits",
            stream(path, "y", chunk_rows=CHUNK_ROWS, buffer_rows=SHUFFLE_ROWS),
            optimizer="adam",
            lr=0.01,
            batch_size=BATCH,
            epochs=1,
            seed=0,
            progress=False,
        )
        assert res.nit == -(-rows // BATCH), res
        with torch.no_grad():
            logits = model(torch.as_tensor(held_X, dtype=torch.float32)).squeeze(1).numpy()
        accuracy = float(((logits > 0) == (held_y > 0.5)).mean())
    elif engine == "sklearn":
        from sklearn.linear_model import SGDClassifier

        clf = SGDClassifier(loss="log_loss", random_state=0)
        for batch in pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20).iter_batches(
            batch_size=CHUNK_ROWS
        ):
            X = np.column_stack([batch.column(n).to_numpy() for n in names])
            clf.partial_fit(X, batch.column("y").to_numpy(), classes=[0.0, 1.0])
        accuracy = float(clf.score(held_X, held_y))
    else:
        total = 0.0
        for batch in pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20).iter_batches(
            batch_size=CHUNK_ROWS
        ):
            X = np.column_stack([batch.column(n).to_numpy() for n in names])
            total += float(X[0, 0])
        accuracy = float("nan")
    seconds = time.perf_counter() - start
    return {
        "engine": engine,
        "rows": rows,
        "seconds": seconds,
        "rows_per_s": rows / seconds,
        "peak_mb": _peak_mb(reset),
        "base_mb": base,
        "accuracy": accuracy,
        "peak_reset": reset,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=8_500_000, help="rows to generate")
    parser.add_argument("--features", type=int, default=31)
    parser.add_argument("--engines", default="descend,sklearn,read")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads (1: no spin-waiting on a shared machine)",
    )
    parser.add_argument("--keep", default=None, help="reuse/keep the Parquet file at this path")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--path", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.path, args.features, args.threads)))
        return 0

    folder = None if args.keep else tempfile.mkdtemp(prefix="descend-ooc-")
    path = args.keep or os.path.join(folder, "train.parquet")
    try:
        if not os.path.exists(path):
            start = time.perf_counter()
            generate(path, args.rows, args.features)
            print(
                f"generated {args.rows:,} rows x {args.features + 1} columns: "
                f"{os.path.getsize(path) / 1e9:.2f} GB in {time.perf_counter() - start:.0f} s"
            )
        results = []
        for engine in args.engines.split(","):
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--worker",
                    engine,
                    "--path",
                    path,
                    "--features",
                    str(args.features),
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if out.returncode != 0:
                print(out.stderr[-3000:], file=sys.stderr)
                return 1
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(
            f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"python {platform.python_version()}; file {os.path.getsize(path) / 1e9:.2f} GB"
        )
        print(
            f"{'engine':<9}{'rows/s':>12}{'seconds':>9}{'peak MB':>9}{'after import':>14}"
            f"{'accuracy':>10}"
        )
        for r in results:
            print(
                f"{r['engine']:<9}{r['rows_per_s']:>12,.0f}{r['seconds']:>9.1f}"
                f"{r['peak_mb']:>9.0f}{r['base_mb']:>14.0f}{r['accuracy']:>10.4f}"
            )
        by = {r["engine"]: r for r in results}
        if "descend" in by and "sklearn" in by:
            ratio = by["descend"]["rows_per_s"] / by["sklearn"]["rows_per_s"]
            print(f"\nthroughput descend / sklearn partial_fit: {ratio:.2f}x")
        if "descend" in by:
            verdict = "under" if by["descend"]["peak_mb"] < 500 else "OVER"
            print(
                f"descend peak resident memory {by['descend']['peak_mb']:.0f} MB: "
                f"{verdict} the 500 MB goal"
            )
    finally:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
