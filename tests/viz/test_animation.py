"""The race as a GIF: few frames, small file, drawn from the histories."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.animation import FuncAnimation
from PIL import Image

from descend.problems import quadratic
from descend.viz import animate_race, frame_indices, race_animation


@pytest.mark.parametrize(("length", "frames"), [(1, 5), (7, 5), (10, 10), (5000, 40), (301, 2)])
def test_frame_indices_are_a_sorted_subsample_with_both_ends(length, frames) -> None:
    shown = frame_indices(length, frames)
    assert shown[0] == 0 and shown[-1] == length - 1
    assert np.all(np.diff(shown) > 0) and len(shown) <= max(frames, 2)
    if length >= 10 * frames and frames >= 5:
        # geometric: the first half of the frames covers a small part of the run
        assert shown[len(shown) // 2] < (length - 1) / 4
    elif length <= frames:
        np.testing.assert_array_equal(shown, np.arange(length))


def test_gif_has_subsampled_frames_and_stays_small(booth_runs, tmp_path) -> None:
    problem, runs = booth_runs
    target = tmp_path / "race.gif"
    fig = animate_race(problem, runs, target, frames=8, fps=5, dpi=40)
    with Image.open(target) as gif:
        assert gif.format == "GIF" and gif.is_animated
        assert gif.n_frames == len(frame_indices(41, 8))
        assert gif.size == (int(10.0 * 40), int(4.6 * 40))
        assert gif.info["duration"] == 200
        gif.seek(0)
        first = np.asarray(gif.convert("RGB"), dtype=np.int16)
        gif.seek(gif.n_frames - 1)
        last = np.asarray(gif.convert("RGB"), dtype=np.int16)
    assert np.abs(first - last).sum() > 0  # the paths grew
    assert target.stat().st_size < 300_000
    # the returned figure shows the last frame: every path drawn in full
    landscape = fig.axes[0]
    drawn = [line.get_xydata() for line in landscape.get_lines() if len(line.get_xydata()) > 1]
    for xs, result in zip(drawn, runs.values(), strict=True):
        np.testing.assert_array_equal(xs, result.history["x"])


@pytest.mark.filterwarnings("ignore:Animation was deleted without rendering")
def test_other_dimensions_animate_the_loss_only(tmp_path) -> None:
    import descend

    problem = quadratic(4, 10.0, seed=0)
    runs = {
        m: descend.minimize(problem, list(problem.start), m, max_iter=15) for m in ("gd", "adam")
    }
    animation = race_animation(problem, runs, frames=4)
    assert isinstance(animation, FuncAnimation)
    assert len(animation._fig.axes) == 1
    del animation  # never rendered: matplotlib warns here, as it should
    animate_race(problem, runs, tmp_path / "q.gif", frames=4, dpi=30)
    with Image.open(tmp_path / "q.gif") as gif:
        assert gif.n_frames == 4


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"path": "race.mp4"}, "path must end in .gif"),
        ({"frames": 1}, "frames must be an integer >= 2"),
        ({"fps": 0}, r"fps must be an integer in \[1, 50\]"),
        ({"dpi": 0}, "dpi must be an integer >= 1"),
    ],
)
def test_bad_arguments(booth_runs, kwargs, match) -> None:
    problem, runs = booth_runs
    with pytest.raises(ValueError, match=match):
        animate_race(problem, runs, **kwargs)
