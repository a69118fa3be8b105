"""The engine: one descent loop (:class:`Engine`) driven by a feed, every stopping test,
status and message (:mod:`descend.engine.stopping`), and the function feed ``minimize``
builds (:func:`run_descent`)."""

from descend.engine.feed import Measure
from descend.engine.function_feed import FunctionFeed, run_descent
from descend.engine.loop import Engine, Feed
from descend.engine.stopping import Outcome, StoppingCriteria, Tracker, describe

__all__ = [
    "Engine",
    "Feed",
    "FunctionFeed",
    "Measure",
    "Outcome",
    "StoppingCriteria",
    "Tracker",
    "describe",
    "run_descent",
]
