"""monitors_for_run: what a run's ``monitors=`` becomes (the default set built by a direct call)."""

from __future__ import annotations

import pytest
from torch import nn

from descend.callbacks import FunctionCallback
from descend.monitors import (
    FIT_MONITORS,
    MODEL_MONITORS,
    MONITORS,
    MonitorGroup,
    default_monitors,
    monitors_for_run,
)


def test_default_is_one_group_of_the_standard_monitors_and_the_fit_ones_with_a_model():
    for asked in ("default", True):
        (group,) = monitors_for_run(asked)
        assert isinstance(group, MonitorGroup)
        names = [type(m) for m in group.monitors]
        assert names == [
            cls for name, cls in MONITORS.items() if name not in MODEL_MONITORS + FIT_MONITORS
        ]
    (group,) = monitors_for_run("default", model=nn.Sequential(nn.Linear(2, 2), nn.ReLU()))
    assert [type(m) for m in group.monitors] == list(MONITORS.values())


def test_none_false_a_list_or_a_function_and_a_bad_word():
    assert monitors_for_run(None) == [] and monitors_for_run(False) == []
    chosen = default_monitors(off=["saddle"])
    assert monitors_for_run(chosen) == chosen
    (adapted,) = monitors_for_run(lambda result: None)
    assert isinstance(adapted, FunctionCallback)
    with pytest.raises(ValueError, match="monitors must be 'default', None or a list"):
        monitors_for_run("all")
