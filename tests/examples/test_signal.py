"""The signal-processing gallery script in quick mode: LMS written as ``descend.optim.SGD``
on the per-sample loss is the textbook recursion, LMS and NLMS settle at the Wiener filter
within what theory predicts, and the step-size bound separates convergence from
divergence."""

from __future__ import annotations


def test_quick_mode_cancels_the_noise_at_the_wiener_filter(example, capsys):
    figures = example("signal/noise_cancellation.py").main(["--quick"])

    # descend's SGD step on e^2 / 2 and w <- w + mu e x agree to rounding
    assert figures["lms_textbook_gap"] < 1e-12
    # the offline Wiener filter from the sample covariance is near the closed form
    assert figures["sample_wiener_distance"] < 0.05 * figures["wiener_norm"]
    # both adaptive filters settle within 2x the RMS weight error that theory predicts
    # (LMS: sqrt(mu J_min M / 2)), a small fraction of ||w*||
    for rule in ("lms", "nlms"):
        assert figures[f"{rule}_distance"] < 2 * figures[f"{rule}_predicted_distance"]
        assert figures[f"{rule}_distance"] < 0.1 * figures["wiener_norm"]
    # the noise is cancelled: the output's SNR rises by more than 10 dB
    assert figures["nlms_snr_db"] > figures["input_snr_db"] + 10
    # step sizes below the mean-square bound 2 / (3 tr R) move towards w* from w = 0;
    # one above 2 / lambda_max (2 x 2/tr(R) here) blows up
    for factor in (0.05, 0.2):
        assert figures[f"sweep_{factor}"] < 0.5 * figures["wiener_norm"]
    assert figures["sweep_2.0"] > 1e3 * figures["wiener_norm"]
    assert max(len(line) for line in capsys.readouterr().out.splitlines()) <= 80
