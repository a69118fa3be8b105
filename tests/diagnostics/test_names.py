"""descend.diagnostics: the monitors (from descend.monitors), gradcheck and lr_range_test."""

import descend.diagnostics
import descend.monitors


def test_every_monitor_name_is_also_a_diagnostics_name():
    for name in descend.monitors.__all__:
        assert getattr(descend.diagnostics, name) is getattr(descend.monitors, name)
        assert name in descend.diagnostics.__all__
    for name in ("gradcheck", "GradcheckReport", "lr_range_test", "LRRangeResult"):
        assert name in descend.diagnostics.__all__
