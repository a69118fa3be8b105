"""Figures drawn from recorded runs; nothing here re-runs an optimizer.

Example:
    >>> from descend.viz import plot_race
    >>> plot_race(problem, {"adam": result}, "race.png")
"""

from descend.viz.race import plot_race

__all__ = ["plot_race"]
