"""Episode videos: the observation beside the goal, energy and distance over time drawn under them."""

from __future__ import annotations

import os
from pathlib import Path

import imageio.v2 as imageio
import matplotlib
import numpy as np

matplotlib.use("Agg")  # headless: no display on servers
import matplotlib.pyplot as plt  # noqa: E402

CURSOR_COLOR = np.array([220, 40, 40], np.uint8)


def _curves(
    distances: list[float], energies: list[float], title: str, width: int, height: int
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """The plot as an RGB array and, for every step, the pixel column of that step's x position."""
    dpi = 100
    fig, ax = plt.subplots(figsize=(width / dpi, height / dpi), dpi=dpi)
    steps = np.arange(len(distances))
    lines = ax.plot(steps, distances, color="tab:blue", label="distance (left)")
    ax.set_xlim(0, max(len(distances) - 1, 1))
    ax.set_title(title, fontsize=8)
    ax.tick_params(labelsize=7)
    if np.isfinite(energies).any():  # agents without a planner (random) have no energy
        twin = ax.twinx()
        lines += twin.plot(steps[: len(energies)], energies, color="tab:orange", label="energy (right)")
        twin.tick_params(labelsize=7)
    ax.legend(handles=lines, fontsize=7, loc="upper right", framealpha=0.6)
    fig.tight_layout(pad=0.3)
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    columns = ax.transData.transform(np.stack([steps, np.zeros_like(steps)], axis=1))[:, 0]
    top, bottom = fig.bbox.height - ax.bbox.y1, fig.bbox.height - ax.bbox.y0
    plt.close(fig)
    rows = np.arange(int(top), int(bottom))
    return image, (np.clip(columns.round().astype(int), 0, image.shape[1] - 1), rows)


def episode_frames(
    frames: list[np.ndarray], goal: np.ndarray, distances: list[float], energies: list[float], title: str
) -> list[np.ndarray]:
    """Compose one video frame per observation: ``[observation | goal]`` over the curves with a cursor.

    ``frames[t]`` is the view after ``t`` steps, ``distances[t]`` its distance, ``energies[t]`` the
    energy of the plan made there.
    """
    size = frames[0].shape[0]
    plot, (columns, rows) = _curves(distances, energies, title, width=2 * size, height=max(3 * size // 4, 120))
    composed = []
    for t, frame in enumerate(frames):
        panel = plot.copy()
        panel[rows, columns[min(t, len(columns) - 1)]] = CURSOR_COLOR
        composed.append(np.concatenate([np.concatenate([frame, goal], axis=1), panel], axis=0))
    return composed


def write_video(path: str | os.PathLike, frames: list[np.ndarray], fps: int) -> Path:
    """Write an H.264 mp4 (dimensions padded to even numbers, as the codec requires)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = frames[0].shape[:2]
    pad = ((0, height % 2), (0, width % 2), (0, 0))
    imageio.mimwrite(path, [np.pad(f, pad) for f in frames], fps=fps, macro_block_size=1)
    return path
