"""The reinforcement-learning gallery script in quick mode: REINFORCE with a baseline on
``descend.optim.Adam`` finds the best bandit arm and learns CartPole well past the random
policy, on every seed."""

from __future__ import annotations


def test_quick_mode_learns_the_bandit_and_cartpole(example, capsys):
    figures = example("reinforcement/policy_gradient.py").main(["--quick"])

    # the bandit: regret far below the uniform policy's (linear in the steps), and the
    # learned softmax puts most of its mass on the best arm
    assert figures["bandit_regret"] < 0.35 * figures["bandit_uniform_regret"]
    assert figures["bandit_best_arm_probability_mean"] > 0.85
    # CartPole: the uniform random policy lasts ~22 steps; every seed ends well past it
    random_return = figures["cartpole_random_return"]
    assert 15 < random_return < 35
    assert figures["cartpole_final_return_worst_seed"] > 2 * random_return
    assert figures["cartpole_final_return_mean"] > 3 * random_return
    assert max(len(line) for line in capsys.readouterr().out.splitlines()) <= 80
