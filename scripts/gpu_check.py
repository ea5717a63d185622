"""Train and plan on CUDA for a few hundred steps, beside the same run on CPU, and print both.

    python scripts/gpu_check.py                       # reacher pixels: 300 steps, 5 episodes per device
    python scripts/gpu_check.py task=wall steps=500 episodes=10 devices=[cuda,cpu]

The data is collected once (on CPU, ``collect_episodes`` episodes); each device then trains a model of
the recipe from it with the same seed (``scripts/train.py device=...``) and plans the same held-out
pairs (``scripts/evaluate.py``, JEPA only), each step a fresh process. Writes ``gpu_check.json`` in
``out``: per device the training samples/s and minutes, success and median plan ms, and the ratios
to the last device. Nothing in CI needs a GPU: asked for ``cuda`` without one, it stops in one line.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig

from envs.errors import UserInputError
from worldmodel.runtime import cli_main, experiment_name, prepare_run_dir

SCRIPTS = Path(__file__).resolve().parent


def run(script: str, overrides: list[str]) -> None:
    command = [sys.executable, str(SCRIPTS / script), *overrides]
    print(f"\n### {' '.join(command[1:])}", flush=True)
    if subprocess.run(command, check=False).returncode != 0:
        raise UserInputError(f"{script} failed (command above)")


def device_run(cfg: DictConfig, run_dir: Path, device: str, recipe: list[str]) -> dict[str, Any]:
    """Train and plan on ``device``; its figures."""
    folder = run_dir / device
    run("train.py", [*recipe, f"data={run_dir / 'collect'}", f"steps={cfg.steps}", f"seed={cfg.seed}",
                     f"device={device}", f"out={folder / 'train'}"])
    run("evaluate.py", [f"checkpoint={folder / 'train'}", *recipe, "agents=[jepa]", f"episodes={cfg.episodes}",
                        f"seed={cfg.eval_seed}", "video.episodes=0", f"device={device}", f"out={folder / 'evaluate'}"])
    train = json.loads((folder / "train" / "summary.json").read_text())
    jepa = json.loads((folder / "evaluate" / "results.json").read_text())["agents"]["jepa"]
    return {"device": torch.cuda.get_device_name(0) if device.startswith("cuda") else "cpu",
            "train_samples_per_s": train["samples_per_s"], "train_min": train["seconds_this_run"] / 60,
            "success": jepa["success_rate"], "plan_ms": jepa["plan_ms_median"], "episodes_per_s": jepa["episodes_per_s"]}


@hydra.main(config_path="../configs", config_name="gpu_check", version_base="1.3")
@cli_main
def main(cfg: DictConfig) -> None:
    if any(d.startswith("cuda") for d in cfg.devices) and not torch.cuda.is_available():
        raise UserInputError("no CUDA device here (torch.cuda.is_available() is False); run it on a GPU machine, "
                             "or devices=[cpu] to try the script")
    run_dir = prepare_run_dir(cfg.out, cfg)
    recipe = [f"experiment={experiment_name()}", f"task={cfg.task.name}", f"obs={cfg.obs}"]
    run("collect.py", [*recipe, f"episodes={cfg.collect_episodes}", f"seed={cfg.seed}", f"out={run_dir / 'collect'}"])
    measured = {device: device_run(cfg, run_dir, device, recipe) for device in cfg.devices}
    base = measured[cfg.devices[-1]]
    for figures in measured.values():
        figures["train_speedup"] = figures["train_samples_per_s"] / base["train_samples_per_s"]
        figures["plan_speedup"] = base["plan_ms"] / figures["plan_ms"]
    (run_dir / "gpu_check.json").write_text(json.dumps({"task": cfg.task.name, "obs": cfg.obs, "steps": cfg.steps,
                                                         "episodes": cfg.episodes, "devices": measured}, indent=2))
    print(f"\n{'device':<28} {'train samples/s':>15} {'train min':>9} {'success':>8} {'plan ms':>8} "
          f"{'train x':>8} {'plan x':>7}")
    for figures in measured.values():
        print(f"{figures['device'][:28]:<28} {figures['train_samples_per_s']:>15,.0f} {figures['train_min']:>9.2f} "
              f"{figures['success']:>8.0%} {figures['plan_ms']:>8.1f} {figures['train_speedup']:>8.2f} "
              f"{figures['plan_speedup']:>7.2f}")
    print(f"results: {run_dir / 'gpu_check.json'}")


if __name__ == "__main__":
    main()
