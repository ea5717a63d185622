"""The branch measurement: the two forced futures really differ at the door, and the distances are right."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import envs
from agents.branches import branch_errors, branch_futures, forced_doors
from agents.pairs import held_out_pairs


@pytest.mark.parametrize("task", ["wall-branching", "wall-trap"])
def test_forced_doors_give_two_futures_that_part_at_the_risky_door(task: str) -> None:
    env = envs.make(task, obs="state")
    specs, _ = held_out_pairs(env.unwrapped, 2, 2000, None)
    branches = forced_doors(task, "state")
    for spec in specs:
        first, actions, futures = branch_futures(branches, spec, approach=0.7, horizon=10)
        side = np.sign(first[0])
        assert first[0] == 0.7 * side and first[-1] == 0.5  # at rest in front of the door, not yet drawn
        assert futures["open"][-1][-1] == 0.0 and futures["shut"][-1][-1] == 1.0
        assert side * futures["open"][-1][0] < 0 < side * futures["shut"][-1][0]  # through it / stopped (caught) before it
        np.testing.assert_array_equal(futures["open"][0][:2], futures["shut"][0][:2])  # the same until the draw


class _Identity(torch.nn.Module):
    """A "world model" whose latent is the state and whose prediction is the shut branch's real future."""

    frame_stack, code_dim, device = 1, 0, torch.device("cpu")

    def __init__(self, future: np.ndarray) -> None:
        super().__init__()
        self.future = torch.as_tensor(future)

    def encode(self, obs: torch.Tensor) -> torch.Tensor:
        return obs.float()

    def rollout(self, z0: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self.future[None].expand(len(z0), -1, -1)


def test_a_model_that_predicts_one_branch_exactly_is_at_zero_from_it_and_one_separation_from_the_other() -> None:
    env = envs.make("wall-branching", obs="state")
    spec = held_out_pairs(env.unwrapped, 1, 2000, None)[0][0]
    _, _, futures = branch_futures(forced_doors("wall-branching", "state"), spec, approach=0.7, horizon=10)
    figures = branch_errors(_Identity(futures["shut"]), "wall-branching", "state", episodes=1, seed=2000)
    assert figures["to_shut_last"] == 0.0 and figures["to_shut_over_separation_last"] == 0.0
    assert figures["to_open_over_separation_last"] == 1.0
    assert figures["separation_last"] == float(np.linalg.norm(futures["open"][-1] - futures["shut"][-1]))
