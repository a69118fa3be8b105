"""Figures drawn from recorded runs; nothing here re-runs an optimizer.

Every function returns the matplotlib ``Figure`` (never attached to pyplot, so no window
opens) and saves it when given ``path=``.

* :func:`plot_loss`: loss curves of several runs, log scale, validation when recorded.
* :func:`plot_contour`, :func:`plot_surface`: a 2-D problem's landscape with paths.
* :func:`plot_race`: landscape and loss curves side by side.
* :func:`animate_race`: the race as an animated GIF (:func:`race_animation` for notebooks).
* :func:`plot_lr_range`: the learning-rate range test.
* :func:`plot_layer_gradients`: per-layer gradient norms over time, as a heatmap
  (recorded by :class:`LayerGradientRecorder`).
* :func:`compare_grid`, :func:`plot_grid`: methods x learning rates.

Example:
    >>> from descend.viz import plot_loss, plot_race
    >>> runs = {m: descend.minimize(rosenbrock, [-1.2, 1.0], m, max_iter=200, record=True)
    ...         for m in ("gd", "adam")}
    >>> plot_race(rosenbrock, runs, "race.png")  # doctest: +ELLIPSIS
    <Figure size ...>
    >>> plot_loss(runs, "loss.png")  # doctest: +ELLIPSIS
    <Figure size ...>
"""

from descend.extras import require

# matplotlib is checked before the modules that draw with it import it, so a missing one
# reads as one line naming the extra
require("matplotlib", "viz", feature="descend.viz")

from descend.viz.animation import animate_race, frame_indices, race_animation  # noqa: E402
from descend.viz.curves import plot_loss  # noqa: E402
from descend.viz.grid import compare_grid, plot_grid, run_grid  # noqa: E402
from descend.viz.landscape import plot_contour, plot_surface  # noqa: E402
from descend.viz.layers import LayerGradientRecorder, plot_layer_gradients  # noqa: E402
from descend.viz.lr_range import plot_lr_range  # noqa: E402
from descend.viz.race import plot_race  # noqa: E402

__all__ = [
    "LayerGradientRecorder",
    "animate_race",
    "compare_grid",
    "frame_indices",
    "plot_contour",
    "plot_grid",
    "plot_layer_gradients",
    "plot_loss",
    "plot_lr_range",
    "plot_race",
    "plot_surface",
    "race_animation",
    "run_grid",
]
