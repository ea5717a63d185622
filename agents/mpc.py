"""Receding-horizon control with a learned world model: encode, plan in latent space, act, replan.

An agent drives one env or many: each env has a *slot* (its plan, its frame history, its planner
generator), and :meth:`RecedingHorizon.act_batch` plans for every slot that is due in one
:meth:`~agents.planners.Planner.minimize_batch` call. A slot's actions depend only on its own
episode, so an episode plays out the same beside 15 others as alone.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from agents.cost import BatchLatentCost, LatentCost, Uncertainty
from agents.planners.base import Planner
from agents.protocols import Energy, LatentModel
from worldmodel.frames import FrameHistory

Observation = dict[str, np.ndarray]
Info = dict[str, Any]


def shift_plan(plan: torch.Tensor, steps: int) -> torch.Tensor:
    """Drop the ``steps`` executed actions and repeat the last one, the warm start for the next plan."""
    tail = plan[steps:]
    return torch.cat([tail, plan[-1:].expand(steps, -1)])


@dataclass
class PlanState:
    """One slot's plan being executed."""

    plan: torch.Tensor | None = None
    cursor: int = 0  # actions of the plan executed so far
    energy: float = float("nan")  # energy of the plan being executed, for logs and videos


class RecedingHorizon(ABC):
    """Execute the first ``replan_every`` actions of each plan, then replan from a shifted warm start.

    Subclasses say how to plan from the current observations; this class owns the bookkeeping shared
    by the JEPA agent and the simulator oracle, per slot.
    """

    def __init__(self, planner: Planner, replan_every: int) -> None:
        if not 1 <= replan_every <= planner.horizon:
            raise ValueError(f"replan_every must be in [1, horizon={planner.horizon}], got {replan_every}")
        self.planner = planner
        self.replan_every = replan_every
        self.slots: dict[int, PlanState] = {}

    @property
    def last_energy(self) -> float:
        """Slot 0's :meth:`energy_of` (the single-env case)."""
        return self.energy_of(0)

    def energy_of(self, slot: int) -> float:
        """The energy of the plan the slot is executing (NaN before its first plan)."""
        return self.slots[slot].energy if slot in self.slots else float("nan")

    def reset(self, seed: int | None = None, slot: int = 0) -> None:
        """Start a new episode in ``slot``; ``seed`` reseeds its planner generator."""
        self.slots[slot] = PlanState()
        if seed is not None:
            self.planner.reseed(seed, slot)

    def act(self, obs: Observation, info: Info) -> np.ndarray:
        """The next action of slot 0's episode."""
        return self.act_batch([0], [obs], [info])[0]

    def act_batch(self, slots: Sequence[int], observations: Sequence[Observation], infos: Sequence[Info]) -> np.ndarray:
        """The next action ``(E, A)`` of each slot's episode; the slots due a plan are planned together."""
        states = [self.slots.setdefault(slot, PlanState()) for slot in slots]
        due = [i for i, state in enumerate(states) if state.plan is None or state.cursor == self.replan_every]
        if due:
            warms = [None if states[i].plan is None else shift_plan(states[i].plan, states[i].cursor) for i in due]
            plans = self.replan_batch([slots[i] for i in due], [observations[i] for i in due],
                                      [infos[i] for i in due], warms)
            for i, plan, energy in zip(due, plans, self.planner.last_costs, strict=True):
                states[i].plan, states[i].cursor, states[i].energy = plan, 0, energy
        actions = []
        for state in states:
            actions.append(state.plan[state.cursor])
            state.cursor += 1
        return torch.stack(actions).detach().cpu().numpy().astype(np.float32)

    @abstractmethod
    def replan_batch(self, slots: Sequence[int], observations: Sequence[Observation], infos: Sequence[Info],
                     warms: Sequence[torch.Tensor | None]) -> torch.Tensor:
        """New plans ``(E, H, A)`` from the slots' current observations (``warms``: their shifted
        previous plans, or None), made by one ``planner.minimize_batch`` call."""


@dataclass
class LatentEpisode:
    """One slot's episode as the JEPA agent sees it."""

    history: FrameHistory
    energy: Energy  # the agent's energy, copied: its per-plan state (the waypoint) is this episode's
    generator: torch.Generator  # a latent-variable model's sampled futures, seeded with the episode
    z_goal: torch.Tensor | None = None
    goal: np.ndarray | None = None  # the goal observation z_goal encodes
    stacked: torch.Tensor | None = None  # the current observation with its history


class MPCAgent(RecedingHorizon):
    """The JEPA agent: the goal is encoded when it is first seen (and again if the env changes it: a
    stochastic variant's goal shows the world as drawn), the observation at every replan.

    Every observation goes into a frame history (the model's ``frame_stack`` latest ones), also
    between replans; the goal is encoded as a configuration at rest. Each plan minimises a fresh
    :class:`~agents.cost.LatentCost` (``model``'s rollout scored by ``energy``); the plans due at one
    step are scored together (:class:`~agents.cost.BatchLatentCost`, one rollout for all). The
    planner itself only optimises, as it does for the oracle. With a latent-variable model each plan
    scores ``uncertainty.samples`` sampled futures per candidate (:class:`~agents.cost.Uncertainty`).
    """

    def __init__(self, model: LatentModel, energy: Energy, planner: Planner, replan_every: int,
                 uncertainty: Uncertainty | None = None) -> None:
        super().__init__(planner, replan_every)
        self.model = model
        self.energy = energy  # fitted once; each episode plans with a shallow copy sharing what it fitted
        self.uncertainty = uncertainty or Uncertainty()
        self.episodes: dict[int, LatentEpisode] = {}

    def reset(self, seed: int | None = None, slot: int = 0) -> None:
        super().reset(seed, slot)
        generator = torch.Generator(device=self.planner.device).manual_seed(0 if seed is None else seed)
        self.episodes[slot] = LatentEpisode(FrameHistory(self.model.frame_stack), copy.copy(self.energy), generator)

    def act_batch(self, slots: Sequence[int], observations: Sequence[Observation], infos: Sequence[Info]) -> np.ndarray:
        for slot, obs in zip(slots, observations, strict=True):
            if slot not in self.episodes:
                self.reset(slot=slot)
            episode = self.episodes[slot]
            episode.stacked = episode.history.push(np.asarray(obs["observation"]))
        return super().act_batch(slots, observations, infos)

    @torch.no_grad()
    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.encode(x[None])[0]

    def replan_batch(self, slots: Sequence[int], observations: Sequence[Observation], infos: Sequence[Info],
                     warms: Sequence[torch.Tensor | None]) -> torch.Tensor:
        device = self.planner.device  # where the planner makes its candidates
        costs = []
        for slot, obs in zip(slots, observations, strict=True):
            episode = self.episodes[slot]
            goal = np.asarray(obs["goal"])
            if episode.goal is None or not np.array_equal(goal, episode.goal):  # a world with chance may change it
                episode.goal, episode.z_goal = goal.copy(), self._encode(episode.history.still(goal))
            z0 = self._encode(episode.stacked)
            costs.append(LatentCost(self.model, episode.energy, z0.to(device), episode.z_goal.to(device),
                                    self.uncertainty, episode.generator))
        return self.planner.minimize_batch(BatchLatentCost(costs), warms, slots)
