"""Train a JEPA world model on a collected dataset.

    python scripts/train.py experiment=latent-variable task=wall-branching data=PATH out=PATH  # a recipe (configs/experiment/)
    python scripts/train.py task=reacher obs=state data=PATH out=PATH  # the default recipe
    python scripts/train.py ... resume=true                       # continue exactly where it stopped
    python scripts/train.py ... model/regularizer=sigreg          # or none (with model.ema_decay=0.99)
    torchrun --nproc_per_node=2 scripts/train.py ...              # DistributedDataParallel

Writes into ``out``: config.yaml, checkpoint/latest.safetensors, metrics.csv, tensorboard/,
loss_curve.png.
"""

from __future__ import annotations

import os
from pathlib import Path

import hydra
from omegaconf import DictConfig

from envs.dataset import load_episodes
from worldmodel.runtime import claim_run_dir, cli_main, experiment_name, record_run
from worldmodel.train import train


@hydra.main(config_path="../configs", config_name="train", version_base="1.3")
@cli_main
def main(cfg: DictConfig) -> None:
    is_main = int(os.environ.get("RANK", "0")) == 0
    run_dir = claim_run_dir(cfg.out, "train") if is_main else Path(cfg.out)  # rank 0 owns the folder
    episodes = load_episodes(cfg.data, task=cfg.task.name, obs=cfg.obs)
    train(cfg, episodes, run_dir, experiment=experiment_name(), on_start=lambda: record_run(run_dir, cfg))
    if is_main:
        print(f"checkpoint: {run_dir / 'checkpoint' / 'latest.safetensors'}")


if __name__ == "__main__":
    main()
