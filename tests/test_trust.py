"""Trust (issue 26): loading runs no code, flags are booleans, one run owns its folder, bad data is named.

The attacks and bad command lines come from :mod:`worldmodel.reliability`, the same catalogue that
``scripts/reliability.py`` runs through the real scripts for docs/RELIABILITY.md.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from safetensors import SafetensorError
from test_train import SMALL, reacher_state, train_cfg  # noqa: E402  (tests/ is on sys.path under pytest)

import worldmodel.checkpoint as checkpoint_module
from agents.gcbc import GCBCPolicy, load_gcbc, save_gcbc
from envs.builder import build
from envs.collection import CollectionSpec, collect
from envs.dataset import load_episodes
from envs.errors import UserInputError
from envs.writer import DatasetWriter
from worldmodel.checkpoint import load_world_model, read_checkpoint
from worldmodel.diagnostics import health_warnings
from worldmodel.reliability import (
    ATTACKS,
    BAD_INPUTS,
    TINY_MODEL,
    corrupt_tensor_bytes,
    craft_checkpoint,
    rewrite_header,
    tiny_checkpoint,
)
from worldmodel.runtime import LOCK_FILE, claim_run_dir, cli_main
from worldmodel.train import train
from worldmodel.validation import MIN_IMAGE_SIZE, check_script_config
from worldmodel.world_model import build_encoder

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"


def composed(name: str, *overrides: str):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(name, overrides=list(overrides))


@pytest.fixture(scope="module")
def genuine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "model.safetensors", composed("train", *TINY_MODEL))


def script(name: str, *args: str, timeout: int = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / f"{name}.py"), *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with a hash of its bytes: equal snapshots mean nothing was touched."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != LOCK_FILE}


# 1. Loading runs no code ---------------------------------------------------------------------------------

def test_the_genuine_checkpoint_loads(genuine: Path) -> None:
    model, cfg = load_world_model(genuine, device="cpu")
    assert model.encode(np.zeros((3, 10), np.float32)).shape == (3, 8) and cfg.meta.task == "reacher"


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_a_crafted_checkpoint_is_refused_and_runs_nothing(attack: str, genuine: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    crafted = craft_checkpoint(genuine, tmp_path / "crafted.safetensors", attack, marker)
    with pytest.raises(UserInputError, match=re.escape(ATTACKS[attack][1])):
        load_world_model(crafted, device="cpu")
    assert not marker.exists()


def test_the_attacks_would_have_run_without_the_allowlist(genuine: Path, tmp_path: Path) -> None:
    """The attack files are real: Hydra's own instantiate runs the file-writing one."""
    from hydra.utils import instantiate

    marker = tmp_path / "ran"
    crafted = craft_checkpoint(genuine, tmp_path / "c.safetensors", "file-writing target (builtins.open)", marker)
    _, info = read_checkpoint(crafted)
    instantiate(info["config"].model.encoder).close()
    assert marker.exists()


def test_evaluate_refuses_a_crafted_checkpoint_in_one_line(genuine: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    crafted = craft_checkpoint(genuine, tmp_path / "c.safetensors", "shell command as the encoder (subprocess.run)",
                               marker)
    result = script("evaluate", f"checkpoint={crafted}", f"out={tmp_path / 'eval'}")
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: config model.encoder: _target_ 'subprocess.run' is not one of")
    assert not marker.exists()


def gcbc_file(path: Path, encoder_cfg: dict) -> Path:
    kwargs = {"encoder_cfg": OmegaConf.create({"_target_": "worldmodel.encoders.MLPEncoder", "hidden_dim": 8,
                                               "depth": 1}),
              "obs_shape": [4], "action_dim": 2, "latent_dim": 4, "hidden_dim": 8, "depth": 1}
    save_gcbc(path, GCBCPolicy(**kwargs), kwargs)
    if encoder_cfg:  # the header's encoder config rewritten; the tensors and their checksum stay valid
        rewrite_header(path, "gcbc", lambda text: json.dumps({**json.loads(text), "encoder_cfg": encoder_cfg}))
    return path


def test_gcbc_weights_build_only_project_encoders(tmp_path: Path) -> None:
    policy, kwargs = load_gcbc(gcbc_file(tmp_path / "ok.safetensors", {}), torch.device("cpu"))
    assert policy(torch.zeros(2, 4), torch.zeros(2, 4)).shape == (2, 2)
    marker = tmp_path / "ran"
    evil = gcbc_file(tmp_path / "evil.safetensors", {"_target_": "builtins.open", "file": str(marker), "mode": "w"})
    with pytest.raises(UserInputError, match="gcbc encoder_cfg: _target_ 'builtins.open' is not one of"):
        load_gcbc(evil, torch.device("cpu"))
    assert not marker.exists()


def test_every_shipped_config_builds_and_unknown_arguments_are_refused() -> None:
    """The allowlist covers the project's own configs; each argument must be one the class takes."""
    built = set()
    for planner in sorted(p.stem for p in (CONFIGS / "planner").glob("*.yaml")):
        cfg = composed("evaluate", "checkpoint=c", f"planner={planner}")
        built.add(type(build(cfg.planner.optimizer, horizon=cfg.planner.horizon, action_dim=2)).__name__)
    for energy in sorted(p.stem for p in (CONFIGS / "energy").glob("*.yaml")):
        built.add(type(build(composed("evaluate", "checkpoint=c", f"energy={energy}").energy)).__name__)
    for policy in sorted(p.stem for p in (CONFIGS / "policy").glob("*.yaml")):
        built.add(type(build(composed("collect", f"policy={policy}").policy)).__name__)
    for regularizer in ("vicreg", "sigreg", "none"):
        built.add(type(build(composed("train", "data=d", f"model/regularizer={regularizer}").model.regularizer)).__name__)
    assert {"CEM", "ICEM", "MPPI", "GradientPlanner", "CEMGradient", "Energy", "Mixture", "WaypointFollower",
            "OrnsteinUhlenbeck", "UniformRandom", "VICReg", "SIGReg", "NoRegularizer"} <= built
    vicreg = {"_target_": "worldmodel.losses.VICReg", "std_weight": 1.0, "cov_weight": 0.04, "std_target": 1.0,
              "eps": 1e-4}
    with pytest.raises(UserInputError, match="VICReg takes no argument.s. evil"):
        build({**vicreg, "evil": 2}, "model.regularizer")
    with pytest.raises(UserInputError, match="missing required argument.s. eps"):
        build({k: v for k, v in vicreg.items() if k != "eps"}, "model.regularizer")


# 2 and 7. Every flag is a boolean, every count a count: one line, before any file is touched ------------

@pytest.mark.parametrize(("name", "overrides", "message"), BAD_INPUTS,
                         ids=[f"{s}:{' '.join(o)}" for s, o, _ in BAD_INPUTS])
def test_a_bad_command_line_is_one_line(name: str, overrides: list[str], message: str) -> None:
    with pytest.raises(UserInputError) as err:
        check_script_config(composed(name, *overrides), name)
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(("name", "overrides"), [
    ("collect", []), ("collect", ["obs=state", "workers=2", "storage.compression=null"]), ("train", ["data=d"]),
    ("train", ["data=d", "obs=pixels", "task=wall"]), ("evaluate", ["checkpoint=c"]),
    ("probe", ["checkpoint=c", "data=d"]), ("pipeline", []), ("gallery", []), ("benchmark", []),
])
def test_the_defaults_pass_the_checks(name: str, overrides: list[str]) -> None:
    check_script_config(composed(name, *overrides), name)


def test_the_smallest_image_size_is_what_the_cnn_takes() -> None:
    cnn = composed("train", "data=d", "obs=pixels", "task=wall", "model.pixel_encoder=cnn").model.encoder
    assert build_encoder(cnn, (MIN_IMAGE_SIZE, MIN_IMAGE_SIZE, 6), 8)(torch.zeros(2, 16, 16, 6)).shape == (2, 8)
    with pytest.raises(UserInputError, match=r"model.encoder cannot take observations of shape \[15, 15, 6\]"):
        build_encoder(cnn, (MIN_IMAGE_SIZE - 1, MIN_IMAGE_SIZE - 1, 6), 8)


def test_pipeline_force_no_deletes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "run"
    (out / "collect").mkdir(parents=True)
    (out / "collect" / "summary.json").write_text("{}")
    before = snapshot(out)
    result = script("pipeline", f"out={out}", "force=no")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["error: force must be true or false, got 'no' (str)"]
    assert snapshot(out) == before


# 3 and 6. One run owns its folder; a refused run rewrites nothing --------------------------------------

@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("collect") / "run"
    result = script("collect", "task=reacher", "obs=state", "episodes=3", "workers=1", "progress=false", f"out={out}")
    assert result.returncode == 0, result.stderr[-2000:]
    return out


@pytest.mark.parametrize(("name", "args", "message"), [
    ("collect", ["episodes=2"], "pass resume=true to continue it or overwrite=true"),
    ("collect", ["episodes=2", "overwrite=no"], "overwrite must be true or false"),
    ("collect", ["episodes=4", "resume=true", "seed=1"], "it was collected with seed=0 (now 1)"),
    ("train", ["data=DATA"], "holds a collect run; give this train run another out="),
])
def test_a_refused_run_leaves_the_run_it_refused_as_it_was(dataset: Path, name: str, args: list[str],
                                                           message: str) -> None:
    before = snapshot(dataset)
    assert {"config.yaml", ".hydra/config.yaml", ".hydra/overrides.yaml", "summary.json"} <= before.keys()
    args = [a.replace("DATA", str(dataset)) for a in args] + (["workers=1"] if name == "collect" else [])
    result = script(name, "task=reacher", "obs=state", f"out={dataset}", *args)
    assert result.returncode == 2, result.stderr[-2000:]
    [line] = result.stderr.strip().splitlines()
    assert message in line
    assert snapshot(dataset) == before


def hold_lock(folder: Path) -> subprocess.Popen:
    """Another process that claims ``folder`` as a collect run and then waits."""
    code = (f"from worldmodel.runtime import claim_run_dir; claim_run_dir({str(folder)!r}, 'collect'); "
            "print('held', flush=True); import time; time.sleep(600)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_locked_folder_is_refused_and_a_killed_holder_does_not_block(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    holder = hold_lock(folder)
    try:
        with pytest.raises(UserInputError, match="is in use by another running collect"):
            claim_run_dir(folder, "collect")
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert claim_run_dir(folder, "collect") == folder  # the kernel dropped the dead holder's lock
    assert json.loads((folder / LOCK_FILE).read_text())["pid"] == os.getpid()


def test_the_next_run_removes_what_a_kill_left_half_written(tmp_path: Path) -> None:
    stale = [tmp_path / "checkpoint" / ".latest.safetensors.tmp-4242",
             tmp_path / "reacher-state-v0" / "staging" / ".episode_000003.hdf5.tmp-77",
             tmp_path / "reacher-state-v0" / "data" / ".main_data.hdf5.tmp"]
    kept = [tmp_path / "checkpoint" / "latest.safetensors", tmp_path / "stage" / ".x.tmp-1"]
    (tmp_path / "stage").mkdir()
    (tmp_path / "stage" / LOCK_FILE).write_text("{}")  # a sub-run folder (a pipeline stage) cleans itself
    for path in stale + kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * 100)
    claim_run_dir(tmp_path, "train")
    assert not any(p.exists() for p in stale) and all(p.exists() for p in kept)


def collect_children(parent: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent:
            children.append(int(stat.parent.name))
    return children


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_two_collects_cannot_share_a_folder_and_workers_die_with_their_parent(tmp_path: Path) -> None:
    out = tmp_path / "run"
    shared = ["task=wall", "obs=pixels", "image_size=16", "workers=1", "progress=false", f"out={out}"]
    first = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "collect.py"), *shared, "episodes=3000"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    staging = out / "wall-pixels-v0" / "staging"
    deadline = time.monotonic() + 120
    while not (staging.is_dir() and any(staging.glob("episode_*.hdf5"))):
        assert time.monotonic() < deadline and first.poll() is None, "the first collect never staged an episode"
        time.sleep(0.1)
    second = script("collect", *shared, "episodes=3000", "seed=9")
    assert second.returncode == 2
    assert f"out={out} is in use by another running collect" in second.stderr.strip().splitlines()[0]
    workers = [pid for pid in collect_children(first.pid) if "python" in Path(f"/proc/{pid}/cmdline").read_text()]
    assert workers
    first.send_signal(signal.SIGKILL)  # the parent only: nothing can stop its pool
    first.wait()
    deadline = time.monotonic() + 20
    while any(alive(pid) for pid in workers):
        assert time.monotonic() < deadline, "a worker outlived its parent"
        time.sleep(0.2)
    assert "Traceback" not in first.stderr.read()
    resumed = script("collect", *shared, "episodes=2", "resume=true")
    assert resumed.returncode == 0, resumed.stderr[-2000:]  # the dead run's lock blocks nothing


# 4. Resume trains at the learning rate the config asks for ----------------------------------------------

def test_resume_uses_the_new_learning_rate(tmp_path: Path) -> None:
    episodes = reacher_state(num_episodes=10, length=20, seed=0)
    train(train_cfg(tmp_path, "steps=2", "optim.lr=1e-3", *SMALL), episodes, tmp_path)
    train(train_cfg(tmp_path, "steps=4", "resume=true", "optim.lr=1e-5", "optim.weight_decay=0", *SMALL),
          episodes, tmp_path)
    _, info = read_checkpoint(tmp_path / "checkpoint" / "latest.safetensors")
    assert [(g["lr"], g["weight_decay"]) for g in info["optim_param_groups"]] == [(1e-5, 0.0)]
    with pytest.raises(UserInputError, match="is at step 4, past steps=3; resume with steps=4 or more"):
        train(train_cfg(tmp_path, "steps=3", "resume=true", *SMALL), episodes, tmp_path)


# 5. Bad data is named as bad data ---------------------------------------------------------------------

def test_a_nan_in_a_stored_dataset_is_named_by_episode_and_field(dataset: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(dataset, copy)
    with h5py.File(copy / "reacher-state-v0" / "data" / "main_data.hdf5", "r+") as f:
        f["episode_1"]["observations"]["observation"][5, 2] = np.nan
    with pytest.raises(UserInputError, match=r"NaN/inf in episode 1's observations \(step 5\)"):
        load_episodes(copy)
    with h5py.File(copy / "reacher-state-v0" / "data" / "main_data.hdf5", "r+") as f:
        f["episode_1"]["observations"]["observation"][5, 2] = 0.0
        f["episode_2"]["actions"][7, 0] = np.inf
    with pytest.raises(UserInputError, match=r"NaN/inf in episode 2's actions \(step 7\)"):
        load_episodes(copy)


def test_probe_warns_on_a_nan_figure() -> None:
    results = {"plannability": 0.9, "pred_error": 0.1, "copy_baseline_error": 1.0, "probe_r2": float("nan")}
    [warning] = health_warnings(results, min_plannability=0.75)
    assert warning.startswith("probe_r2 came out NaN/inf")


# 7. Disk full: one line, and what was saved is kept --------------------------------------------------

def test_a_full_disk_while_checkpointing_keeps_the_last_checkpoint(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    episodes = reacher_state(num_episodes=10, length=20, seed=0)
    train(train_cfg(tmp_path, "steps=2", *SMALL), episodes, tmp_path)
    latest = tmp_path / "checkpoint" / "latest.safetensors"
    before = latest.read_bytes()

    def full_disk(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"partial")
        raise SafetensorError("I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(checkpoint_module, "save_file", full_disk)
    with pytest.raises(UserInputError, match="disk full while writing .*latest.safetensors; the previous "
                                             "latest.safetensors was kept"):
        train(train_cfg(tmp_path, "steps=4", "resume=true", *SMALL), episodes, tmp_path)
    assert latest.read_bytes() == before and not list(latest.parent.glob(".*tmp*"))


def test_a_full_disk_while_folding_keeps_the_staged_episodes(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    spec = CollectionSpec(task="reacher", obs="state", image_size=16, seed=0)
    collect(spec, tmp_path / "d", 2, workers=1, progress=False)

    def full_disk(self, main, tmp, staged):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(DatasetWriter, "_rebuild_main", full_disk)
    with pytest.raises(UserInputError, match="disk full while folding episodes .* stay staged"):
        collect(spec, tmp_path / "d", 3, workers=1, resume=True, progress=False)
    assert load_episodes(tmp_path / "d").num_episodes == 3  # 2 folded in, 1 staged: nothing lost


def test_an_oserror_for_a_full_disk_is_one_line(capsys: pytest.CaptureFixture) -> None:
    def fills_the_disk() -> None:
        raise OSError(errno.ENOSPC, "No space left on device", "metrics.csv")

    with pytest.raises(SystemExit) as exit_info:
        cli_main(fills_the_disk)()
    assert exit_info.value.code == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: disk full")


# 8. Integrity --------------------------------------------------------------------------------------------

def test_damaged_tensor_bytes_are_refused(genuine: Path, tmp_path: Path) -> None:
    damaged = tmp_path / "damaged.safetensors"
    damaged.write_bytes(genuine.read_bytes())
    corrupt_tensor_bytes(damaged)
    with pytest.raises(UserInputError, match="is corrupt: its tensors do not match the checksum"):
        load_world_model(damaged, device="cpu")
    weights = gcbc_file(tmp_path / "gcbc.safetensors", {})
    corrupt_tensor_bytes(weights, count=16)
    with pytest.raises(UserInputError, match="is corrupt: its tensors do not match the checksum"):
        load_gcbc(weights, torch.device("cpu"))
