"""Episode videos: the observation beside the goal, energy and distance (or a pose's errors) over time drawn under them."""

from __future__ import annotations

import os
from pathlib import Path

import imageio.v2 as imageio
import matplotlib
import numpy as np

matplotlib.use("Agg")  # headless: no display on servers
import matplotlib.pyplot as plt  # noqa: E402

CURSOR_COLOR = np.array([220, 40, 40], np.uint8)
OUTLINE_COLOR = np.array([40, 170, 60], np.uint8)  # the goal's outline drawn onto video frames (Push-T's T)
ERROR_COLORS = ("tab:blue", "tab:green", "tab:purple")


def curves(
    distances: list[float], energies: list[float], errors: dict[str, tuple[np.ndarray, float]] | None = None
) -> list[tuple[str, np.ndarray, str, float | None]]:
    """What the plot under a video draws, as ``(label, values per step, axis, tolerance)``.

    A task whose goal has several errors (``envs.protocols.GoalErrors``: Push-T's block position in mm
    and angle in degrees) plots those on the left axis, each with its tolerance dashed; any other
    plots the distance. The planned energy goes on the right axis where the agent plans.
    """
    if errors:
        drawn = [(label, np.asarray(values, dtype=np.float64), "left", float(tolerance))
                 for label, (values, tolerance) in errors.items()]
    else:
        drawn = [("distance", np.asarray(distances, dtype=np.float64), "left", None)]
    if np.isfinite(energies).any():  # agents without a planner (random) have no energy
        drawn.append(("energy", np.asarray(energies, dtype=np.float64), "right", None))
    return drawn


def _curves(
    drawn: list[tuple[str, np.ndarray, str, float | None]], steps: int, title: str, width: int, height: int
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """The plot of :func:`curves` over ``steps`` frames as an RGB array and, for every step, the pixel
    column of that step's x position."""
    dpi = 100
    fig, ax = plt.subplots(figsize=(width / dpi, height / dpi), dpi=dpi)
    x = np.arange(steps)
    ax.set_xlim(0, max(steps - 1, 1))
    ax.set_title(title, fontsize=8)
    ax.tick_params(labelsize=7)
    lines, twin = [], None
    left = [c for c in drawn if c[2] == "left"]
    for color, (label, values, _, tolerance) in zip(ERROR_COLORS, left, strict=False):
        lines += ax.plot(x[: len(values)], values, color=color, label=f"{label} (left)" if len(left) == 1 else label)
        if tolerance is not None:
            ax.axhline(tolerance, color=color, linestyle="--", linewidth=0.8)
    for label, values, _, _ in (c for c in drawn if c[2] == "right"):
        twin = twin or ax.twinx()
        lines += twin.plot(x[: len(values)], values, color="tab:orange", label=f"{label} (right)")
        twin.tick_params(labelsize=7)
    ax.legend(handles=lines, fontsize=7, loc="upper right", framealpha=0.6)
    fig.tight_layout(pad=0.3)
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    columns = ax.transData.transform(np.stack([x, np.zeros_like(x)], axis=1))[:, 0]
    top, bottom = fig.bbox.height - ax.bbox.y1, fig.bbox.height - ax.bbox.y0
    plt.close(fig)
    rows = np.arange(int(top), int(bottom))
    return image, (np.clip(columns.round().astype(int), 0, image.shape[1] - 1), rows)


def draw_outline(frame: np.ndarray, corners: np.ndarray, color: np.ndarray = OUTLINE_COLOR) -> np.ndarray:
    """A copy of ``frame`` with the closed polygon ``corners (K, 2)`` ((column, row) in pixel units) drawn
    one pixel wide; the parts outside the frame are left out."""
    out = frame.copy()
    corners = np.asarray(corners, dtype=np.float64)
    for a, b in zip(corners, np.roll(corners, -1, axis=0), strict=True):
        n = int(np.ceil(2 * np.abs(b - a).max())) + 1  # two samples per pixel along the edge
        points = np.floor(a + np.linspace(0.0, 1.0, n)[:, None] * (b - a)).astype(int)
        keep = (points >= 0).all(axis=1) & (points[:, 0] < frame.shape[1]) & (points[:, 1] < frame.shape[0])
        out[points[keep, 1], points[keep, 0]] = color
    return out


def episode_frames(
    frames: list[np.ndarray],
    goal: np.ndarray,
    distances: list[float],
    energies: list[float],
    title: str,
    errors: dict[str, tuple[np.ndarray, float]] | None = None,
    outline: np.ndarray | None = None,
) -> list[np.ndarray]:
    """Compose one video frame per observation: ``[observation | goal]`` over the curves with a cursor.

    ``frames[t]`` is the view after ``t`` steps, ``distances[t]`` its distance, ``energies[t]`` the
    energy of the plan made there; ``errors`` (a task's ``goal_errors``) replace the distance curve;
    ``outline`` (the goal's ``goal_outline`` at the frames' size) is drawn onto every observation frame.
    """
    size = frames[0].shape[0]
    drawn = curves(distances, energies, errors)
    plot, (columns, rows) = _curves(drawn, len(frames), title, width=2 * size, height=max(3 * size // 4, 120))
    composed = []
    for t, frame in enumerate(frames):
        panel = plot.copy()
        panel[rows, columns[min(t, len(columns) - 1)]] = CURSOR_COLOR
        shown = frame if outline is None else draw_outline(frame, outline)
        composed.append(np.concatenate([np.concatenate([shown, goal], axis=1), panel], axis=0))
    return composed


def write_video(path: str | os.PathLike, frames: list[np.ndarray], fps: int) -> Path:
    """Write an H.264 mp4 (dimensions padded to even numbers, as the codec requires)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = frames[0].shape[:2]
    pad = ((0, height % 2), (0, width % 2), (0, 0))
    imageio.mimwrite(path, [np.pad(f, pad) for f in frames], fps=fps, macro_block_size=1)
    return path
