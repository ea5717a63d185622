"""Collect exploration rollouts into a Minari dataset.

    python scripts/collect.py task=wall obs=pixels episodes=200 out=PATH
    python scripts/collect.py ... resume=true          # after Ctrl-C or a kill: continue to `episodes`
    python scripts/collect.py ... overwrite=true       # replace the dataset in PATH
    python scripts/collect.py ... policy=ou policy.sigma=0.5   # default: the task's collect.policy

Writes into ``out``: config.yaml, summary.json (episodes, frames, frames/s, coverage, bytes on disk)
and the dataset ``<task>-<obs>-v0/`` (read it with ``envs.dataset.load_episodes(out)``).
"""

from __future__ import annotations

import json
import signal

import hydra
from omegaconf import DictConfig, OmegaConf, open_dict

from envs.collection import CollectionSpec, CoverageGrid, collect
from envs.writer import StorageOptions
from worldmodel.runtime import claim_run_dir, cli_main, record_run


@hydra.main(config_path="../configs", config_name="collect", version_base="1.3")
@cli_main
def main(cfg: DictConfig) -> None:
    if cfg.get("policy") is None:  # the task's default, recorded in config.yaml like a chosen one
        with open_dict(cfg):
            cfg.policy = hydra.compose(config_name=f"policy/{cfg.task.collect.policy}").policy
    run_dir = claim_run_dir(cfg.out, "collect")
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # `kill` stops like Ctrl-C: all kept
    spec = CollectionSpec(
        task=cfg.task.name,
        obs=cfg.obs,
        image_size=cfg.image_size,
        seed=cfg.seed,
        policy=OmegaConf.to_container(cfg.policy, resolve=True),
    )
    summary = collect(
        spec,
        run_dir / spec.dataset_id,
        cfg.episodes,
        coverage=CoverageGrid(**OmegaConf.to_container(cfg.task.collect.coverage)),
        storage=StorageOptions(**cfg.storage),
        workers=cfg.workers,
        start_method=cfg.start_method,
        resume=cfg.resume,
        overwrite=cfg.overwrite,
        progress=cfg.progress,
        on_start=lambda: record_run(run_dir, cfg),  # once the dataset is accepted: a refusal rewrites nothing
    )
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
