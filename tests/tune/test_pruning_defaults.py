"""descend.tune's pruning defaults as behaviour, each against Optuna's own pruner called
directly on the same trials: the reports are the best value so far, the median pruner and
successive halving decide from half a trial's steps on, Hyperband spans the trial's steps,
and the last step is never pruned."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import optuna
import pytest
import torch
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial
from sklearn.datasets import load_digits

from descend.tune import PruningCallback, SearchSpace, named_pruner, tune_fit

optuna.logging.set_verbosity(optuna.logging.WARNING)

STEPS = 10
LR = FloatDistribution(1e-3, 1.0, log=True)


def study_with_finished_trials(pruner: optuna.pruners.BasePruner) -> optuna.Study:
    """Six complete trials whose loss falls from 1 to 0.1 over STEPS epochs, each having
    reached every successive-halving rung with it."""
    study = optuna.create_study(direction="minimize", pruner=pruner)
    curve = {step: 1.0 / step for step in range(1, STEPS + 1)}
    rungs = {f"completed_rung_{r}": 1.0 / STEPS for r in range(3)}
    for _ in range(6):
        study.add_trial(create_trial(
            params={"lr": 0.1}, distributions={"lr": LR}, value=curve[STEPS],
            intermediate_values=curve, system_attrs=rungs,
        ))  # fmt: skip
    return study


def first_pruned_step(study: optuna.Study, losses: list[float]) -> int | None:
    """Report ``losses`` (steps 1, 2, ...) for a new trial; the step it is first pruned at."""
    trial = study.ask({"lr": LR})
    for step, loss in enumerate(losses, start=1):
        trial.report(loss, step)
        if trial.should_prune():
            return step
    return None


def epoch(number: int, **logs: float) -> SimpleNamespace:
    return SimpleNamespace(epoch=number, logs=logs)


@pytest.mark.parametrize(
    ("direction", "monitor", "seen", "reported"),
    [
        ("minimize", "val_loss", [3.0, 1.0, 2.0, 0.5, 0.7], [3.0, 1.0, 1.0, 0.5, 0.5]),
        ("maximize", "val_accuracy", [0.2, 0.6, 0.4, 0.8, 0.7], [0.2, 0.6, 0.6, 0.8, 0.8]),
    ],
)
def test_the_callback_reports_the_best_value_so_far(direction, monitor, seen, reported):
    trial = optuna.create_study(direction=direction).ask()
    prune = PruningCallback(trial, monitor)
    prune.on_begin(None)
    for number, value in enumerate(seen, start=1):
        prune.on_epoch_end(epoch(number, **{monitor: value}))
    assert list(prune.values.values()) == reported
    frozen = trial.study.trials[0]
    assert [frozen.intermediate_values[s] for s in range(1, 6)] == reported


def test_median_decides_from_half_the_steps_where_optunas_default_decides_at_once():
    losses = [5.0] * STEPS  # far worse than every complete trial at every step
    default = first_pruned_step(study_with_finished_trials(optuna.pruners.MedianPruner()), losses)
    ours = named_pruner("median", last_step=STEPS)
    assert default == 1
    assert first_pruned_step(study_with_finished_trials(ours), losses) == STEPS // 2
    # the same rule, said to Optuna directly
    direct = optuna.pruners.MedianPruner(n_warmup_steps=STEPS // 2)
    assert first_pruned_step(study_with_finished_trials(direct), losses) == STEPS // 2


def test_halving_has_its_first_rung_at_half_the_steps():
    losses = [5.0] * STEPS
    default = optuna.pruners.SuccessiveHalvingPruner()
    assert first_pruned_step(study_with_finished_trials(default), losses) == 1
    ours = named_pruner("halving", last_step=STEPS)
    assert first_pruned_step(study_with_finished_trials(ours), losses) == STEPS // 2
    # a trial among the best third at the rung goes on
    assert first_pruned_step(study_with_finished_trials(ours), [0.01] * STEPS) is None


def test_hyperband_spans_the_trials_steps_as_optunas_with_those_resources():
    """Trial for trial, the same decisions as Optuna's HyperbandPruner(1, STEPS, 3)."""
    direct = optuna.pruners.HyperbandPruner(min_resource=1, max_resource=STEPS, reduction_factor=3)
    rng = np.random.default_rng(0)
    runs = [list(np.minimum.accumulate(rng.uniform(0.1, 2.0, STEPS))) for _ in range(12)]
    decisions = []
    for pruner in (named_pruner("hyperband", last_step=STEPS), direct):
        study = optuna.create_study(direction="minimize", pruner=pruner, study_name="same")
        decisions.append([first_pruned_step(study, losses) for losses in runs])
    assert decisions[0] == decisions[1]
    assert any(step is not None for step in decisions[0])


def test_the_last_step_is_reported_but_never_pruned():
    # this pruner prunes every trial from step 4 on
    pruner = optuna.pruners.ThresholdPruner(upper=0.0, n_warmup_steps=4)
    for last_step, pruned_at in ((None, 4), (4, None)):
        trial = optuna.create_study(pruner=pruner).ask()
        prune = PruningCallback(trial, "val_loss", last_step=last_step)
        prune.on_begin(None)
        stops = [prune.on_epoch_end(epoch(n, val_loss=1.0)) for n in range(1, 5)]
        assert trial.should_prune()  # what Optuna says at step 4 either way
        stopped_at = stops.index(True) + 1 if any(stops) else None
        assert stopped_at == pruned_at
        assert sorted(prune.values) == [1, 2, 3, 4]


def test_a_tuned_fit_prunes_no_trial_before_half_its_epochs():
    X, y = load_digits(return_X_y=True)
    data = torch.tensor(X[:300] / 16.0, dtype=torch.float32), torch.tensor(y[:300])
    space = SearchSpace({"adam": {"lr": FloatDistribution(1e-4, 1.0, log=True)}})
    found = tune_fit(
        lambda: torch.nn.Linear(64, 10), "cross_entropy", data, space=space, epochs=4,
        trials=10, pruner="median", seed=0, run_seed=0, batch_size=64,
    )  # fmt: skip
    for trial in found.study.trials:
        reports = [trial.intermediate_values[s] for s in sorted(trial.intermediate_values)]
        assert reports == sorted(reports, reverse=True)  # the best so far: monotone
        if trial.state == TrialState.PRUNED:
            assert trial.user_attrs["work"] >= 4 // 2
        else:
            assert trial.value == reports[-1]
