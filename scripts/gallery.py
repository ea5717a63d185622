"""Render a PNG grid per task: several start observations beside their goal observations, at every size.

python scripts/gallery.py                                     # every task, 4 pairs, 64 and 256 px
python scripts/gallery.py tasks=[reacher,wall] pairs=2 sizes=[64] out=/tmp/gallery
"""

from __future__ import annotations

import shutil
from pathlib import Path

import hydra
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from omegaconf import DictConfig  # noqa: E402
from tqdm import tqdm  # noqa: E402

import envs  # noqa: E402
from envs.errors import UserInputError  # noqa: E402
from worldmodel.runtime import cli_main, prepare_run_dir  # noqa: E402


def task_pairs(task: str, pairs: int, sizes: list[int], seed: int) -> list[list[np.ndarray]]:
    """Per pair: [start, goal] frames for each size, in that order."""
    env = envs.make(task, obs="state")
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(pairs):
        env.reset(options=env.unwrapped.sample_task(rng))
        row = []
        for size in sizes:
            row += [env.unwrapped.render_frame(size), env.unwrapped.render_goal_frame(size)]
        rows.append(row)
    env.close()
    return rows


def draw_grid(task: str, rows: list[list[np.ndarray]], sizes: list[int], path: Path) -> None:
    """One row per pair; small frames are drawn with nearest-neighbour pixels so their detail is honest."""
    titles = [f"{kind} {size}px" for size in sizes for kind in ("start", "goal")]
    fig, axes = plt.subplots(
        len(rows), len(titles), figsize=(1.6 * len(titles), 1.6 * len(rows)), squeeze=False
    )
    for r, row in enumerate(rows):
        for c, frame in enumerate(row):
            ax = axes[r, c]
            ax.imshow(frame, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(titles[c], fontsize=8)
    fig.suptitle(task, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


@hydra.main(config_path="../configs", config_name="gallery", version_base="1.3")
@cli_main
def main(cfg: DictConfig) -> None:
    if cfg.tasks is None:
        tasks = envs.task_names()
    else:  # tasks=wall is a plain string on the command line
        tasks = [cfg.tasks] if isinstance(cfg.tasks, str) else list(cfg.tasks)
    unknown = [t for t in tasks if t not in envs.task_names()]
    if unknown:
        raise UserInputError(f"unknown task(s) {unknown}; choose from: {', '.join(envs.task_names())}")
    sizes = list(cfg.sizes)
    if not sizes or any(not isinstance(s, int) or s < 1 for s in sizes):
        raise UserInputError(f"sizes must be a non-empty list of positive integers, got {sizes}")
    if not isinstance(cfg.pairs, int) or cfg.pairs < 1:
        raise UserInputError(f"pairs must be a positive integer, got {cfg.pairs}")
    run_dir = prepare_run_dir(cfg.out, cfg)
    copy_dir = prepare_run_dir(cfg.copy_to) if cfg.copy_to is not None else None
    for task in tqdm(tasks, desc="gallery"):
        path = run_dir / f"{task}.png"
        draw_grid(task, task_pairs(task, cfg.pairs, sizes, cfg.seed), sizes, path)
        if copy_dir is not None:
            shutil.copy(path, copy_dir / path.name)
    print(f"gallery written to {run_dir}" + (f" and copied to {copy_dir}" if copy_dir else ""))


if __name__ == "__main__":
    main()
