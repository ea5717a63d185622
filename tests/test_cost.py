"""The latent cost a planner minimises (known answers) and the Protocols at the agent's seams."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from agents.baselines import RandomAgent
from agents.cost import LatentCost
from agents.energy import ActionMagnitude, Energy, GoalDistance
from agents.mpc import MPCAgent
from agents.planners import CEM
from agents.protocols import Cost, Dynamics, LatentModel, NeedsData
from agents.protocols import Energy as EnergyProtocol
from envs.builder import build
from worldmodel.world_model import build_world_model

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
ENERGIES = sorted(p.stem for p in (CONFIGS / "energy").glob("*.yaml"))


class HalfStep:
    """``z_{t+1} = z_t + 0.5 a_t``: a linear latent model whose rollouts are worked out by hand."""

    frame_stack = 1

    def encode(self, obs: np.ndarray | torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(obs, dtype=torch.float32)

    def rollout(self, z0: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return z0[:, None] + 0.5 * actions.cumsum(dim=1)


class CountingEnergy:
    """The plain latent distance, recording every ``prepare`` call."""

    def __init__(self) -> None:
        self.inner = GoalDistance(1.0, 0.5, "l2")
        self.prepared: list[tuple[torch.Tensor, torch.Tensor]] = []

    def prepare(self, z0: torch.Tensor, z_goal: torch.Tensor) -> None:
        self.prepared.append((z0.clone(), z_goal.clone()))

    def __call__(self, z_pred: torch.Tensor, z_goal: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self.inner(z_pred, z_goal, actions)


def latent_energy(action_weight: float) -> Energy:
    """``configs/energy/latent.yaml`` as the agent builds it, with an action cost of ``action_weight``."""
    cfg = OmegaConf.merge(OmegaConf.load(CONFIGS / "energy" / "latent.yaml"),
                          {"terms": {"action": {"weight": action_weight}}})
    return build(cfg, "energy")


def test_latent_cost_of_known_sequences_equals_the_hand_computed_value() -> None:
    # from z0 = (0, 0) the actions (1, 0), (0, 1) reach z1 = (0.5, 0), z2 = (0.5, 0.5); the goal is
    # (0.5, 2.5): distances 2.5 then 2.0, so 1.0 * 2.0 + 0.5 * mean(2.5, 2.0) = 3.125, plus the
    # action cost 0.1 * mean(1, 0, 0, 1) = 0.05. Standing still: 1.5 * |goal| = 1.5 * sqrt(6.5).
    cost = LatentCost(HalfStep(), latent_energy(0.1), torch.zeros(2), torch.tensor([0.5, 2.5]))
    actions = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[0.0, 0.0], [0.0, 0.0]]])
    values = cost(actions)
    assert values.shape == (2,)
    assert values.tolist() == pytest.approx([3.175, 1.5 * math.sqrt(6.5)], abs=1e-6)
    # candidates are scored independently of the batch they come in
    assert cost(actions[1:]).tolist() == pytest.approx([1.5 * math.sqrt(6.5)], abs=1e-6)


def test_latent_cost_is_differentiable_in_the_actions() -> None:
    """The gradient planner descends through it: from rest, moving towards the goal lowers the cost."""
    cost = LatentCost(HalfStep(), latent_energy(0.0), torch.zeros(2), torch.tensor([0.0, 2.0]))
    actions = torch.zeros(1, 2, 2, requires_grad=True)
    (grad,) = torch.autograd.grad(cost(actions).sum(), actions)
    # the cost is 1.25 |z2 - g| + 0.25 |z1 - g|; z1 moves by 0.5 a_1, z2 by 0.5 (a_1 + a_2), and at
    # rest each distance shrinks by 0.5 per unit of a_y (the goal lies along +y): -0.75 and -0.625
    assert grad[0, :, 0].abs().max() < 1e-6
    assert grad[0, :, 1].tolist() == pytest.approx([-0.75, -0.625], abs=1e-6)


def test_prepare_runs_exactly_once_per_cost_built_with_where_the_plan_starts() -> None:
    energy = CountingEnergy()
    z0, goal = torch.tensor([[0.3, -0.2]]), torch.tensor([1.0, 1.0])
    cost = LatentCost(HalfStep(), energy, z0, goal)
    for _ in range(3):
        cost(torch.zeros(4, 3, 2))
    assert len(energy.prepared) == 1
    start, aim = energy.prepared[0]
    assert start.shape == (2,) and torch.equal(start, z0[0]) and torch.equal(aim, goal)
    LatentCost(HalfStep(), energy, z0, goal)
    assert len(energy.prepared) == 2


@pytest.mark.parametrize("replan_every", [1, 3])
def test_mpc_agent_prepares_the_energy_once_per_plan(replan_every: int) -> None:
    energy = CountingEnergy()
    agent = MPCAgent(HalfStep(), energy, CEM(4, 2, samples=16, iterations=2, elites=4, init_std=0.6, min_std=0.05),
                     replan_every)
    agent.reset(seed=0)
    z = np.zeros(2, np.float32)
    starts = []
    for step in range(7):
        if step % replan_every == 0:
            starts.append(z.copy())
        z = z + 0.5 * agent.act({"observation": z, "goal": np.ones(2, np.float32)}, {})
    assert len(energy.prepared) == len(starts) == math.ceil(7 / replan_every)
    for (start, aim), expected in zip(energy.prepared, starts, strict=True):
        assert np.allclose(start.numpy(), expected) and torch.equal(aim, torch.ones(2))


def test_the_world_model_and_the_configured_energies_fit_their_protocols() -> None:
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        model_cfg = compose("train", overrides=["data=unused", "task=reacher", "obs=state",
                                                "model.latent_dim=8"]).model
    model = build_world_model(model_cfg, [8], 2)
    assert isinstance(model, Dynamics) and isinstance(model, LatentModel)
    assert model.rollout(torch.zeros(3, 8), torch.zeros(3, 5, 2)).shape == (3, 5, 8)
    for name in ENERGIES:
        energy = build(OmegaConf.load(CONFIGS / "energy" / f"{name}.yaml"), f"energy {name}")
        assert isinstance(energy, EnergyProtocol), name
        assert all(isinstance(term, EnergyProtocol) for term in energy.terms.values()), name
        assert energy.needs_data == name.startswith("geodesic"), name  # the landmark graph needs the data
        assert energy.needs_data == any(isinstance(term, NeedsData) for term in energy.terms.values())
    assert isinstance(LatentCost(HalfStep(), latent_energy(0.0), torch.zeros(2), torch.zeros(2)), Cost)


def test_protocols_refuse_what_does_not_fit() -> None:
    def bare_term(z_pred: torch.Tensor, z_goal: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return actions.new_zeros(actions.shape[0])

    assert not isinstance(bare_term, EnergyProtocol)  # no prepare
    assert not isinstance(ActionMagnitude(1.0), NeedsData)
    assert not isinstance(RandomAgent(2), Dynamics)
    assert isinstance(HalfStep(), Dynamics) and not isinstance(CEM(2, 2, 4, 1, 2, 0.5, 0.1), LatentModel)
    with pytest.raises(ValueError, match="energy term 'goal' .* is not an energy"):
        Energy({"goal": bare_term})
