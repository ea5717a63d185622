"""The scale suite's measurements: FLOPs counted against the predictor's known shape, synthetic latents, the graph."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from agents.speed import landmark_scale, synthetic_latent_episodes
from worldmodel.encoders import MLPEncoder
from worldmodel.predictors import ResidualMLPPredictor
from worldmodel.speed import rollout_gflops
from worldmodel.world_model import WorldModel

ROOT = Path(__file__).resolve().parents[1]


def test_rollout_flops_are_the_predictors_matrix_products() -> None:
    """Per candidate and step the residual MLP does three products, (D + A) x h, h x h and h x D, at
    two FLOPs per multiply-add: the counted total must be exactly that, whatever the timing says."""
    latent, action, hidden, candidates, horizon = 16, 2, 32, 8, 5
    model = WorldModel(MLPEncoder([4], latent, 32, 1), ResidualMLPPredictor(latent, action, hidden, 2), [4], action, latent)
    measured = rollout_gflops(model, candidates, horizon, repeats=2)
    per_step = 2 * ((latent + action) * hidden + hidden * hidden + hidden * latent)
    assert measured["gflop"] * 1e9 == candidates * horizon * per_step
    assert measured["gflops"] > 0 and measured["ms"] > 0


def test_synthetic_latents_are_episodes_of_a_reflected_point_mass() -> None:
    episodes = synthetic_latent_episodes(2020, dim=8, length=100, seed=3)
    assert episodes.num_episodes == 20 and episodes.observations.shape == (20 * 101, 8)
    assert episodes.states.min() >= 0.0 and episodes.states.max() <= 1.0  # reflected into the unit square
    steps = np.linalg.norm(np.diff(episodes.states.reshape(20, 101, 2), axis=1), axis=-1)
    assert steps.max() < 0.2  # a damped random walk: small steps, no teleports
    again = synthetic_latent_episodes(2020, dim=8, length=100, seed=3)
    assert np.array_equal(episodes.observations, again.observations)


def test_landmark_scale_builds_the_dense_graph_on_every_observation() -> None:
    measured = landmark_scale(3030)
    assert measured["landmarks"] == 3030  # stride 1: every observation is a landmark
    assert measured["edges"] > 2 * measured["landmarks"]  # temporal edges both ways, and near neighbours
    assert measured["build_s"] > 0 and measured["goal_query_s"] > 0 and measured["peak_gb"] > 0
    assert measured["torch_threads"] == torch.get_num_threads()


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without CUDA")
def test_gpu_check_without_cuda_stops_in_one_line_before_any_work(tmp_path: Path) -> None:
    out = tmp_path / "check"
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_check.py"), f"out={out}"],
                          capture_output=True, text=True, check=False)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1].startswith("error: no CUDA device here")
    assert not out.exists() or not any(out.iterdir())  # nothing collected, nothing trained
