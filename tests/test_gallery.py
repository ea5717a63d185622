"""scripts/gallery.py end to end: one PNG per task in the run folder (and the copy folder), clean errors."""

from __future__ import annotations

import subprocess
import sys

import imageio.v3 as iio


def run_gallery(repo_root, *overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(repo_root / "scripts" / "gallery.py"), *overrides],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=repo_root,
    )


def test_gallery_writes_a_grid_per_task(repo_root, tmp_path):
    out, copy = tmp_path / "run", tmp_path / "docs"
    result = run_gallery(
        repo_root, "tasks=[wall,reacher]", "pairs=2", "sizes=[32,64]", f"out={out}", f"copy_to={copy}"
    )
    assert result.returncode == 0, result.stderr
    assert (out / "config.yaml").exists()
    for task in ("wall", "reacher"):
        image = iio.imread(out / f"{task}.png")
        assert image.ndim == 3 and image.shape[0] > 2 * 32 and image.shape[1] > 4 * 32  # 2 rows, 4 columns
        assert (copy / f"{task}.png").read_bytes() == (out / f"{task}.png").read_bytes()


def test_gallery_unknown_task_is_one_line(repo_root, tmp_path):
    result = run_gallery(repo_root, "tasks=[cartpole]", f"out={tmp_path}")
    assert result.returncode == 2
    assert (
        result.stderr.strip().splitlines()[-1].startswith("error: unknown task(s) ['cartpole']; choose from:")
    )
