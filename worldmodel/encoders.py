"""Observation encoders: a normalised observation batch ``(N, *obs_shape)`` -> latent ``(N, D)``.

Both take ``obs_shape`` and ``latent_dim`` from the data/model config so Hydra can build either one
from ``configs/model/*.yaml`` (``_target_``). Input normalisation happens in ``WorldModel.encode``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def mlp(in_dim: int, hidden_dim: int, depth: int, out_dim: int) -> nn.Sequential:
    """``depth`` hidden layers with LayerNorm + GELU; LayerNorm keeps training stable without tuning."""
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(in_dim if i == 0 else hidden_dim, hidden_dim), nn.LayerNorm(hidden_dim), nn.GELU()]
    layers.append(nn.Linear(hidden_dim if depth else in_dim, out_dim))
    return nn.Sequential(*layers)


class MLPEncoder(nn.Module):
    """For state vectors ``(N, S)``."""

    def __init__(self, obs_shape: Sequence[int], latent_dim: int, hidden_dim: int, depth: int) -> None:
        super().__init__()
        self.net = mlp(int(obs_shape[-1]), hidden_dim, depth, latent_dim)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs)


class CNNEncoder(nn.Module):
    """For images ``(N, H, W, C)`` (channels last, as envs return them).

    Stride-2 4x4 convolutions halve the image each layer; a linear head maps the flattened feature
    map to the latent. ``C`` may be 3 * k for k frames stacked along the channel axis.
    """

    def __init__(self, obs_shape: Sequence[int], latent_dim: int, channels: Sequence[int]) -> None:
        super().__init__()
        height, width, in_channels = (int(s) for s in obs_shape)
        layers: list[nn.Module] = []
        for out_channels in channels:
            layers += [nn.Conv2d(in_channels, out_channels, 4, stride=2, padding=1), nn.GELU()]
            in_channels = out_channels
        self.conv = nn.Sequential(*layers, nn.Flatten())
        with torch.no_grad():
            flat = self.conv(torch.zeros(1, int(obs_shape[2]), height, width)).shape[1]
        self.head = nn.Linear(flat, latent_dim)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(obs.permute(0, 3, 1, 2)))


class SpatialSoftArgmax(nn.Module):
    """Feature maps ``(N, K, H, W)`` -> the expected image coordinates of each map ``(N, 2K)`` in [-1, 1].

    A softmax over each map's pixels (with a learned temperature) turns it into a distribution over
    positions; its mean is a differentiable "where is this feature" (Levine et al., 2016).
    """

    def __init__(self, height: int, width: int) -> None:
        super().__init__()
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, height), torch.linspace(-1, 1, width), indexing="ij")
        self.register_buffer("grid", torch.stack([xs.flatten(), ys.flatten()], dim=1), persistent=False)
        self.log_temperature = nn.Parameter(torch.zeros(()))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax(features.flatten(2) / self.log_temperature.exp(), dim=-1)  # (N, K, HW)
        return (weights @ self.grid).flatten(1)  # (N, K, 2) -> (N, 2K)


class KeypointEncoder(nn.Module):
    """For images ``(N, H, W, C)``: a conv trunk, one soft-argmax keypoint per output map, an MLP head.

    Why: trained with the JEPA loss alone, the plain :class:`CNNEncoder` kept what was cheapest to
    predict and encoded the reacher's elbow poorly (docs/EXPERIMENTS.md). Keypoints are image
    coordinates by construction, so the latent is built from *where* things are. It wins on the arm
    and loses to the CNN on pixel umaze, so tasks choose (``pixel_encoder`` in configs/task/*.yaml).
    ``strides`` gives each 3x3 conv's stride (2 halves the map).
    """

    def __init__(self, obs_shape: Sequence[int], latent_dim: int, channels: Sequence[int],
                 strides: Sequence[int], keypoints: int, hidden_dim: int) -> None:
        super().__init__()
        height, width, in_channels = (int(s) for s in obs_shape)
        layers: list[nn.Module] = []
        for out_channels, stride in zip(channels, strides, strict=True):
            layers += [nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1), nn.GELU()]
            in_channels = out_channels
        layers.append(nn.Conv2d(in_channels, keypoints, 1))
        self.conv = nn.Sequential(*layers)
        with torch.no_grad():
            map_height, map_width = self.conv(torch.zeros(1, int(obs_shape[2]), height, width)).shape[-2:]
        self.soft_argmax = SpatialSoftArgmax(map_height, map_width)
        self.head = mlp(2 * keypoints, hidden_dim, 1, latent_dim)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.head(self.soft_argmax(self.conv(obs.permute(0, 3, 1, 2))))
