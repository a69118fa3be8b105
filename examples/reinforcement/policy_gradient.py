"""Reinforcement learning: REINFORCE with a baseline, stepped by ``descend.optim.Adam``, on
a multi-armed bandit and on CartPole.

The policy gradient theorem (Williams 1992) turns "maximize the expected return" into a
gradient a sampler can estimate:

    grad_theta J = E[ sum_t grad_theta log pi_theta(a_t | s_t) (G_t - b_t) ],

where G_t is the (discounted) return from step t on and b_t a baseline that does not
depend on the action: it leaves the expectation unchanged and shrinks the variance. The
loss handed to the optimizer is the negative of the bracket, so a descent step on it is
an ascent step on J.

* Bandit: K Gaussian arms (unit noise, means a seeded shuffle of evenly spaced values),
  a softmax policy over K logits, the baseline a running mean of the rewards. Regret is
  sum_t (mu* - mu_{a_t}) against the known best arm. Compared with UCB1 (Auer et al.
  2002), the algorithm a practitioner would reach for, and with REINFORCE without a
  baseline; every seed runs as one row of a batch.
* CartPole (gymnasium's ``CartPole-v1``, the numpy-vectorized environment): a 4-32-2 tanh
  network, a batch of episodes per update, returns-to-go with gamma = 0.99, the baseline
  the batch mean of the returns-to-go at the same time step. Compared with the uniform
  random policy, and (full mode) with the same loop on ``torch.optim.Adam``.

Run: python examples/reinforcement/policy_gradient.py [--quick] [--plot rl.png]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
from torch import nn

import descend
import descend.init

#: full mode: bandit steps and seeds, CartPole updates, episodes per update and seeds
FULL = {"bandit_steps": 4000, "bandit_seeds": 20, "updates": 120, "episodes": 16, "seeds": 5}
QUICK = {"bandit_steps": 2000, "bandit_seeds": 8, "updates": 18, "episodes": 16, "seeds": 3}
ARMS = 10
BANDIT_LR = 0.02
CARTPOLE_LR = 0.01
GAMMA = 0.99


# ----------------------------------------------------------------------------- bandit


@dataclass
class BanditRun:
    """One bandit algorithm over a batch of seeds: the mean cumulative regret after each
    step, and each seed's final probability of playing the best arm."""

    regret: np.ndarray
    best_arm_probability: np.ndarray


def bandit_means(seeds: int, arms: int = ARMS) -> torch.Tensor:
    """(seeds, arms) arm means: a per-seed shuffle of evenly spaced values in [0, 1.8]
    (gap 0.2 between neighbouring arms, against unit reward noise)."""
    g = torch.Generator().manual_seed(1234)
    values = torch.linspace(0.0, 0.2 * (arms - 1), arms, dtype=torch.float64)
    return torch.stack([values[torch.randperm(arms, generator=g)] for _ in range(seeds)])


def reinforce_bandit(
    means: torch.Tensor, steps: int, *, baseline: bool = True, seed: int = 0
) -> BanditRun:
    """REINFORCE on a softmax policy over the arms, every seed a row; the loss
    -(r - b) log pi(a) summed over rows (the rows share no parameter), stepped by
    ``descend.optim.Adam``; b is the running mean of the row's rewards (0 without)."""
    seeds, arms = means.shape
    g = torch.Generator().manual_seed(seed)
    rows = torch.arange(seeds)
    logits = torch.zeros(seeds, arms, dtype=torch.float64, requires_grad=True)
    opt = descend.optim.Adam([logits], lr=BANDIT_LR)
    mean_reward = torch.zeros(seeds, dtype=torch.float64)
    gaps = means.max(dim=1, keepdim=True).values - means
    regret = torch.empty(steps, dtype=torch.float64)
    total = torch.zeros((), dtype=torch.float64)
    for t in range(steps):
        log_pi = torch.log_softmax(logits, dim=1)
        action = torch.multinomial(log_pi.detach().exp(), 1, generator=g).squeeze(1)
        reward = means[rows, action] + torch.randn(seeds, generator=g, dtype=torch.float64)
        b = mean_reward if baseline else torch.zeros_like(mean_reward)
        loss = -((reward - b) * log_pi[rows, action]).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        mean_reward += (reward - mean_reward) / (t + 1)
        total += gaps[rows, action].mean()
        regret[t] = total
    best = means.argmax(dim=1)
    with torch.no_grad():
        p_best = torch.softmax(logits, dim=1)[rows, best]
    return BanditRun(regret.numpy(), p_best.numpy())


def ucb1(means: torch.Tensor, steps: int, *, seed: int = 0) -> BanditRun:
    """UCB1: play each arm once, then the arm maximizing mean_hat + sqrt(2 ln t / n); its
    "probability" of the best arm is the share of the last 10% of plays on it."""
    seeds, arms = means.shape
    g = torch.Generator().manual_seed(seed)
    rows = torch.arange(seeds)
    counts = torch.zeros(seeds, arms, dtype=torch.float64)
    sums = torch.zeros(seeds, arms, dtype=torch.float64)
    gaps = means.max(dim=1, keepdim=True).values - means
    best = means.argmax(dim=1)
    regret = torch.empty(steps, dtype=torch.float64)
    total = torch.zeros((), dtype=torch.float64)
    late_best = torch.zeros(seeds, dtype=torch.float64)
    for t in range(steps):
        if t < arms:
            action = torch.full((seeds,), t)
        else:
            index = sums / counts + torch.sqrt(2 * np.log(t) / counts)
            action = index.argmax(dim=1)
        reward = means[rows, action] + torch.randn(seeds, generator=g, dtype=torch.float64)
        counts[rows, action] += 1
        sums[rows, action] += reward
        total += gaps[rows, action].mean()
        regret[t] = total
        if t >= steps - steps // 10:
            late_best += (action == best).double()
    return BanditRun(regret.numpy(), (late_best / (steps // 10)).numpy())


# --------------------------------------------------------------------------- CartPole


def policy_network(seed: int) -> nn.Module:
    """Observation (4) -> 32 tanh units -> action logits (2), Xavier-initialized."""
    net = nn.Sequential(nn.Linear(4, 32), nn.Tanh(), nn.Linear(32, 2))
    return descend.init.initialize(net, "xavier", seed=seed)


def rollout(env, policy: nn.Module | None, seed: int, g: torch.Generator):
    """One episode in each of the vectorized environment's copies, all reset from ``seed``.

    Returns observations (T, N, 4), actions (T, N) and the alive mask (T, N): step t of
    copy n counts while the episode has not ended before it (CartPole pays 1 per step,
    so an episode's return is its mask's column sum). ``policy=None``: uniform actions.
    """
    obs, _ = env.reset(seed=seed)
    n = obs.shape[0]
    done = np.zeros(n, dtype=bool)
    observations, actions, alive = [], [], []
    while not done.all():
        x = torch.as_tensor(obs)
        if policy is None:
            a = torch.randint(0, 2, (n,), generator=g)
        else:
            with torch.no_grad():
                a = torch.multinomial(torch.softmax(policy(x), dim=1), 1, generator=g)[:, 0]
        observations.append(x)
        actions.append(a)
        alive.append(torch.as_tensor(~done))
        obs, _, terminated, truncated, _ = env.step(a.numpy())
        done |= terminated | truncated
    return torch.stack(observations), torch.stack(actions), torch.stack(alive).float()


def returns_to_go(alive: torch.Tensor, gamma: float) -> torch.Tensor:
    """G_t = sum_{k >= t} gamma^(k-t) r_k with r_k = 1 while alive, by the backward
    recursion G_t = r_t + gamma G_{t+1}."""
    g = torch.zeros_like(alive)
    running = torch.zeros_like(alive[0])
    for t in range(alive.shape[0] - 1, -1, -1):
        running = alive[t] + gamma * running
        g[t] = running
    return g


def reinforce_loss(policy: nn.Module, observations, actions, alive) -> torch.Tensor:
    """-(1/N) sum_{t,n} log pi(a_tn | s_tn) A_tn over the alive steps, with the advantage
    A = G - b, b_t the mean of G_t over the episodes alive at t, A then scaled to unit
    standard deviation over the batch (a common step-size normalization)."""
    g = returns_to_go(alive, GAMMA)
    count = alive.sum(dim=1, keepdim=True).clamp(min=1)
    advantage = (g - (g * alive).sum(dim=1, keepdim=True) / count) * alive
    advantage = advantage / advantage[alive.bool()].std().clamp(min=1e-8)
    log_pi = torch.log_softmax(policy(observations), dim=-1)
    chosen = log_pi.gather(-1, actions.unsqueeze(-1)).squeeze(-1)
    return -(chosen * advantage).sum() / alive.shape[1]


def train_cartpole(
    seed: int, updates: int, episodes: int, optimizer: type[torch.optim.Optimizer]
) -> np.ndarray:
    """REINFORCE on CartPole; the mean return of each update's batch of episodes."""
    env = gym.make_vec("CartPole-v1", num_envs=episodes, vectorization_mode="vector_entry_point")
    policy = policy_network(seed)
    opt = optimizer(policy.parameters(), lr=CARTPOLE_LR)
    g = torch.Generator().manual_seed(seed)
    curve = np.empty(updates)
    for k in range(updates):
        observations, actions, alive = rollout(env, policy, seed * 100_000 + k, g)
        curve[k] = float(alive.sum(dim=0).mean())
        opt.zero_grad()
        reinforce_loss(policy, observations, actions, alive).backward()
        opt.step()
    env.close()
    return curve


def random_policy_return(episodes: int, seed: int) -> float:
    """The uniform random policy's mean return over ``episodes`` episodes."""
    env = gym.make_vec("CartPole-v1", num_envs=episodes, vectorization_mode="vector_entry_point")
    _, _, alive = rollout(env, None, seed, torch.Generator().manual_seed(seed))
    env.close()
    return float(alive.sum(dim=0).mean())


# ------------------------------------------------------------------------------- main


def plot(path: str, bandit: dict[str, BanditRun], cartpole: dict[str, np.ndarray],
         random_return: float) -> None:  # fmt: skip
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    for name, run in bandit.items():
        left.plot(run.regret, label=name)
    left.set(xlabel="step", ylabel="cumulative regret (mean over seeds)",
             title=f"{ARMS}-armed Gaussian bandit")  # fmt: skip
    left.legend()
    for (name, curves), color in zip(cartpole.items(), ("C0", "C1")):
        for i, curve in enumerate(curves):
            right.plot(curve, color=color, alpha=0.35, lw=0.8)
            if i == 0:
                right.plot([], color=color, label=f"{name} (each seed)")
        right.plot(curves.mean(axis=0), color=color, lw=2)
    right.axhline(random_return, color="gray", ls="--", label="random policy")
    right.set(xlabel="update", ylabel="mean episode return", title="CartPole-v1, REINFORCE")
    right.legend()
    for ax in (left, right):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Run both tasks, print the tables, return the quality figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs (seconds)")
    parser.add_argument("--plot", metavar="PATH", help="save regret and learning curves (PNG)")
    args = parser.parse_args(argv)
    budget = QUICK if args.quick else FULL

    steps = budget["bandit_steps"]
    means = bandit_means(budget["bandit_seeds"])
    uniform_regret = float((means.max(dim=1).values - means.mean(dim=1)).mean()) * steps
    bandit = {
        "REINFORCE + baseline": reinforce_bandit(means, steps),
        "REINFORCE, no baseline": reinforce_bandit(means, steps, baseline=False),
        "UCB1": ucb1(means, steps),
    }
    print(f"Bandit: {ARMS} arms, {steps} steps, {budget['bandit_seeds']} seeds "
          f"(uniform policy's regret {uniform_regret:.0f})")  # fmt: skip
    print(f"{'algorithm':<26}{'regret':>10}{'P(best) mean':>14}{'P(best) min':>13}")
    for name, run in bandit.items():
        p = run.best_arm_probability
        print(f"{name:<26}{run.regret[-1]:>10.1f}{p.mean():>14.3f}{p.min():>13.3f}")

    optimizers = {"descend.optim.Adam": descend.optim.Adam}
    if not args.quick:
        optimizers["torch.optim.Adam"] = torch.optim.Adam
    seeds = range(budget["seeds"])
    random_return = random_policy_return(200, seed=999)
    cartpole, seconds = {}, {}
    for name, optimizer in optimizers.items():
        start = time.perf_counter()
        cartpole[name] = np.stack([
            train_cartpole(s, budget["updates"], budget["episodes"], optimizer) for s in seeds
        ])  # fmt: skip
        seconds[name] = time.perf_counter() - start
    tail = max(budget["updates"] // 10, 3)
    print(f"\nCartPole-v1: {budget['updates']} updates x {budget['episodes']} episodes, "
          f"{budget['seeds']} seeds; random policy's mean return {random_return:.1f}")  # fmt: skip
    print(f"{'optimizer':<22}{'first':>8}{f'last {tail} mean':>14}{'worst seed':>12}"
          f"{'seconds':>10}")  # fmt: skip
    finals = {}
    for name, curves in cartpole.items():
        per_seed = curves[:, -tail:].mean(axis=1)
        finals[name] = per_seed
        print(f"{name:<22}{curves[:, 0].mean():>8.1f}{per_seed.mean():>14.1f}"
              f"{per_seed.min():>12.1f}{seconds[name]:>10.1f}")  # fmt: skip
    if args.plot:
        plot(args.plot, bandit, cartpole, random_return)
    best = bandit["REINFORCE + baseline"]
    return {
        "bandit_regret": float(best.regret[-1]),
        "bandit_uniform_regret": uniform_regret,
        "bandit_ucb1_regret": float(bandit["UCB1"].regret[-1]),
        "bandit_best_arm_probability_mean": float(best.best_arm_probability.mean()),
        "cartpole_random_return": random_return,
        "cartpole_final_return_mean": float(finals["descend.optim.Adam"].mean()),
        "cartpole_final_return_worst_seed": float(finals["descend.optim.Adam"].min()),
    }


if __name__ == "__main__":
    main()
