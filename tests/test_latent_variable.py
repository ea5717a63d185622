"""The latent-variable predictor: its rate limits what u carries; planning scores sampled futures."""

import math
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from agents.cost import LatentCost, Uncertainty
from agents.energy import Energy, GoalDistance
from agents.mpc import MPCAgent
from agents.planners import CEM
from worldmodel.predictors import LatentVariablePredictor

NOISE = 0.05  # the toy world's per-step Gaussian noise (std), beside its two branches


def branching_world(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``z' = z + 0.1 a +- 0.5 e_x + noise``: a coin decides the branch, ``(z, a)`` cannot."""
    z = torch.rand(n, 2, generator=generator) * 2 - 1
    a = torch.rand(n, 2, generator=generator) * 2 - 1
    branch = torch.randint(0, 2, (n, 1), generator=generator).float() * 2 - 1
    step = 0.1 * a + 0.5 * branch * torch.tensor([1.0, 0.0]) + NOISE * torch.randn(n, 2, generator=generator)
    return z, a, z + step


def fit(rate_weight: float, steps: int = 1200) -> dict[str, float]:
    torch.manual_seed(0)
    predictor = LatentVariablePredictor(2, 2, 64, 2, code_dim=8, code="gaussian", rate_weight=rate_weight)
    optimizer = torch.optim.Adam(predictor.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(steps):
        z, a, z_next = branching_world(256, generator)
        u, rate, _ = predictor.posterior(z, a, z_next)
        loss = F.mse_loss(predictor(z, a, u), z_next) + rate_weight * rate.mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    z, a, z_next = branching_world(2000, torch.Generator().manual_seed(99))
    with torch.no_grad():
        u, rate, _ = predictor.posterior(z, a, z_next)
        futures = predictor.sample_prior((8, 2000), torch.Generator().manual_seed(1), torch.device("cpu"))
        errors = torch.stack([(predictor(z, a, u_k) - z_next).pow(2).mean(-1) for u_k in futures])
        return {"posterior": F.mse_loss(predictor(z, a, u), z_next).item(), "rate": rate.mean().item(),
                "best_of_8": errors.min(0).values.mean().item()}


def test_without_its_rate_u_carries_the_whole_future_and_with_it_only_the_branch() -> None:
    free, limited = fit(rate_weight=0.0), fit(rate_weight=0.1)
    noise_mse = NOISE**2
    # unlimited: given u the prediction is exact, noise and all (tens of nats per step) ...
    assert free["posterior"] < 0.3 * noise_mse and free["rate"] > 10.0
    # ... limited: about the coin's one bit (ln 2 = 0.69 nats), not the noise
    assert limited["rate"] < 2.0 and limited["posterior"] > 0.5 * noise_mse
    # sampled from the prior, only the limited u predicts: one of 8 futures lands on the right branch
    assert limited["best_of_8"] < 4 * noise_mse
    assert free["best_of_8"] > 3 * limited["best_of_8"]


def gated_world(n: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    """``z' = z + 0.1 a``, and where ``z_x > 0`` also ``+- 0.5 e_y`` by a coin: the world branches in
    half of the space only (a door drawn in one place), ``(z' - z - 0.1 a)_y`` says which branch."""
    z = torch.rand(n, 2, generator=generator) * 2 - 1
    a = torch.rand(n, 2, generator=generator) * 2 - 1
    coin = torch.randint(0, 2, (n, 1), generator=generator).float() * 2 - 1
    return z, a, z + 0.1 * a + 0.5 * (z[:, :1] > 0) * coin * torch.tensor([0.0, 1.0])


def gated_figures(**options: Any) -> dict[str, float]:
    """A 4-code predictor (rate weight 0, ``options`` as its keywords) trained 800 steps on the gated
    world, its loss the prediction's plus the prior's fit plus the effect's charge; then, on held-out
    transitions, the rate and the code's effect where the world is deterministic (``still``) and where
    it branches, how far 8 draws from the prior miss where it is deterministic (squared), and the
    share of draws on each branch where it branches."""
    torch.manual_seed(0)
    predictor = LatentVariablePredictor(2, 2, 64, 2, code_dim=4, code="discrete", rate_weight=0.0, **options)
    optimizer = torch.optim.Adam(predictor.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(800):
        z, a, z_next = gated_world(256, generator)
        u, _, fit = predictor.posterior(z, a, z_next)
        loss = F.mse_loss(predictor(z, a, u), z_next) + fit.mean()
        if predictor.effect_weight:
            loss = loss + predictor.effect_weight * predictor.effect(z, a).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    z, a, z_next = gated_world(2000, torch.Generator().manual_seed(9))
    gate = z[:, 0] > 0
    with torch.no_grad():
        _, rate, _ = predictor.posterior(z, a, z_next)
        draws = predictor.sample_prior((8, 2000), torch.Generator().manual_seed(1), torch.device("cpu"))
        predicted = torch.stack([predictor(z, a, predictor.draw(z, a, d)) for d in draws])  # (8, N, 2)
        effect = predictor.effect(z, a)
    shift = predicted[..., 1] - (z + 0.1 * a)[:, 1]  # the predicted branch, (8, N)
    return {"rate_still": rate[~gate].mean().item(), "rate_branch": rate[gate].mean().item(),
            "miss_still": (predicted - z_next).pow(2).sum(-1)[:, ~gate].mean().item(),
            "effect_still": effect[~gate].mean().item(), "effect_branch": effect[gate].mean().item(),
            "up": (shift[:, gate] > 0.25).float().mean().item(), "down": (shift[:, gate] < -0.25).float().mean().item()}


def test_a_learned_prior_spends_the_code_only_where_the_world_branches() -> None:
    """Both priors, rate weight 0 (only the 4 codes bound u). The fixed uniform prior's posterior spends
    ln 4 nats everywhere, so a uniform draw misses even where the world is deterministic. The learned
    prior p(u | z, a) fits the posterior: 0 nats where nothing is left open, ln 2 (the coin) where
    it branches, and its draws land on each branch about half the time and on the truth elsewhere;
    so too with the winner-takes-all inference (``nearest``) instead of an inference network."""
    fixed = gated_figures(prior="fixed")
    assert fixed["rate_still"] > 1.2 and fixed["miss_still"] > 0.03  # ln 4 = 1.39 nats spent on nothing
    for learned in (gated_figures(prior="learned"), gated_figures(prior="learned", inference="nearest")):
        assert learned["rate_still"] < 0.1 and learned["miss_still"] < 0.005
        assert abs(learned["rate_branch"] - math.log(2)) < 0.15
        assert 0.35 < learned["up"] < 0.65 and 0.35 < learned["down"] < 0.65 and learned["up"] + learned["down"] > 0.95


def test_a_code_charged_for_its_effect_is_spent_only_where_the_world_branches() -> None:
    """The gated world, a fixed uniform prior, rate weight 0. Free, the 4 codes become a gate over the
    space, so a uniform draw misses where the world is deterministic (about 0.06, squared). Charged for
    how far they move the prediction apart (effect weight 0.1), the codes agree where ``(z, a)``
    settles the future (a draw misses by less than a tenth of that, the effect falls below 0.005) and
    part only where it branches: a code for each branch (an effect near the branches' 0.0625)."""
    free, charged = gated_figures(), gated_figures(effect_weight=0.1)
    assert free["miss_still"] > 0.03 and free["effect_still"] > 0.01
    assert charged["miss_still"] < 0.1 * free["miss_still"] and charged["effect_still"] < 0.005
    assert charged["effect_branch"] > 0.03 and charged["up"] > 0.2 and charged["down"] > 0.2


def test_the_effect_is_the_spread_of_the_codes_predictions() -> None:
    """Known answer: a predictor whose output is ``z`` plus the code's index along x (codes 0..3): per
    dimension, the mean squared deviation from the mean index 1.5 is (2.25 + 0.25 + 0.25 + 2.25) / 4 / 2."""
    predictor = LatentVariablePredictor(2, 1, 8, 1, code_dim=4, code="discrete", rate_weight=0.0, effect_weight=1.0)
    linear = torch.nn.Linear(2 + 1 + 4, 2)
    with torch.no_grad():
        linear.weight.zero_()
        linear.bias.zero_()
        linear.weight[0, 3:] = torch.arange(4.0)
    predictor.net = linear
    effect = predictor.effect(torch.randn(5, 3, 2), torch.randn(5, 3, 1))
    assert effect.shape == (5, 3) and torch.allclose(effect, torch.full((5, 3), 0.625))
    with pytest.raises(ValueError, match="effect_weight >= 0"):
        LatentVariablePredictor(2, 1, 8, 1, code_dim=4, code="discrete", rate_weight=0.0, effect_weight=-1.0)


def test_rates_are_the_kl_to_the_prior() -> None:
    gaussian = LatentVariablePredictor(2, 1, 8, 1, code_dim=3, code="gaussian", rate_weight=1.0)
    torch.nn.init.zeros_(gaussian.inference[-1].weight)
    torch.nn.init.zeros_(gaussian.inference[-1].bias)  # posterior N(0, I): the prior itself
    _, rate, fit = gaussian.posterior(torch.randn(5, 2), torch.randn(5, 1), torch.randn(5, 2))
    assert torch.allclose(rate, torch.zeros(5), atol=1e-6) and torch.equal(fit, torch.zeros(5))  # a fixed prior fits nothing
    discrete = LatentVariablePredictor(2, 1, 8, 1, code_dim=4, code="discrete", rate_weight=1.0)
    torch.nn.init.zeros_(discrete.inference[-1].weight)
    with torch.no_grad():
        discrete.inference[-1].bias.copy_(torch.tensor([50.0, 0.0, 0.0, 0.0]))  # certain of code 0
    u, rate, fit = discrete.posterior(torch.randn(5, 2), torch.randn(5, 1), torch.randn(5, 2))
    assert torch.allclose(rate, torch.full((5,), math.log(4)), atol=1e-4)  # a certain code: log K nats, the most
    assert torch.equal(u.argmax(-1), torch.zeros(5, dtype=torch.long)) and torch.all(u.sum(-1) == 1)
    codes = discrete.sample_prior((1000,), torch.Generator().manual_seed(0), torch.device("cpu"))
    assert abs(codes.mean(0) - 0.25).max() < 0.05  # uniform prior
    with pytest.raises(ValueError, match="unknown code"):
        LatentVariablePredictor(2, 1, 8, 1, code_dim=4, code="vq", rate_weight=1.0)
    with pytest.raises(ValueError, match="unknown prior"):
        LatentVariablePredictor(2, 1, 8, 1, code_dim=4, code="discrete", rate_weight=1.0, prior="flat")
    with pytest.raises(ValueError, match="nearest: discrete code only"):
        LatentVariablePredictor(2, 1, 8, 1, code_dim=4, code="gaussian", rate_weight=1.0, inference="nearest")


def test_a_learned_priors_kl_and_draws_have_known_answers() -> None:
    """KL(q || p) against a learned prior, for a posterior and a prior both set by hand, in both codes;
    the rate and the fit are one number with the gradient on different sides; Gumbel-max draws
    follow the prior's probabilities."""
    discrete = LatentVariablePredictor(2, 1, 8, 1, code_dim=2, code="discrete", rate_weight=1.0, prior="learned")
    for net, bias in ((discrete.inference, [math.log(0.9), math.log(0.1)]), (discrete.prior_net, [0.0, 0.0])):
        torch.nn.init.zeros_(net[-1].weight)
        with torch.no_grad():
            net[-1].bias.copy_(torch.tensor(bias))
    _, rate, fit = discrete.posterior(torch.randn(5, 2), torch.randn(5, 1), torch.randn(5, 2))
    expected = 0.9 * math.log(0.9 / 0.5) + 0.1 * math.log(0.1 / 0.5)
    assert torch.allclose(rate, torch.full((5,), expected), atol=1e-5) and torch.allclose(fit, rate)
    with torch.no_grad():
        discrete.prior_net[-1].bias.copy_(torch.tensor([math.log(0.8), math.log(0.2)]))
    z, a = torch.randn(4000, 2), torch.randn(4000, 1)
    u = discrete.draw(z, a, discrete.sample_prior((4000,), torch.Generator().manual_seed(0), torch.device("cpu")))
    assert torch.all(u.sum(-1) == 1) and abs(u[:, 0].mean().item() - 0.8) < 0.03
    assert torch.allclose(discrete.prior_mean(z[:3], a[:3]), torch.tensor([[0.8, 0.2]]).expand(3, -1), atol=1e-6)
    gaussian = LatentVariablePredictor(2, 1, 8, 1, code_dim=1, code="gaussian", rate_weight=1.0, prior="learned")
    for net, bias in ((gaussian.inference, [1.0, math.log(0.25)]), (gaussian.prior_net, [0.5, math.log(4.0)])):
        torch.nn.init.zeros_(net[-1].weight)
        with torch.no_grad():
            net[-1].bias.copy_(torch.tensor(bias))
    _, rate, fit = gaussian.posterior(torch.randn(5, 2), torch.randn(5, 1), torch.randn(5, 2))
    # KL(N(1, 0.25) || N(0.5, 4)) = ln(2 / 0.5) + (0.25 + 0.25) / 8 - 1/2
    assert torch.allclose(rate, torch.full((5,), math.log(4.0) + 0.5 / 8 - 0.5), atol=1e-5)
    u = gaussian.draw(z, a, gaussian.sample_prior((4000,), torch.Generator().manual_seed(0), torch.device("cpu")))
    assert abs(u.mean().item() - 0.5) < 0.1 and abs(u.std().item() - 2.0) < 0.1


class CoinModel(torch.nn.Module):
    """``z' = z + a + u``, ``u`` a one-hot of {+1 wall, 0 free} along x: each step the world may shove
    the point by +1 with probability 1/2 (a discrete prior over two codes)."""

    frame_stack = 1
    code_dim = 2

    def encode(self, obs: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(obs, dtype=torch.float32)

    def rollout(self, z0: torch.Tensor, actions: torch.Tensor, codes: torch.Tensor | None = None) -> torch.Tensor:
        shove = torch.zeros_like(actions) if codes is None else codes[..., :1] * torch.tensor([1.0, 0.0])
        return z0[:, None] + (actions + shove).cumsum(dim=1)

    def sample_codes(self, batch: int, horizon: int, generator: torch.Generator) -> torch.Tensor:
        index = torch.randint(2, (batch, horizon), generator=generator)
        return F.one_hot(index, 2).float()


def test_a_plan_is_scored_by_the_mean_or_the_tail_of_its_sampled_futures() -> None:
    energy = Energy({"goal": GoalDistance(1.0, 0.0, "l2")})
    z0, goal = torch.zeros(2), torch.zeros(2)
    stay = torch.zeros(1, 1, 2)  # one step, no action: the final point is the shove
    futures = 400
    for statistic, expected in (("mean", 0.5), ("cvar", 1.0)):  # half the futures end 1 away; the worst 20% all do
        cost = LatentCost(CoinModel(), energy, z0, goal, Uncertainty(futures, statistic, 0.8),
                          torch.Generator().manual_seed(0))
        assert float(cost(stay)[0]) == pytest.approx(expected, abs=0.06)
        drawn = cost.codes.clone()
        assert drawn.shape == (futures, 1, 2)
        cost(stay.expand(3, -1, -1))
        assert torch.equal(cost.codes, drawn)  # drawn once per plan, the same for every candidate
    deterministic = LatentCost(CoinModel(), energy, z0, goal)  # one future: the prior's mean (no shove)
    assert float(deterministic(stay)[0]) == 0.0


def test_the_agent_plans_against_the_shove_it_expects() -> None:
    """With shoves of +1 along x half the time, the expected-energy plan pushes back by about half."""
    agent = MPCAgent(CoinModel(), Energy({"goal": GoalDistance(1.0, 0.0, "sq_l2")}),
                     CEM(1, 2, samples=256, iterations=6, elites=16, init_std=0.6, min_std=0.01), 1, Uncertainty(64))
    agent.reset(seed=0)
    action = agent.act({"observation": np.zeros(2, np.float32), "goal": np.zeros(2, np.float32)}, {})
    assert action[0] == pytest.approx(-0.5, abs=0.12) and abs(action[1]) < 0.1
