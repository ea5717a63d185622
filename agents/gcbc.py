"""Goal-conditioned behaviour cloning with hindsight goals: the model-free baseline (as in PLDM).

From every dataset step ``t`` the policy learns ``pi(o_t, o_{t+k}) -> a_t``, where ``o_{t+k}`` is a
later observation of the same episode used as the goal (hindsight relabelling). Its encoder is the
world model's encoder type for the obs mode (MLP for state, CNN for pixels), trained from scratch.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from torch import nn
from tqdm import tqdm

from envs.episodes import EpisodeSet
from envs.errors import UserInputError
from worldmodel.checkpoint import verify_digest, write_safetensors
from worldmodel.encoders import mlp
from worldmodel.world_model import build_encoder, normalization_stats


class GCBCPolicy(nn.Module):
    """Shared encoder for observation and goal, an MLP head, ``tanh`` to stay inside ``[-1, 1]``."""

    def __init__(
        self, encoder_cfg: DictConfig, obs_shape: Sequence[int], action_dim: int, latent_dim: int,
        hidden_dim: int, depth: int,
    ) -> None:
        super().__init__()
        self.encoder = build_encoder(encoder_cfg, obs_shape, latent_dim, where="gcbc encoder_cfg")
        self.head = mlp(2 * latent_dim, hidden_dim, depth, action_dim)
        self.register_buffer("obs_loc", torch.zeros(obs_shape[-1]))
        self.register_buffer("obs_scale", torch.ones(obs_shape[-1]))

    def forward(self, obs: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        both = (torch.cat([obs, goal]).float() - self.obs_loc) / self.obs_scale
        z_obs, z_goal = self.encoder(both).chunk(2)
        return torch.tanh(self.head(torch.cat([z_obs, z_goal], dim=-1)))


def hindsight_batch(
    episodes: EpisodeSet, batch_size: int, max_goal_offset: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random steps ``t`` with goals ``k ~ U{1..min(max_goal_offset, L - t)}`` steps later, same episode."""
    lengths = episodes.episode_lengths
    episode = rng.choice(len(lengths), size=batch_size, p=lengths / lengths.sum())
    t = rng.integers(0, lengths[episode])
    k = 1 + (rng.random(batch_size) * np.minimum(max_goal_offset, lengths[episode] - t)).astype(np.int64)
    obs_index = episodes.obs_starts[episode] + t
    return (
        episodes.observations[obs_index],
        episodes.observations[obs_index + k],
        episodes.actions[episodes.action_starts[episode] + t],
    )


def train_gcbc(
    policy: GCBCPolicy,
    episodes: EpisodeSet,
    steps: int,
    batch_size: int,
    lr: float,
    max_goal_offset: int,
    seed: int,
) -> list[float]:
    """Fit ``policy`` by mean squared error to the dataset's actions; returns the loss per step."""
    device = policy.obs_loc.device
    loc, scale = normalization_stats(episodes.observations)
    policy.obs_loc.copy_(loc)
    policy.obs_scale.copy_(scale)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    optimizer = torch.optim.Adam(policy.parameters(), lr=lr)
    policy.train()
    losses = []
    for _ in tqdm(range(steps), desc="train gcbc", unit="step"):
        obs, goal, action = (torch.as_tensor(x, device=device) for x in hindsight_batch(episodes, batch_size, max_goal_offset, rng))
        loss = (policy(obs, goal) - action).pow(2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


GCBC_INT_ARGS = ("action_dim", "latent_dim", "hidden_dim", "depth")


def save_gcbc(path: str | os.PathLike, policy: GCBCPolicy, build_kwargs: dict[str, Any]) -> Path:
    """Weights plus the constructor arguments (as JSON in the header), so that loading needs nothing else."""
    path = Path(path)
    tensors = {k: v.detach().cpu().contiguous() for k, v in policy.state_dict().items()}
    kwargs = {**build_kwargs, "encoder_cfg": OmegaConf.to_container(build_kwargs["encoder_cfg"], resolve=True)}
    write_safetensors(path, tensors, {"gcbc": json.dumps(kwargs)})
    return path


def _check_gcbc_kwargs(kwargs: Any, path: str | os.PathLike) -> dict[str, Any]:
    """The header's constructor arguments, refused unless they are exactly what :func:`save_gcbc` writes."""
    expected = {"encoder_cfg", "obs_shape", *GCBC_INT_ARGS}
    if not isinstance(kwargs, dict) or set(kwargs) != expected:
        found = sorted(kwargs) if isinstance(kwargs, dict) else type(kwargs).__name__
        raise UserInputError(f"GCBC weights {path} have a damaged header (arguments {found})")
    shape = kwargs["obs_shape"]
    bad = [k for k in GCBC_INT_ARGS if type(kwargs[k]) is not int or kwargs[k] < 1]
    if not isinstance(shape, list) or not shape or any(type(s) is not int or s < 1 for s in shape):
        bad.append("obs_shape")
    if not isinstance(kwargs["encoder_cfg"], dict):
        bad.append("encoder_cfg")
    if bad:
        raise UserInputError(f"GCBC weights {path} have a damaged header (bad {', '.join(bad)})")
    return kwargs


def load_gcbc(path: str | os.PathLike, device: torch.device) -> tuple[GCBCPolicy, dict[str, Any]]:
    """The policy in eval mode and its constructor arguments (obs shape, action dim... for checks).

    The encoder config in the header can only build the project's own encoders (:mod:`envs.builder`),
    and the tensors must match the checksum the header carries.
    """
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
        kwargs = json.loads(header["gcbc"])
        tensors = load_file(str(path))
    except (SafetensorError, OSError, KeyError, ValueError) as err:
        raise UserInputError(f"GCBC weights {path} are missing or not a GCBC file: {err}") from err
    verify_digest(tensors, header.get("tensors_sha256"), Path(path))
    kwargs = _check_gcbc_kwargs(kwargs, path)
    policy = GCBCPolicy(**kwargs)
    expected = {k: tuple(v.shape) for k, v in policy.state_dict().items()}
    if expected != {k: tuple(v.shape) for k, v in tensors.items()}:
        raise UserInputError(f"GCBC weights {path} do not fit the policy their header describes")
    policy.load_state_dict(tensors)
    return policy.to(device).eval(), kwargs


class GCBCAgent:
    """Acts with the cloned policy; no planning, so it has no energy. Many envs: one batched forward."""

    last_energy = float("nan")

    def __init__(self, policy: GCBCPolicy) -> None:
        self.policy = policy

    def energy_of(self, slot: int) -> float:
        """No plan, no energy."""
        return float("nan")

    def reset(self, seed: int | None = None, slot: int = 0) -> None:
        """Deterministic policy: nothing to reset."""

    def act(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> np.ndarray:
        return self.act_batch([0], [obs], [info])[0]

    @torch.no_grad()
    def act_batch(self, slots: Sequence[int], observations: Sequence[dict[str, np.ndarray]],
                  infos: Sequence[dict[str, Any]]) -> np.ndarray:
        device = self.policy.obs_loc.device
        x, goal = (torch.as_tensor(np.stack([np.asarray(o[k]) for o in observations]), device=device)
                   for k in ("observation", "goal"))
        return self.policy(x, goal).cpu().numpy().astype(np.float32)
