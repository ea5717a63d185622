"""The energy a planner minimises: goal distance in latent space plus action costs, terms from config.

Every term is an :class:`agents.protocols.Energy`: it maps ``z_pred (N, H, D)``, ``z_goal (D,)``,
``actions (N, H, A)`` to ``(N,)``, and has ``prepare(z0, z_goal)``, called once per plan (a no-op
for the terms that score every plan alike). Their sum, :class:`Energy`, is one too.
:func:`final_and_running` also scores the oracle's true trajectories (achieved vs. desired goal positions).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

import torch

from agents import protocols
from agents.landmarks import LandmarkGraph
from envs.episodes import EpisodeSet
from envs.registry import task_is_reversible


def final_and_running(per_step: torch.Tensor, final_weight: float, running_weight: float) -> torch.Tensor:
    """``final_weight * d_last + running_weight * mean_t d_t`` of per-step goal distances ``(N, T)``."""
    return final_weight * per_step[:, -1] + running_weight * per_step.mean(dim=1)


def _l2(diff: torch.Tensor) -> torch.Tensor:
    return diff.norm(dim=-1)


def _squared_l2(diff: torch.Tensor) -> torch.Tensor:
    return diff.pow(2).sum(dim=-1)


DISTANCES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"l2": _l2, "sq_l2": _squared_l2}


class GoalDistance:
    """``final_weight * d(z_H, g) + running_weight * mean_t d(z_t, g)``.

    The final term asks to *be* at the goal when the horizon ends; the running term rewards getting
    there early and gives a signal when the horizon is too short to arrive.
    """

    def __init__(self, final_weight: float, running_weight: float, metric: str) -> None:
        if metric not in DISTANCES:
            raise ValueError(f"unknown metric {metric!r}; valid: {sorted(DISTANCES)}")
        self.final_weight = final_weight
        self.running_weight = running_weight
        self.distance = DISTANCES[metric]

    def prepare(self, z0: torch.Tensor, z_goal: torch.Tensor) -> None:
        """Nothing to set up: the distance to the goal does not depend on where the plan starts."""

    def __call__(self, z_pred: torch.Tensor, z_goal: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        per_step = self.distance(z_pred - z_goal)  # (N, H)
        return final_and_running(per_step, self.final_weight, self.running_weight)


class GeodesicGoalDistance:
    """:class:`GoalDistance` measured along a :class:`~agents.landmarks.LandmarkGraph` of the dataset.

    Around a wall, the straight latent distance says "push into the wall"; this one says "go round",
    because the graph only joins latents the data showed to be a short hop apart. It needs the
    world model's dataset: :meth:`fit` builds the graph once per agent, and the landmarks' distances
    to a goal are recomputed only when the goal changes.

    With ``subgoal_steps``, each plan instead aims straight at a waypoint: the landmark that the
    shortest path from the current latent reaches after ``subgoal_steps`` times the graph's hop
    radius (:meth:`~agents.landmarks.LandmarkGraph.waypoint`), as search on the replay buffer does.
    The model then only has to predict motion towards a nearby landmark, not where walls stop the ball.
    """

    def __init__(
        self,
        final_weight: float,
        running_weight: float,
        landmarks: Mapping[str, Any],
        running_every: int = 1,
        subgoal_steps: float | None = None,
    ) -> None:
        if running_every < 1:
            raise ValueError(f"running_every must be >= 1, got {running_every}")
        if subgoal_steps is not None and subgoal_steps <= 0:
            raise ValueError(f"subgoal_steps must be positive or null, got {subgoal_steps}")
        self.final_weight = final_weight
        self.running_weight = running_weight
        self.running_every = running_every  # the running mean looks at every k-th step, ending at the last
        self.subgoal_steps = subgoal_steps
        self.landmark_options = dict(landmarks)
        self.graph: LandmarkGraph | None = None
        self._goal: torch.Tensor | None = None
        self._to_goal: torch.Tensor | None = None
        self._next_hops: tuple[torch.Tensor, torch.Tensor] | None = None  # subgoal mode: the paths to the goal
        self._waypoint: torch.Tensor | None = None  # subgoal mode: this plan's aim, set by prepare()

    def fit(self, model: torch.nn.Module, episodes: EpisodeSet) -> None:
        """Build the landmark graph on ``episodes``; whether its transitions go both ways is a fact of
        the task the data was collected on (its metadata's ``task``; reversible when it names none)."""
        reversible = task_is_reversible(episodes.metadata.get("task"))
        self.graph = LandmarkGraph.from_episodes(model, episodes, **self.landmark_options, reversible=reversible)

    def _graph_to(self, z_goal: torch.Tensor) -> LandmarkGraph:
        """The fitted graph, with the landmarks' distances (and in subgoal mode, paths) to ``z_goal``,
        recomputed only when the goal changes."""
        if self.graph is None:
            raise RuntimeError("GeodesicGoalDistance needs fit(model, episodes) before use")
        if self._goal is None or not torch.equal(self._goal, z_goal):
            self._goal, self._to_goal = z_goal.clone(), self.graph.distances_to(z_goal)
            if self.subgoal_steps is not None:
                self._next_hops = self.graph.next_hops(z_goal, self._to_goal)
        return self.graph

    def prepare(self, z0: torch.Tensor, z_goal: torch.Tensor) -> None:
        """Before each plan from ``z0 (D,)``: in subgoal mode, pick the waypoint it aims at."""
        graph = self._graph_to(z_goal)
        if self.subgoal_steps is not None:
            lookahead = self.subgoal_steps * graph.radius
            self._waypoint = graph.waypoint(z0, z_goal, self._to_goal, self._next_hops, lookahead)

    def __call__(self, z_pred: torch.Tensor, z_goal: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        graph = self._graph_to(z_goal)
        horizon = z_pred.shape[1]
        steps = torch.arange(horizon - 1, -1, -self.running_every).flip(0) if self.running_weight else [-1]
        if self.subgoal_steps is None:
            per_step = graph.cost_to_go(z_pred[:, steps], z_goal, self._to_goal)  # (N, len(steps))
        elif self._waypoint is None:
            raise RuntimeError("subgoal mode needs prepare(z0, z_goal) before each plan")
        else:
            per_step = ((z_pred[:, steps] - self._waypoint) @ graph.metric.T).norm(dim=-1)
        return final_and_running(per_step, self.final_weight, self.running_weight)


class ActionMagnitude:
    """``weight * mean(a^2)``: prefer gentle actions when they reach the goal just as well."""

    def __init__(self, weight: float) -> None:
        self.weight = weight

    def prepare(self, z0: torch.Tensor, z_goal: torch.Tensor) -> None:
        """Nothing to set up: it only looks at the actions."""

    def __call__(self, z_pred: torch.Tensor, z_goal: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self.weight * actions.pow(2).mean(dim=(1, 2))


class ActionSmoothness:
    """``weight * mean((a_t - a_{t-1})^2)``: penalise jerky plans that exploit model errors."""

    def __init__(self, weight: float) -> None:
        self.weight = weight

    def prepare(self, z0: torch.Tensor, z_goal: torch.Tensor) -> None:
        """Nothing to set up: it only looks at the actions."""

    def __call__(self, z_pred: torch.Tensor, z_goal: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        if actions.shape[1] < 2:
            return actions.new_zeros(actions.shape[0])
        return self.weight * (actions[:, 1:] - actions[:, :-1]).pow(2).mean(dim=(1, 2))


class Energy:
    """The sum of named terms, what ``configs/energy/*.yaml`` build; :meth:`terms_of` gives each
    term's value for logs and videos.

    Each term must be an :class:`agents.protocols.Energy` (checked here, so that a term without
    ``prepare`` is refused when the energy is built, not at the first plan).
    """

    def __init__(self, terms: Mapping[str, protocols.Energy]) -> None:
        if not terms:
            raise ValueError("an energy needs at least one term")
        for name, term in terms.items():
            if not isinstance(term, protocols.Energy):
                raise ValueError(f"energy term {name!r} ({type(term).__name__}) is not an energy: it needs "
                                 "__call__(z_pred, z_goal, actions) and prepare(z0, z_goal)")
        self.terms = dict(terms)

    def __copy__(self) -> Energy:
        """An energy with copies of the terms: the copies share what :meth:`fit` built (the landmark
        graph) and keep their own per-plan state, so episodes planned side by side do not mix waypoints."""
        return Energy({name: copy.copy(term) for name, term in self.terms.items()})

    @property
    def needs_data(self) -> bool:
        """Whether a term must see the world model's dataset (:meth:`fit`) before planning."""
        return any(isinstance(term, protocols.NeedsData) for term in self.terms.values())

    def fit(self, model: torch.nn.Module, episodes: EpisodeSet) -> None:
        """Let data-dependent terms (e.g. :class:`GeodesicGoalDistance`) build what they need."""
        for term in self.terms.values():
            if isinstance(term, protocols.NeedsData):
                term.fit(model, episodes)

    def prepare(self, z0: torch.Tensor, z_goal: torch.Tensor) -> None:
        """Once per plan, before the planner scores candidates: let terms that depend on where the
        plan starts (subgoal mode of :class:`GeodesicGoalDistance`) look at ``z0 (D,)``."""
        for term in self.terms.values():
            term.prepare(z0, z_goal)

    def terms_of(self, z_pred: torch.Tensor, z_goal: torch.Tensor, actions: torch.Tensor) -> dict[str, torch.Tensor]:
        return {name: term(z_pred, z_goal, actions) for name, term in self.terms.items()}

    def __call__(self, z_pred: torch.Tensor, z_goal: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return sum(self.terms_of(z_pred, z_goal, actions).values())
