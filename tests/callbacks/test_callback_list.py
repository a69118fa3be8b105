"""CallbackList: a run's callbacks called as one (what the loop dispatches through)."""

import pytest

from descend import Status
from descend.callbacks import Callback, CallbackList, EarlyStopping, as_callbacks


class Result:
    def __init__(self, nit, fun=1.0):
        self.nit, self.fun = nit, fun


class Recorder(Callback):
    """Wants every ``every``-th step; stops at step ``stop_at``; keeps a counter as state."""

    def __init__(self, every=1, stop_at=None, raise_stop=False):
        self.every, self.stop_at, self.raise_stop = every, stop_at, raise_stop
        self.calls = []
        self.count = 0

    def bind(self, **run):
        self.calls.append(("bind", sorted(run)))

    def on_begin(self, result):
        self.calls.append(("begin", result.nit))

    def on_iteration(self, nit):
        return nit % self.every == 0

    def on_step(self, result):
        self.calls.append(("step", result.nit))
        self.count += 1
        if result.nit == self.stop_at:
            if self.raise_stop:
                raise StopIteration
            return True
        return None

    def on_end(self, result):
        self.calls.append(("end", result.nit))

    def state_dict(self):
        return {"count": self.count}

    def load_state_dict(self, state):
        self.count = state["count"]


def test_hooks_reach_every_callback_in_order_and_results_are_built_only_when_wanted():
    a, b = Recorder(every=1), Recorder(every=2)
    hooks = CallbackList([a, b])
    assert len(hooks) == 2 and list(hooks) == [a, b] and hooks
    hooks.bind(objective=None, optimizer=None)
    hooks.on_begin(Result(0))
    built = []

    def result(nit):
        built.append(nit)
        return Result(nit)

    for nit in (1, 2, 3):
        assert hooks.step(nit, lambda nit=nit: result(nit)) is False
    hooks.on_end(Result(3))
    assert a.calls == [
        ("bind", ["objective", "optimizer"]),
        ("begin", 0),
        ("step", 1),
        ("step", 2),
        ("step", 3),
        ("end", 3),
    ]
    assert [c for c in b.calls if c[0] == "step"] == [("step", 2)]
    assert built == [1, 2, 3]
    nobody = CallbackList([Recorder(every=10)])
    assert nobody.step(1, lambda: pytest.fail("no callback wanted step 1")) is False
    assert not CallbackList()


def test_a_stop_by_return_or_stop_iteration_names_who_stopped_and_the_status_asked_for():
    plain, raiser = Recorder(stop_at=2), Recorder(stop_at=3, raise_stop=True)
    hooks = CallbackList([plain, raiser])
    hooks.on_begin(Result(0))
    assert hooks.step(1, lambda: Result(1)) is False
    assert hooks.step(2, lambda: Result(2)) is True
    assert hooks.stopped_by == [plain] and hooks.stop_status() is None
    assert hooks.on_step(Result(3)) is True  # every callback, no on_iteration filter
    assert hooks.stopped_by == [plain, raiser]

    stopper = EarlyStopping(patience=1)
    hooks = CallbackList([Recorder(), stopper])
    hooks.on_begin(Result(0))
    assert hooks.on_step(Result(1, fun=1.0)) is False
    assert hooks.on_step(Result(2, fun=2.0)) is True
    assert hooks.stopped_by == [stopper]
    assert hooks.stop_status() is Status.EARLY_STOPPING == EarlyStopping.status
    assert hooks.stop_reasons() == [stopper.stop_reason]
    assert "EarlyStopping: loss did not improve" in stopper.stop_reason
    hooks.on_begin(Result(0))
    assert hooks.stopped_by == []


def test_state_round_trips_by_class_name_and_a_different_set_is_refused():
    a = Recorder()
    hooks = CallbackList(as_callbacks([a, lambda result: None]))
    hooks.on_begin(Result(0))
    hooks.step(1, lambda: Result(1))
    saved = hooks.state_dict()
    assert saved == [("Recorder", {"count": 1}), ("FunctionCallback", {})]
    fresh = Recorder()
    CallbackList(as_callbacks([fresh, lambda result: None])).load_state_dict(saved)
    assert fresh.count == 1
    with pytest.raises(ValueError, match="resume with the same callbacks"):
        CallbackList([Recorder()]).load_state_dict(saved)
