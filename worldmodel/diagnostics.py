"""Evidence that a world model learned something: spread, predictivity, probe and plannability.

Every figure is computed on episodes held out from the probe's own fit, with plain torch ops, so a
newcomer can check each number by hand on a small batch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from envs.episodes import EpisodeSet
from worldmodel.data import WindowSampler
from worldmodel.frames import history_index, stack_frames
from worldmodel.world_model import WorldModel


def latent_stats(z: torch.Tensor) -> dict[str, float]:
    """Per-dimension std (mean and min) and effective rank of the covariance of ``z (N, D)``.

    Effective rank is ``exp(entropy)`` of the normalised covariance eigenvalues (Roy & Vetterli,
    2007): D for an isotropic cloud, 1 when all variance lies on one direction, ~0 spread = collapse.
    """
    z = z.detach().double()
    std = z.std(dim=0)
    eigenvalues = torch.linalg.eigvalsh(torch.cov(z.T)).clamp(min=0)
    total = eigenvalues.sum()
    if total <= 0:
        rank = 0.0
    else:
        p = eigenvalues / total
        rank = float(torch.exp(-(p * torch.log(p.clamp(min=1e-300))).sum()))
    return {"latent_std_mean": float(std.mean()), "latent_std_min": float(std.min()), "effective_rank": rank}


def split_episodes(num_episodes: int, holdout_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint (train, held-out) episode ids; at least one episode on each side."""
    order = np.random.default_rng(seed).permutation(num_episodes)
    held_out = min(max(1, round(num_episodes * holdout_fraction)), num_episodes - 1)
    return np.sort(order[held_out:]), np.sort(order[:held_out])


@torch.no_grad()
def encode_episodes(
    model: WorldModel, episodes: EpisodeSet, episode_ids: np.ndarray, batch_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Latents and true states of every observation in the given episodes."""
    index = np.concatenate([episodes.obs_starts[i] + np.arange(episodes.episode_lengths[i] + 1) for i in episode_ids])
    first = np.concatenate([np.full(episodes.episode_lengths[i] + 1, episodes.obs_starts[i]) for i in episode_ids])
    z = _encode_frames(model, episodes, history_index(index, first, model.frame_stack), batch_size)
    return z, torch.as_tensor(episodes.states[index], dtype=torch.float32)


@torch.no_grad()
def encode_still(model: WorldModel, episodes: EpisodeSet, index: np.ndarray, batch_size: int) -> torch.Tensor:
    """Latents ``(N, D)`` of the observations at flat ``index``, each held still: its frame repeated for
    the whole history, as a goal is encoded (:meth:`worldmodel.frames.FrameHistory.still`)."""
    return _encode_frames(model, episodes, np.repeat(np.asarray(index)[:, None], model.frame_stack, axis=1), batch_size)


def _encode_frames(model: WorldModel, episodes: EpisodeSet, frames: np.ndarray, batch_size: int) -> torch.Tensor:
    """Latents ``(N, D)`` of the observation histories ``frames (N, frame_stack)`` (flat indices, oldest
    first), ``batch_size`` at a time."""
    return torch.cat([
        model.encode(stack_frames(torch.from_numpy(episodes.observations[frames[i : i + batch_size]]),
                                  episodes.observations.ndim - 1)).cpu()
        for i in range(0, len(frames), batch_size)
    ])


def linear_probe_r2_per_output(
    z_train: torch.Tensor, y_train: torch.Tensor, z_test: torch.Tensor, y_test: torch.Tensor, ridge: float
) -> torch.Tensor:
    """Fit ``y = W z + b`` by ridge regression on train; R^2 on test of each output column ``(S,)``,
    NaN where the column does not vary on the test set (its R^2 is undefined). Which column a latent
    misses says what to fix (e.g. pixel reacher's elbow speed, docs/EXPERIMENTS.md)."""
    x_train = torch.cat([z_train.double(), torch.ones(len(z_train), 1, dtype=torch.float64)], 1)
    x_test = torch.cat([z_test.double(), torch.ones(len(z_test), 1, dtype=torch.float64)], 1)
    gram = x_train.T @ x_train + ridge * torch.eye(x_train.shape[1], dtype=torch.float64)
    weights = torch.linalg.solve(gram, x_train.T @ y_train.double())
    residual = ((x_test @ weights - y_test.double()) ** 2).sum(0)
    spread = ((y_test.double() - y_test.double().mean(0)) ** 2).sum(0)
    return torch.where(spread > 0, 1 - residual / spread.clamp_min(1e-300), torch.nan)


def linear_probe_r2(
    z_train: torch.Tensor, y_train: torch.Tensor, z_test: torch.Tensor, y_test: torch.Tensor, ridge: float
) -> float:
    """:func:`linear_probe_r2_per_output` averaged over the outputs that vary on the test set."""
    return mean_r2(linear_probe_r2_per_output(z_train, y_train, z_test, y_test, ridge))


def mean_r2(per_output: torch.Tensor) -> float:
    """The mean of per-output R^2 ``(S,)`` over the defined (non-NaN) ones."""
    return float(per_output[~per_output.isnan()].mean())


@torch.no_grad()
def prediction_errors(model: WorldModel, obs: torch.Tensor, actions: torch.Tensor) -> dict[str, object]:
    """Open-loop latent prediction error vs. the copy-the-last-latent baseline, per horizon step.

    ``obs (B, H+1, ...)``, ``actions (B, H, A)``; the truth is the encoding of the real frames.
    """
    batch, steps = obs.shape[:2]
    z = model.encode(obs.flatten(0, 1)).unflatten(0, (batch, steps))
    predicted = model.rollout(z[:, 0], actions.to(model.device))
    pred = ((predicted - z[:, 1:]) ** 2).mean(dim=(0, 2))
    copy = ((z[:, :1] - z[:, 1:]) ** 2).mean(dim=(0, 2))
    return {
        "pred_error": float(pred.mean()),
        "copy_baseline_error": float(copy.mean()),
        "pred_error_per_step": pred.tolist(),
        "copy_baseline_error_per_step": copy.tolist(),
    }


@torch.no_grad()
def plannability(
    model: WorldModel, obs: torch.Tensor, actions: torch.Tensor, num_random: int, seed: int
) -> float:
    """How often the true action sequence has lower energy than a random one.

    Energy = squared latent distance between the rollout's last state and the encoded real final
    frame. For each window, ``num_random`` uniform [-1, 1] sequences are compared with the true one;
    returns the fraction of (window, random sequence) pairs the true sequence wins (0.5 = flat).
    """
    batch, steps = obs.shape[:2]
    generator = torch.Generator().manual_seed(seed)
    z = model.encode(obs.flatten(0, 1)).unflatten(0, (batch, steps))
    z0, goal = z[:, 0], z[:, -1]
    true_energy = ((model.rollout(z0, actions.to(model.device))[:, -1] - goal) ** 2).sum(-1)
    random_actions = torch.rand(batch * num_random, *actions.shape[1:], generator=generator) * 2 - 1
    random_final = model.rollout(z0.repeat_interleave(num_random, 0), random_actions.to(model.device))[:, -1]
    random_energy = ((random_final - goal.repeat_interleave(num_random, 0)) ** 2).sum(-1).view(batch, num_random)
    return float((true_energy[:, None] < random_energy).float().mean())


def run_diagnostics(
    model: WorldModel,
    episodes: EpisodeSet,
    holdout_fraction: float,
    horizon: int,
    num_windows: int,
    num_random: int,
    ridge: float,
    state_dims: list[int] | None,
    batch_size: int,
    seed: int,
) -> dict[str, object]:
    """All figures of ``probe.json`` for one model and one EpisodeSet."""
    train_ids, test_ids = split_episodes(len(episodes.episode_lengths), holdout_fraction, seed)
    z_train, s_train = encode_episodes(model, episodes, train_ids, batch_size)
    z_test, s_test = encode_episodes(model, episodes, test_ids, batch_size)
    if state_dims is not None:
        s_train, s_test = s_train[:, state_dims], s_test[:, state_dims]
    windows = WindowSampler(episodes, horizon, num_windows, seed=seed, episode_ids=test_ids,
                            frame_stack=model.frame_stack).sample(0)
    per_dim = linear_probe_r2_per_output(z_train, s_train, z_test, s_test, ridge)
    return {
        **latent_stats(z_test),
        "latent_dim": int(z_test.shape[1]),
        "probe_r2": mean_r2(per_dim),
        "probe_r2_per_dim": [None if r != r else r for r in per_dim.tolist()],  # JSON has no NaN: null
        **prediction_errors(model, windows.obs, windows.actions),
        "plannability": plannability(model, windows.obs, windows.actions, num_random, seed),
        "horizon": horizon,
        "train_episodes": len(train_ids),
        "held_out_episodes": len(test_ids),
    }


def health_warnings(results: Mapping[str, Any], min_plannability: float) -> list[str]:
    """Plain-language warnings about a model that planning cannot use, from :func:`run_diagnostics`.

    A latent can train to a low loss and still ignore what the actions move: on the pixel wall, one
    seed's encoder kept the door and lost the ball, so nothing in its latent changed within an
    episode and every prediction was trivially right (plannability 0.51, docs/EXPERIMENTS.md).
    Evaluating such a model costs minutes for a 0% result; these say so before it runs.
    """
    warnings = []
    not_finite = sorted(k for k, v in results.items() if isinstance(v, float) and not math.isfinite(v))
    if not_finite:
        warnings.append(
            f"{', '.join(not_finite)} came out NaN/inf: the model's latents or the data's states are not finite "
            "(a diverged model, or constant state columns for the probe); do not trust these figures"
        )
    if results["plannability"] < min_plannability:
        warnings.append(
            f"plannability {results['plannability']:.2f} < {min_plannability}: the true actions beat random ones in "
            f"only {results['plannability']:.0%} of comparisons (chance: 50%), so the latent barely responds to "
            "actions and planning on it will likely fail; retrain (e.g. another seed) and check probe_r2"
        )
    if results["pred_error"] >= results["copy_baseline_error"]:
        warnings.append(
            f"open-loop prediction error {results['pred_error']:.4g} is no better than repeating the last latent "
            f"({results['copy_baseline_error']:.4g}): the predictor has learned no dynamics"
        )
    return warnings
