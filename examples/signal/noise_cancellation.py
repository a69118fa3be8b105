"""Signal processing: adaptive noise cancellation by LMS and normalized LMS, each a
per-sample gradient step of ``descend.optim.SGD``, converging to the Wiener filter.

A primary sensor hears a signal buried in noise, d(n) = s(n) + (h * v)(n): the noise
source v reaches it through an unknown FIR path h. A reference sensor hears the source
alone, x(n) = v(n). An adaptive FIR filter w of M taps on x_n = [x(n), ..., x(n-M+1)]
predicts the noise in d; its error e(n) = d(n) - w^T x_n is the cleaned signal.

Minimizing the mean squared error E[e^2] gives the Wiener filter w* = R^{-1} p, with
R = E[x_n x_n^T] (Toeplitz, from the source's autocorrelation) and p = E[x_n d(n)] = R h
when s and v are independent, so w* = h. The source here is AR(1),
v(n) = a v(n-1) + u(n), with autocorrelation r(k) = sigma_u^2 a^|k| / (1 - a^2): R is
known in closed form, and ``numpy.linalg.solve`` gives w* from it (and from the sample
covariance, what a practitioner would compute offline).

LMS (Widrow & Hoff 1960) is stochastic gradient descent on the per-sample loss
e(n)^2 / 2, whose gradient is -e(n) x_n:

    w <- w + mu e(n) x_n                                  (LMS)
    w <- w + mu e(n) x_n / (eps + ||x_n||^2)              (normalized LMS)

so ``descend.optim.SGD([w], lr=mu)`` stepping on that loss IS LMS, and NLMS is the same
step with lr = mu / (eps + ||x_n||^2) set before each step. The mean weight error obeys
E[w~_{n+1}] = (I - mu R) E[w~_n]: LMS converges in the mean iff 0 < mu < 2 / lambda_max(R).
The weights' spread needs more: for Gaussian input the mean square converges for
mu < 2 / (3 tr(R)) and not beyond 2 / tr(R) (Feuer & Weinstein 1985); tr(R), the input
power times M, needs no eigendecomposition. NLMS is stable for 0 < mu < 2 whatever the
input power.

Run: python examples/signal/noise_cancellation.py [--quick] [--plot anc.png]
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np
import torch

import descend

#: full mode and quick mode: samples, and samples for each run of the step-size sweep
FULL = {"samples": 20_000, "sweep_samples": 3_000}
QUICK = {"samples": 4_000, "sweep_samples": 500}
TAPS = 8
AR_COEFFICIENT = 0.8  # v(n) = a v(n-1) + u(n): a correlated source, eigenvalue spread 42
NOISE_PATH = np.array([0.9, -0.5, 0.35, 0.2, -0.15, 0.1, -0.05, 0.02])  # h, unknown to w
LMS_STEP_FRACTION_OF_TRACE_BOUND = 0.1  # mu = 0.1 * 2 / tr(R)
NLMS_STEP = 0.2
NLMS_EPS = 1e-6
#: the sweep's step sizes, as multiples of the conservative bound 2 / tr(R); with the
#: eigenvalue spread here 2 / lambda_max(R) is 1.64 of it, so 2.0 is above every bound
SWEEP = (0.05, 0.2, 0.5, 1.0, 2.0)
DIVERGED = 1e6  # ||w|| past this ends a run


@dataclass
class Scene:
    """The synthetic recording: clean signal s, reference x = v, primary d = s + h * v."""

    signal: np.ndarray
    reference: np.ndarray
    primary: np.ndarray


def make_scene(samples: int, seed: int = 0) -> Scene:
    """Two sinusoids under AR(1) noise that reaches the primary sensor through h."""
    rng = np.random.default_rng(seed)
    n = np.arange(samples)
    signal = 0.5 * np.sin(2 * np.pi * 0.01 * n) + 0.3 * np.sin(2 * np.pi * 0.037 * n + 1.0)
    innovations = rng.standard_normal(samples)
    source = np.empty(samples)
    previous = innovations[0] / np.sqrt(1 - AR_COEFFICIENT**2)  # start in the stationary law
    for k in range(samples):
        previous = AR_COEFFICIENT * previous + innovations[k] if k else previous
        source[k] = previous
    primary = signal + np.convolve(source, NOISE_PATH)[:samples]
    return Scene(signal, source, primary)


def tap_vectors(x: np.ndarray, taps: int = TAPS) -> np.ndarray:
    """Rows x_n = [x(n), x(n-1), ..., x(n-taps+1)], zeros before the start."""
    padded = np.concatenate([np.zeros(taps - 1), x])
    return np.lib.stride_tricks.sliding_window_view(padded, taps)[:, ::-1].copy()


def autocorrelation_matrix(taps: int = TAPS) -> np.ndarray:
    """R_ij = r(i - j) = a^|i-j| / (1 - a^2) for unit-variance innovations."""
    lags = np.abs(np.subtract.outer(np.arange(taps), np.arange(taps)))
    return AR_COEFFICIENT**lags / (1 - AR_COEFFICIENT**2)


def wiener_from_statistics(taps: int = TAPS) -> np.ndarray:
    """w* = R^{-1} p with p = R h (s independent of v): the known statistics."""
    R = autocorrelation_matrix(taps)
    return np.linalg.solve(R, R @ NOISE_PATH[:taps])


def wiener_from_samples(X: np.ndarray, d: np.ndarray) -> np.ndarray:
    """w = R_hat^{-1} p_hat from the sample covariance: the offline, batch answer."""
    return np.linalg.solve(X.T @ X, X.T @ d)


def lms_with_descend(X: np.ndarray, d: np.ndarray, mu: float, *, normalized: bool = False):
    """LMS (or NLMS) as ``descend.optim.SGD`` on the per-sample loss e(n)^2 / 2.

    Returns the weights after every sample (n, taps) and the errors e(n), the cleaned
    signal; stops early once ||w|| passes ``DIVERGED`` (the rows after stay NaN).
    """
    X_t, d_t = torch.as_tensor(X), torch.as_tensor(d)
    w = torch.zeros(X.shape[1], dtype=torch.float64, requires_grad=True)
    opt = descend.optim.SGD([w], lr=mu)
    weights = np.full(X.shape, np.nan)
    errors = np.full(len(d), np.nan)
    for n in range(len(d)):
        x = X_t[n]
        error = d_t[n] - w @ x
        if normalized:
            opt.param_groups[0]["lr"] = mu / (NLMS_EPS + float(x @ x))
        opt.zero_grad()
        (0.5 * error**2).backward()
        opt.step()
        weights[n] = w.detach().numpy()
        errors[n] = float(error.detach())
        if not np.linalg.norm(weights[n]) < DIVERGED:
            break
    return weights, errors


def lms_textbook(X: np.ndarray, d: np.ndarray, mu: float) -> np.ndarray:
    """The textbook recursion w <- w + mu (d(n) - w^T x_n) x_n in NumPy; the final w."""
    w = np.zeros(X.shape[1])
    for x, target in zip(X, d):
        w = w + mu * (target - w @ x) * x
    return w


def steady_state_distance(mu: float, signal_power: float, taps: int = TAPS) -> float:
    """The RMS weight error LMS settles to, sqrt(mu J_min M / 2) for small mu (Widrow's
    independence theory), with J_min = E[s^2] the Wiener filter's error power."""
    return float(np.sqrt(mu * signal_power * taps / 2))


def nlms_steady_state_distance(mu: float, signal_power: float, X: np.ndarray) -> float:
    """NLMS's, sqrt(mu / (2 - mu) J_min M E[1 / ||x||^2]): LMS's with the step
    mu / ||x_n||^2 averaged, E[1 / ||x||^2] (>= 1 / tr(R)) taken over the samples."""
    inverse_power = float(np.mean(1 / (NLMS_EPS + np.sum(X**2, axis=1))))
    return float(np.sqrt(mu / (2 - mu) * signal_power * X.shape[1] * inverse_power))


def snr_db(clean: np.ndarray, estimate: np.ndarray) -> float:
    """10 log10( power of s / power of (estimate - s) )."""
    return float(10 * np.log10(np.mean(clean**2) / np.mean((estimate - clean) ** 2)))


def plot(path: str, scene: Scene, runs: dict, w_star: np.ndarray, sweep: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    window = slice(len(scene.signal) - 400, len(scene.signal))
    axes[0].plot(scene.primary[window], color="0.75", lw=0.8, label="primary d = s + noise")
    axes[0].plot(runs["NLMS"][1][window], lw=1, label="NLMS output e")
    axes[0].plot(scene.signal[window], "k--", lw=1, label="clean s")
    axes[0].set(title="last 400 samples", xlabel="sample")
    for name, (weights, _) in runs.items():
        axes[1].semilogy(np.linalg.norm(weights - w_star, axis=1), label=name)
    axes[1].set(title="distance to the Wiener filter", xlabel="sample", ylabel="||w - w*||")
    for factor, distance in sweep.items():
        axes[2].semilogy(distance, label=f"mu = {factor} x 2/tr(R)")
    axes[2].set(title="LMS step sizes around the bound", xlabel="sample", ylim=(1e-3, 1e6))
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Cancel the noise by LMS and NLMS, sweep the LMS step size, return the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples (seconds)")
    parser.add_argument("--plot", metavar="PATH", help="save signals and convergence (PNG)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    budget = QUICK if args.quick else FULL

    scene = make_scene(budget["samples"], args.seed)
    X, d = tap_vectors(scene.reference), scene.primary
    R = autocorrelation_matrix()
    eigenvalues = np.linalg.eigvalsh(R)
    mean_bound, trace_bound = 2 / eigenvalues[-1], 2 / np.trace(R)
    w_star = wiener_from_statistics()
    w_sample = wiener_from_samples(X, d)
    mu = LMS_STEP_FRACTION_OF_TRACE_BOUND * trace_bound

    runs = {
        "LMS": lms_with_descend(X, d, mu),
        "NLMS": lms_with_descend(X, d, NLMS_STEP, normalized=True),
    }
    textbook_gap = float(np.max(np.abs(runs["LMS"][0][-1] - lms_textbook(X, d, mu))))
    # the last quarter: past the transient (slowest mode (1 - mu lambda_min)^n < 1e-3)
    tail = slice(len(d) - len(d) // 4, None)
    print(f"R: {TAPS} taps of an AR(1) source, a = {AR_COEFFICIENT}; eigenvalues "
          f"{eigenvalues[0]:.3f} .. {eigenvalues[-1]:.2f}")  # fmt: skip
    print(f"LMS bounds: 2/lambda_max = {mean_bound:.4f} (in the mean); mean square: "
          f"2/tr(R) = {trace_bound:.4f},\n  2/(3 tr R) = {trace_bound / 3:.4f} "
          "(sufficient for Gaussian input)")  # fmt: skip
    print(f"LMS mu = {mu:.4f}, NLMS mu = {NLMS_STEP} (LMS with mu / ||x_n||^2)")
    signal_power = float(np.mean(scene.signal**2))
    predicted = {
        "LMS": steady_state_distance(mu, signal_power),
        "NLMS": nlms_steady_state_distance(NLMS_STEP, signal_power, X[TAPS:]),
    }
    print(f"\nlast {len(d) // 4} of {len(d)} samples: RMS of ||w - w*||, output SNR")
    print(f"{'filter':<26}{'||w - w*||':>12}{'theory':>14}{'SNR out (dB)':>14}")
    print(f"{'none (primary as heard)':<26}{'':>26}{snr_db(scene.signal, d):>14.1f}")
    distances = {}
    for name, (weights, errors) in runs.items():
        distances[name] = float(np.sqrt(np.mean(np.sum((weights[tail] - w_star) ** 2, 1))))
        snr = snr_db(scene.signal[tail], errors[tail])
        print(f"{name + ' (descend SGD)':<26}{distances[name]:>12.4f}{predicted[name]:>14.4f}"
              f"{snr:>14.1f}")  # fmt: skip
    sample_distance = float(np.linalg.norm(w_sample - w_star))
    sample_snr = snr_db(scene.signal[tail], (d - X @ w_sample)[tail])
    print(f"{'Wiener, sample covariance':<26}{sample_distance:>12.4f}{'':>14}{sample_snr:>14.1f}")
    print(f"||w*|| = {np.linalg.norm(w_star):.3f}, w* = R^-1 p from the known statistics")
    print(f"descend's LMS vs the textbook recursion: max |w difference| = {textbook_gap:.1e}")

    sweep_scene = make_scene(budget["sweep_samples"], args.seed + 1)
    X_s, d_s = tap_vectors(sweep_scene.reference), sweep_scene.primary
    start = np.linalg.norm(w_star)  # w starts at 0
    print(f"\n{'LMS mu':<10}{'x 2/tr(R)':>12}{'x 2/lambda_max':>16}{'||w - w*|| at end':>19}"
          f"{'verdict':>12}")  # fmt: skip
    sweep, finals = {}, {}
    for factor in SWEEP:
        weights, _ = lms_with_descend(X_s, d_s, factor * trace_bound)
        distance = np.linalg.norm(weights - w_star, axis=1)
        sweep[factor] = distance
        finals[factor] = float(distance[~np.isnan(distance)][-1])
        verdict = "diverged" if finals[factor] > start else "converged"
        print(f"{factor * trace_bound:<10.4f}{factor:>12}{factor * trace_bound / mean_bound:>16.2f}"
              f"{finals[factor]:>19.3g}{verdict:>12}")  # fmt: skip
    if args.plot:
        plot(args.plot, scene, runs, w_star, sweep)
    return {
        "lms_distance": distances["LMS"],
        "nlms_distance": distances["NLMS"],
        "sample_wiener_distance": sample_distance,
        "lms_textbook_gap": textbook_gap,
        "input_snr_db": snr_db(scene.signal, d),
        "nlms_snr_db": snr_db(scene.signal[tail], runs["NLMS"][1][tail]),
        "lms_predicted_distance": predicted["LMS"],
        "nlms_predicted_distance": predicted["NLMS"],
        "wiener_norm": float(np.linalg.norm(w_star)),
        **{f"sweep_{factor}": final for factor, final in finals.items()},
    }


if __name__ == "__main__":
    main()
