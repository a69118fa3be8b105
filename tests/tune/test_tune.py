"""descend.tune: real Optuna studies whose trials are descend.fit and minimize runs."""

from __future__ import annotations

import optuna
import pytest
import torch
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState
from sklearn.datasets import load_digits

from descend.train import fit
from descend.tune import PruningCallback, SearchSpace, default_space, tune_fit, tune_minimize

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    X, y = load_digits(return_X_y=True)
    return torch.tensor(X[:400] / 16.0, dtype=torch.float32), torch.tensor(y[:400])


def linear() -> torch.nn.Module:
    return torch.nn.Linear(64, 10)


SPACE = default_space(["adam", "momentum"], batch_sizes=(64, 128))


def study(digits, **kw):
    options = {"metric": "accuracy", "epochs": 4, "trials": 10, "space": SPACE, "seed": 3}
    options["pruner"] = "median"
    return tune_fit(linear, "cross_entropy", digits, **{**options, **kw})


@pytest.fixture(scope="module")
def found(digits):
    return study(digits)


def test_median_pruner_prunes_some_trials_and_saves_epochs(found):
    states = [t.state for t in found.study.trials]
    assert found.pruned >= 1 and found.complete >= 1
    assert states.count(TrialState.PRUNED) == found.pruned
    # a pruned trial stopped at the epoch of its last report; the study trained less than
    # its 10 x 4 epochs
    pruned = [t for t in found.study.trials if t.state == TrialState.PRUNED]
    assert all(t.user_attrs["work"] == max(t.intermediate_values) for t in pruned)
    assert found.work < 10 * 4
    # the trials' intermediate values are the per-epoch validation accuracies
    first = found.study.trials[0]
    assert sorted(first.intermediate_values) == [1, 2, 3, 4]
    assert found.best_value == max(found.study.best_trial.intermediate_values.values())


def test_the_value_is_maximized_accuracy_and_the_best_arguments_rerun_it(found):
    assert found.study.direction == optuna.study.StudyDirection.MAXIMIZE
    assert found.best_value > 0.8
    args = found.best_arguments
    assert args["optimizer"] in ("adam", "momentum") and args["batch_size"] in (64, 128)
    if args["optimizer"] == "adam":
        assert args["betas"] == (found.best_params["beta1"], found.best_params["beta2"])
    again = found.rerun()
    assert again.epoch == 4
    assert max(again.epoch_history["val_metric"]) == found.best_value


def test_same_seed_gives_the_same_trials_and_best_params(digits, found):
    second = study(digits)
    assert second.best_params == found.best_params
    assert second.best_value == found.best_value
    assert [t.value for t in second.study.trials] == [t.value for t in found.study.trials]
    assert [t.state for t in second.study.trials] == [t.state for t in found.study.trials]


def test_a_sqlite_study_stopped_midway_continues_from_its_trials(digits, tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    first = study(digits, trials=3, storage=storage, study_name="digits", pruner="none", epochs=2)
    kept = [(t.params, t.value) for t in first.study.trials]
    assert len(kept) == 3
    resumed = study(digits, trials=5, storage=storage, study_name="digits", pruner="none", epochs=2)
    trials = resumed.study.trials
    assert len(trials) == 5
    assert [(t.params, t.value) for t in trials[:3]] == kept
    # the study is in the file: loading it from there sees all five trials
    loaded = optuna.load_study(study_name="digits", storage=storage)
    assert [t.value for t in loaded.trials] == [t.value for t in trials]
    # a study already of its size runs nothing more
    again = study(digits, trials=5, storage=storage, study_name="digits", pruner="none")
    assert len(again.study.trials) == 5
    # the stored study maximizes accuracy; minimizing the loss in it is refused
    with pytest.raises(ValueError, match="maximize"):
        study(digits, trials=6, storage=storage, study_name="digits", monitor="val_loss")


def test_space_arguments_decode_betas_schedule_and_warmup():
    space = default_space("adamw", schedules=(None, "cosine"), warmup_steps=(1, 5))
    args = space.arguments(
        {"optimizer": "adamw", "lr": 1e-3, "beta1": 0.85, "beta2": 0.99,
         "weight_decay": 1e-4, "schedule": "cosine", "warmup_steps": 3}
    )  # fmt: skip
    assert args == {
        "optimizer": "adamw", "lr": 1e-3, "betas": (0.85, 0.99), "weight_decay": 1e-4,
        "schedule": {"name": "cosine", "warmup_steps": 3},
    }  # fmt: skip
    assert space.methods["adamw"]["lr"].log


def test_space_overrides_and_bad_names():
    space = default_space("gd", overrides={"lr": FloatDistribution(0.01, 0.1, log=True)})
    assert space.methods["gd"]["lr"].low == 0.01
    with pytest.raises(ValueError, match="unknown method"):
        default_space("nosuchmethod")
    with pytest.raises(ValueError, match="run parameter"):
        SearchSpace({"adam": {}}, {"momentum": CategoricalDistribution([0.9])})
    with pytest.raises(ValueError, match="pruner"):
        tune_minimize(lambda x: (x**2).sum(), [1.0], trials=1, pruner="mean")


def test_tune_minimize_finds_a_working_rate_on_a_quadratic():
    def bowl(x: torch.Tensor) -> torch.Tensor:
        return (torch.arange(1.0, 4.0) * x**2).sum()

    found = tune_minimize(
        bowl, [1.0, -1.0, 2.0], space=default_space("gd"), max_iter=100, every=20,
        trials=8, seed=0,
    )  # fmt: skip
    assert found.best_value < 1e-6
    # gd on this bowl is stable for lr < 2/6: the best rate is there
    assert found.best_params["lr"] < 1 / 3
    assert found.rerun().fun == found.best_value


def test_pruning_callback_stops_a_fit_the_trial_should_prune(digits):
    study = optuna.create_study(pruner=optuna.pruners.ThresholdPruner(upper=0.0))
    trial = study.ask()
    prune = PruningCallback(trial, "val_loss")
    result = fit(linear(), "cross_entropy", digits, validation=0.2, epochs=5, seed=0,
                 callbacks=[prune], progress=False, monitors=None)  # fmt: skip
    assert prune.pruned and result.epoch == 1 and result.status.value == "callback"
    assert list(study.trials[0].intermediate_values) == [1]


def test_run_seed_gives_every_trial_the_same_run(digits):
    """Common random numbers: with run_seed, trials of the same values score the same."""
    space = SearchSpace({"gd": {"lr": CategoricalDistribution([0.5])}})
    found = study(digits, space=space, trials=3, run_seed=7, pruner="none", epochs=2)
    assert {t.user_attrs["seed"] for t in found.study.trials} == {7}
    assert len({t.value for t in found.study.trials}) == 1


def test_a_single_choice_is_a_fixed_argument_not_a_search():
    space = default_space("adam", batch_sizes=(32,), schedules=(None,))
    assert space.run == {} and space.fixed == {"batch_size": 32}
    space = default_space("adam", batch_sizes=(32, "full"), schedules=("cosine",))
    assert set(space.run) == {"batch_size"} and space.fixed == {"schedule": "cosine"}
