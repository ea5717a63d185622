"""Measure what the project survives, and write docs/RELIABILITY.md from the measurements.

    python scripts/reliability.py                   # a few minutes on 2 cores
    python scripts/reliability.py kills=20 write_docs=false

Every number in the page comes from this run: the attacks and bad command lines of
:mod:`worldmodel.reliability` go through the real scripts (a refusal must be exit 2, one line, the
expected text, and the attack's marker file must not exist); refused runs into an existing run
folder must leave every file byte-identical; ``kill -9`` at random moments (and, for collect,
during the final fold) must resume to the same dataset or weights as an uninterrupted run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import hydra
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from safetensors.torch import load_file

from agents.gcbc import GCBCPolicy, save_gcbc
from envs.dataset import load_episodes
from worldmodel.reliability import (
    ATTACKS,
    BAD_INPUTS,
    TINY_MODEL,
    corrupt_tensor_bytes,
    craft_checkpoint,
    rewrite_header,
    tiny_checkpoint,
)
from worldmodel.runtime import LOCK_FILE, cli_main, prepare_run_dir

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "RELIABILITY.md"
# The scripts run as children must import this checkout, not an installed copy; one torch thread each,
# because several run at once and spinning OpenMP threads on shared cores slowed training 50-fold.
CHILD_ENV = {**os.environ, "PYTHONPATH": str(ROOT), "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"),
             "OMP_NUM_THREADS": "1"}


@dataclass
class Outcome:
    what: str
    ok: bool
    detail: str
    trials: int = 1  # a kill scenario holds several kills, judged by the one result they resume to


def command(script: str, args: list[str]) -> list[str]:
    return [sys.executable, str(ROOT / "scripts" / f"{script}.py"), *args]


def run(script: str, args: list[str], timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(command(script, args), capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env=CHILD_ENV)


def refusal(result: subprocess.CompletedProcess, expected: str) -> tuple[bool, str]:
    """Exit 2 with exactly one ``error:`` line on stderr that contains ``expected``."""
    lines = result.stderr.strip().splitlines()
    ok = result.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0]
    return ok, lines[-1] if lines else f"exit {result.returncode}, nothing on stderr"


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != LOCK_FILE}


def temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*.tmp*") if p.is_file()]


def check_attacks(tmp: Path, parallel: int) -> list[Outcome]:
    """Crafted checkpoints through probe; crafted GCBC weights through evaluate; damaged tensors."""
    genuine = tiny_checkpoint(tmp / "genuine.safetensors", hydra.compose(config_name="train", overrides=TINY_MODEL))
    cases = []
    for i, name in enumerate(ATTACKS):
        marker = tmp / f"attack-{i}.ran"
        crafted = craft_checkpoint(genuine, tmp / f"attack-{i}.safetensors", name, marker)
        args = [f"checkpoint={crafted}", f"data={tmp / 'no-data'}", f"out={tmp / f'probe-{i}'}"]
        cases.append((f"checkpoint: {name}", "probe", args, ATTACKS[name][1], marker))
    damaged = tmp / "damaged.safetensors"
    shutil.copy(genuine, damaged)
    corrupt_tensor_bytes(damaged)
    cases.append(("checkpoint: 64 bytes of its tensor data changed", "probe",
                  [f"checkpoint={damaged}", f"data={tmp / 'no-data'}", f"out={tmp / 'probe-damaged'}"],
                  "do not match the checksum", None))
    kwargs = {"encoder_cfg": OmegaConf.create({"_target_": "worldmodel.encoders.MLPEncoder", "hidden_dim": 8,
                                               "depth": 1}),
              "obs_shape": [10], "action_dim": 2, "latent_dim": 4, "hidden_dim": 8, "depth": 1}
    for i, (name, target) in enumerate([("file-writing encoder (builtins.open)", "builtins.open"),
                                        ("shell command encoder (subprocess.run)", "subprocess.run")]):
        marker = tmp / f"gcbc-{i}.ran"
        evil = save_gcbc(tmp / f"gcbc-{i}.safetensors", GCBCPolicy(**kwargs), kwargs)
        payload = ({"_target_": target, "file": str(marker), "mode": "w"} if target == "builtins.open"
                   else {"_target_": target, "args": ["touch", str(marker)]})
        rewrite_header(evil, "gcbc", lambda text, p=payload: json.dumps({**json.loads(text), "encoder_cfg": p}))
        args = [f"checkpoint={genuine}", "agents=[gcbc]", f"gcbc.weights={evil}", "episodes=1", "video.episodes=0",
                f"out={tmp / f'evaluate-gcbc-{i}'}"]
        cases.append((f"GCBC weights: {name}", "evaluate", args, target, marker))

    def check(case: tuple) -> Outcome:
        what, script, args, expected, marker = case
        ok, line = refusal(run(script, args), expected)
        ran = marker is not None and marker.exists()
        return Outcome(what, ok and not ran, line + (" (AND THE CODE RAN)" if ran else ""))

    with ThreadPoolExecutor(parallel) as pool:
        return list(pool.map(check, cases))


def check_bad_inputs(tmp: Path, parallel: int) -> list[Outcome]:
    def check(item: tuple[int, tuple[str, list[str], str]]) -> Outcome:
        i, (script, overrides, expected) = item
        ok, line = refusal(run(script, [*overrides, f"out={tmp / f'bad-{i}'}"]), expected)
        return Outcome(f"`{script} {' '.join(overrides)}`".replace("` ", "`").strip(), ok, line)

    with ThreadPoolExecutor(parallel) as pool:
        return list(pool.map(check, enumerate(BAD_INPUTS)))


def hold_lock(folder: Path) -> subprocess.Popen:
    code = (f"from worldmodel.runtime import claim_run_dir; claim_run_dir({str(folder)!r}, 'collect'); "
            "print('held', flush=True); import time; time.sleep(600)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT, env=CHILD_ENV)
    proc.stdout.readline()
    return proc


def check_refusals(tmp: Path) -> list[Outcome]:
    """Runs refused by an existing collect run must leave its files (config.yaml, .hydra/, data) as they were."""
    out = tmp / "existing"
    base = ["task=reacher", "obs=state", f"out={out}"]
    first = run("collect", [*base, "episodes=3", "workers=1", "progress=false"])
    if first.returncode != 0:
        raise RuntimeError(f"the reference collect failed: {first.stderr[-2000:]}")
    cases = [
        ("collect into it again without resume/overwrite", "collect", ["episodes=2", "workers=1"], "pass resume=true"),
        ("collect with overwrite=no", "collect", ["episodes=2", "overwrite=no"], "overwrite must be true or false"),
        ("collect with resume=maybe", "collect", ["episodes=2", "resume=maybe"], "resume must be true or false"),
        ("resume with another seed", "collect", ["episodes=4", "resume=true", "seed=1", "workers=1"], "seed=0 (now 1)"),
        ("train out=<the collect folder>", "train", [f"data={out}"], "holds a collect run"),
        ("collect while another run holds the folder", "collect", ["episodes=4", "resume=true"], "is in use by another"),
    ]
    outcomes = []
    for what, script, args, expected in cases:
        before = snapshot(out)
        holder = hold_lock(out) if "holds the folder" in what else None
        try:
            ok, line = refusal(run(script, [*base, *args]), expected)
        finally:
            if holder is not None:
                holder.kill()
                holder.wait()
        unchanged = snapshot(out) == before
        outcomes.append(Outcome(what, ok and unchanged, line + ("" if unchanged else " (FILES CHANGED)")))
    return outcomes


def kill_cycles(script: str, args: list[str], out: Path, kills: int, rng: np.random.Generator,
                window: tuple[float, float], writing: str, interrupt_first: bool = False) -> tuple[int, int, int]:
    """Start ``script`` with ``resume=true`` and ``kill -9`` its process group, ``kills`` times.

    Every third kill is timed for a write instead of a random moment: it waits for a temp file
    matching ``writing`` (a checkpoint's; with ``interrupt_first``, a Ctrl-C is sent at a random
    moment first and the kill waits for the fold that follows it), killing by the window's end plus
    5 s whatever happens. Returns (kills that hit a running process, of them while a file was
    half-written, temp files the kills left behind for the next start to remove).
    """
    hit = inside_write = left = 0
    for k in range(kills):
        proc = subprocess.Popen(command(script, [*args, f"out={out}", "resume=true"]), cwd=ROOT, env=CHILD_ENV,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        timed = k % 3 == 2
        moment = time.monotonic() + rng.uniform(*window)
        deadline = time.monotonic() + window[1] + 5.0 if timed else moment
        interrupted = False
        while time.monotonic() < deadline and proc.poll() is None:
            if timed and any(out.glob(writing)):
                break
            if timed and interrupt_first and not interrupted and time.monotonic() > moment:
                proc.send_signal(signal.SIGINT)
                interrupted = True
            time.sleep(0.001 if timed else 0.05)
        if proc.poll() is None:
            half_written = temp_files(out)
            os.killpg(proc.pid, signal.SIGKILL)
            hit += 1
            inside_write += bool(half_written)
        proc.wait()
        left += len(temp_files(out))
    return hit, inside_write, left


def check_kills(tmp: Path, kills: int, seed: int) -> list[Outcome]:
    rng = np.random.default_rng(seed)
    outcomes = []
    collect_args = ["task=wall", "obs=pixels", "image_size=16", "episodes=600", "workers=2", "progress=false"]
    reference, killed = tmp / "collect-reference", tmp / "collect-killed"
    run("collect", [*collect_args, f"out={reference}"])
    hit, inside, left = kill_cycles("collect", collect_args, killed, kills, rng, (2.0, 8.0),
                                   "*/data/.main_data.hdf5.tmp-*", interrupt_first=True)
    final = run("collect", [*collect_args, f"out={killed}", "resume=true"])
    a, b = load_episodes(reference), load_episodes(killed)
    same = final.returncode == 0 and all(np.array_equal(getattr(a, f), getattr(b, f)) for f in
                                         ("observations", "actions", "states", "goals", "episode_lengths"))
    outcomes.append(Outcome(
        f"collect (pixel wall, 600 episodes, 2 workers): {hit} kills, {inside} while a file was half-written "
        f"(every third timed inside the fold that follows a Ctrl-C), then resume=true", same and not temp_files(killed),
        f"dataset {'identical' if same else 'DIFFERENT'} to an uninterrupted run; {left} temp files left by the "
        f"kills, {len(temp_files(killed))} after the next run", trials=hit))

    data = tmp / "train-data"
    run("collect", ["task=reacher", "obs=state", "episodes=20", "workers=1", "progress=false", f"out={data}"])
    train_args = ["task=reacher", "obs=state", f"data={data}", "steps=6000", "checkpoint_every=10", "log_every=10",
                  "device=cpu", "batch_size=32", "model.latent_dim=16", "model.encoder_by_obs.state.hidden_dim=64",
                  "model.predictor.hidden_dim=64"]
    reference, killed = tmp / "train-reference", tmp / "train-killed"
    run("train", [*train_args, f"out={reference}"])
    hit, inside, left = kill_cycles("train", train_args, killed, kills, rng, (4.0, 9.0),
                                   "checkpoint/.latest.safetensors.tmp-*")
    final = run("train", [*train_args, f"out={killed}", "resume=true"])
    a = load_file(str(reference / "checkpoint" / "latest.safetensors"))
    b = load_file(str(killed / "checkpoint" / "latest.safetensors"))
    same = final.returncode == 0 and a.keys() == b.keys() and all(
        torch.equal(a[k], b[k]) for k in a if not k.startswith("rng"))
    outcomes.append(Outcome(
        f"train (state reacher, 6000 steps, a checkpoint every 10): {hit} kills, {inside} while a checkpoint "
        "was half-written (every third timed for one), then resume=true", same and not temp_files(killed),
        f"weights and optimizer state {'bit-identical' if same else 'DIFFERENT'} to an uninterrupted run; {left} "
        f"temp files left by the kills, {len(temp_files(killed))} after the next run", trials=hit))
    return outcomes


def section(title: str, outcomes: list[Outcome]) -> str:
    passed, tried = sum(o.trials for o in outcomes if o.ok), sum(o.trials for o in outcomes)
    rows = "\n".join(f"| {'yes' if o.ok else '**NO**'} | {o.what} | {o.detail.replace('|', '/')} |" for o in outcomes)
    return f"## {title}: {passed} of {tried}\n\n| ok | case | what happened |\n|---|---|---|\n{rows}\n"


def write_doc(results: dict[str, list[Outcome]], seconds: float) -> str:
    summary = "\n".join(f"| {title} | {sum(x.trials for x in o)} | {sum(x.trials for x in o if x.ok)} |"
                        for title, o in results.items())
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = (
        "# Reliability\n\n"
        f"Generated by `python scripts/reliability.py` on {when} in {seconds / 60:.1f} minutes "
        f"(hydra-core {hydra.__version__}, torch {torch.__version__}); do not edit by hand. "
        "The same attacks and bad inputs run in-process in `tests/test_trust.py`.\n\n"
        "| what was tried | cases | as it should be |\n|---|---|---|\n" + summary + "\n\n"
        "A refusal counts when the script exits 2 with one `error:` line naming the problem and, for an attack, "
        "the file its code would have created does not exist. Attacks edit a genuine checkpoint's stored config "
        "and recompute its checksum, so only the rule that a config can build nothing but the project's own "
        "classes (`envs/builder.py`) stands in the way.\n\n"
        + "\n".join(section(title, outcomes) for title, outcomes in results.items())
    )
    return text


@hydra.main(config_path="../configs", config_name="reliability", version_base="1.3")
@cli_main
def main(cfg: DictConfig) -> None:
    run_dir = prepare_run_dir(cfg.out, cfg)
    tmp = run_dir / "work"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    started = time.perf_counter()
    checks = {
        "Attacks on loading refused, nothing ran": lambda: check_attacks(tmp, cfg.parallel),
        "Bad command lines answered in one line": lambda: check_bad_inputs(tmp, cfg.parallel),
        "Refused runs left the existing run's files byte-identical": lambda: check_refusals(tmp),
        "kill -9 survived (resumed to identical results)": lambda: check_kills(tmp, cfg.kills, cfg.seed),
    }
    results = {}
    for title, check in checks.items():
        results[title] = check()
        print(f"{title}: {sum(o.trials for o in results[title] if o.ok)} of "
              f"{sum(o.trials for o in results[title])}", flush=True)
    text = write_doc(results, time.perf_counter() - started).replace(str(tmp), "<tmp>")
    (run_dir / "RELIABILITY.md").write_text(text)
    if cfg.write_docs:
        DOC.write_text(text)
        print(f"wrote {DOC}")
    failed = [o for outcomes in results.values() for o in outcomes if not o.ok]
    for outcome in failed:
        print(f"FAILED: {outcome.what}: {outcome.detail}", file=sys.stderr)
    print(f"{sum(len(o) for o in results.values()) - len(failed)} of {sum(len(o) for o in results.values())} "
          f"cases as they should be; report: {run_dir / 'RELIABILITY.md'}")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
