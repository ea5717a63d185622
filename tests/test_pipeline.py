"""The main job end to end on a tiny budget, and the benchmark/report plumbing around it.

This is the CI smoke test of the whole idea: state reacher, a minute or two on 2 cores, and the
learned-model planner must beat the random agent on held-out start/goal pairs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import DictConfig, OmegaConf

# ``++`` adds a key the pipeline's own config does not list; it is passed on to that stage's script.
TINY = ["task=reacher", "obs=state", "collect.episodes=60", "++collect.progress=false", "train.steps=600",
        "evaluate.episodes=10", "evaluate.agents=[jepa,random]", "++evaluate.video.episodes=2"]


def run_pipeline(repo_root: Path, out: Path, *overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(repo_root / "scripts" / "pipeline.py"), f"out={out}", *overrides],
                          cwd=repo_root, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    repo_root = Path(__file__).resolve().parents[1]
    out = tmp_path_factory.mktemp("pipeline") / "run"
    result = run_pipeline(repo_root, out, *TINY)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out, result


def test_tiny_pipeline_plans_better_than_random_on_held_out_pairs(tiny_run) -> None:
    out, result = tiny_run
    results = json.loads((out / "evaluate" / "results.json").read_text())
    jepa, random = results["agents"]["jepa"], results["agents"]["random"]
    config = OmegaConf.load(out / "config.yaml")
    assert results["spec"]["seed"] == config.eval_seed != config.seed  # pairs collection never drew
    assert results["spec"]["experiment"] == "default"  # the pipeline's recipe, passed to every stage
    assert results["spec"]["planner_name"] == "cem" and results["spec"]["energy_name"] == "geodesic_subgoal_dense"
    assert jepa["episodes"] == random["episodes"] == 10
    assert jepa["success_rate"] >= random["success_rate"] + 0.3, (jepa, random)
    assert jepa["distance"] < random["distance"]
    assert "report.html" in result.stdout


def test_every_stage_leaves_its_outputs(tiny_run) -> None:
    out, _ = tiny_run
    for path in ("config.yaml", "collect/summary.json", "train/summary.json", "train/metrics.csv",
                 "train/loss_curve.png", "train/checkpoint/latest.safetensors", "probe/probe.json",
                 "evaluate/results.json", "report.html"):
        assert (out / path).is_file(), path
    assert list((out / "evaluate" / "videos").glob("*.mp4"))
    train = json.loads((out / "train" / "summary.json").read_text())
    assert train["steps"] == 600 and train["samples_per_s"] > 0
    page = (out / "report.html").read_text()
    assert "<video" in page and "data:video/mp4;base64," in page and "jepa" in page
    probe = json.loads((out / "probe" / "probe.json").read_text())
    assert probe["plannability"] > 0.75 and probe["warnings"] == [] and "Warning:" not in page  # a model that plans


def test_every_stage_records_its_own_seconds_and_a_record_without_them_is_one_line(tiny_run, tmp_path: Path) -> None:
    from envs.errors import UserInputError
    from scripts.benchmark import stage_seconds

    out, _ = tiny_run
    spent = stage_seconds(out)
    assert set(spent) == {"collect", "train", "probe", "evaluate"} and min(spent.values()) > 0  # one phase: no settle
    results = json.loads((out / "evaluate" / "results.json").read_text())
    assert spent["evaluate"] > sum(agent["seconds"] for agent in results["agents"].values())  # agents built too
    train = json.loads((out / "train" / "summary.json").read_text())
    assert spent["train"] <= train["seconds_this_run"] + 1e-9  # one sitting: the logged steps of that sitting
    old = tmp_path / "old"
    (old / "probe").mkdir(parents=True)
    (old / "probe" / "probe.json").write_text(json.dumps({"probe_r2": 0.9}))
    with pytest.raises(UserInputError, match=r"probe\.json has no 'seconds'"):
        stage_seconds(old)


def test_rerun_skips_finished_stages(repo_root: Path, tiny_run) -> None:
    out, _ = tiny_run
    stamp = (out / "train" / "summary.json").stat().st_mtime_ns
    result = run_pipeline(repo_root, out, *TINY, "stages=[collect,train,report]")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("already done") == 2
    assert (out / "train" / "summary.json").stat().st_mtime_ns == stamp


def test_a_finished_stage_under_another_config_is_refused_and_nothing_changes(repo_root: Path, tiny_run) -> None:
    out, _ = tiny_run
    watched = [out / "config.yaml", out / "train" / "summary.json", out / "train" / "config.yaml"]
    before = [path.read_bytes() for path in watched]
    result = run_pipeline(repo_root, out, *TINY, "train.steps=601", "stages=[collect,train,report]")
    assert result.returncode == 2
    assert "stage 'train'" in result.stderr and "steps" in result.stderr and "changed=redo" in result.stderr
    assert "Traceback" not in result.stderr
    assert [path.read_bytes() for path in watched] == before


def test_changed_redo_redoes_the_changed_stage_and_every_later_one(tiny_run) -> None:
    from hydra import compose, initialize_config_dir

    from scripts.pipeline import recipe_overrides, stage_plan, stale_stages

    out, _ = tiny_run
    configs = str(Path(__file__).resolve().parents[1] / "configs")
    with initialize_config_dir(config_dir=configs, version_base="1.3"):
        def stale(*extra: str) -> dict[str, str]:
            overrides = [*TINY, f"out={out}", "changed=redo", *extra]
            cfg = compose(config_name="pipeline", overrides=overrides)
            return stale_stages(cfg, stage_plan(cfg, out, recipe_overrides(cfg, overrides, "default")))

        assert stale() == {}  # the same config: everything is reused
        redo = stale("train.steps=601")
        assert sorted(redo) == ["evaluate", "probe", "train"] and "steps" in redo["train"]
        assert "earlier stage" in redo["evaluate"]
        assert sorted(stale("evaluate.episodes=11")) == ["evaluate"]  # a later change leaves training alone
        # collect and train compose the planner and energy with the recipe but never read them
        assert sorted(stale("planner.optimizer.samples=17", "energy.terms.goal.final_weight=2.0")) == ["evaluate"]


def test_unknown_stage_is_one_line(repo_root: Path, tmp_path: Path) -> None:
    result = run_pipeline(repo_root, tmp_path / "run", "stages=[collect,dance]")
    assert result.returncode != 0
    assert "unknown stage" in result.stderr and "Traceback" not in result.stderr


def test_benchmark_checks_for_the_screenshot_browser_a_run_asks_for(tmp_path: Path) -> None:
    from envs.errors import UserInputError
    from scripts.benchmark import check_screenshot_browser

    shot = {"screenshot": str(tmp_path / "report.png"), "browser": {"executable": "no-such-browser"}}
    rows = [{"name": "wall-state", "report": {}}, {"name": "reacher-pixels", "report": shot}]
    with pytest.raises(UserInputError, match="no-such-browser"):
        check_screenshot_browser(rows)
    check_screenshot_browser(rows[:1])  # the row asking for it is not run (only=): no browser needed
    del rows[1]["report"]["screenshot"]  # no screenshot asked for: no browser needed
    check_screenshot_browser(rows)


def test_report_shows_the_probes_warnings_above_its_figures(tmp_path: Path) -> None:
    from scripts.report import build_report

    (tmp_path / "evaluate").mkdir()
    (tmp_path / "probe").mkdir()
    jepa = {"success_rate": 0.0, "success_rate_95ci": [0.0, 0.07], "distance": 1.43, "plan_ms_median": 45.0, "episodes": 50}
    (tmp_path / "evaluate" / "results.json").write_text(json.dumps({"spec": {"task": "wall", "obs": "pixels"},
                                                                    "agents": {"jepa": jepa}}))
    warning = "plannability 0.51 < 0.75: the latent barely responds to actions"
    (tmp_path / "probe" / "probe.json").write_text(json.dumps({"plannability": 0.51, "warnings": [warning]}))
    page = build_report(tmp_path)
    assert f"<b>Warning:</b> {warning}" in page.replace("&lt;", "<")
    assert page.index("Warning:") < page.index("<td>plannability</td>")


def test_benchmark_rows_show_mean_std_the_worst_seed_and_every_seed() -> None:
    from benchmark_docs import success_table

    from scripts.benchmark import spread

    stats = spread([0.9, 0.7, 0.8])
    assert stats == pytest.approx({"mean": 0.8, "std": 0.1, "worst": 0.7})
    seeds = [{"seed": i, "success": {"jepa": rate}, "plan_ms": 10.0 + i, "train_min": 1.0, "probe_r2": 0.9}
             for i, rate in enumerate([0.9, 0.7, 0.8])]
    row = {"task": "reacher", "obs": "pixels", "experiment": "reacher-pixels", "seeds": seeds, "row_minutes": 12.0,
           "summary": {"jepa": stats, "default": spread([0.4, 0.4, 0.4]), "gcbc": {"mean": 0.2},
                       "oracle": {"mean": 1.0}, "random": {"mean": 0.0}}}
    detailed = success_table([row], detailed=True).splitlines()
    assert len(detailed) == 3 and detailed[1].count("---") == detailed[0].count("|") - 1
    cells = [c.strip() for c in detailed[2].strip("|").split("|")]
    header = [c.strip() for c in detailed[0].strip("|").split("|")]
    shown = dict(zip(header, cells, strict=True))
    assert shown["JEPA (mean ± std)"] == "80% ± 10%" and shown["worst seed"] == "70%"
    assert shown["per seed"] == "90% / 70% / 80%" and shown["default recipe"] == "40% ± 0%"
    assert shown["default / recipe"] == "0.50" and shown["JEPA/Oracle"] == "0.80" and shown["plan ms"] == "11"
    readme = success_table([row], detailed=False)
    assert "80% ± 10%" in readme and "per seed" not in readme


def test_scale_section_states_the_ratio_of_many_envs_to_one_and_flags_differing_episodes() -> None:
    from benchmark_docs import scale_section

    row = {"episodes_per_s": {"1": 0.8, "16": 1.2}, "plan_ms": {"1": 24.0, "16": 16.0},
           "success": {"1": 0.5, "16": 0.5}, "identical": True, "rollout": {"gflops": 45.0},
           "rollout_fraction_of_peak": 0.45}
    scale = {"date": "today", "machine": "here", "eval_episodes": 4, "eval_seed": 1000, "matmul_peak_gflops": 100.0,
             "landmarks": {"landmarks": 999900, "build_s": 82.2, "peak_gb": 2.9, "goal_query_s": 0.95,
                           "edges": 14000000, "torch_threads": 1},
             "rows": {"reacher-state": row, "wall-state": {**row, "identical": False}}}
    text = scale_section(scale)
    lines = [line for line in text.splitlines() if line.startswith("| reacher-state") or line.startswith("| wall-state")]
    cells = [c.strip() for c in lines[0].strip("|").split("|")]
    assert cells[1:4] == ["0.80", "1.20", "**1.50x**"] and cells[6] == "50% / 50%" and cells[7] == "yes"
    assert "**no**" in lines[1]
    assert "999,900" in text and "82.2 s" in text and "2.90 GB" in text


def test_rows_with_evaluation_tasks_get_a_per_task_table_and_others_none() -> None:
    from benchmark_docs import per_task_table

    per_task = {"jepa": {"tasks": {"task1": {"success_rate": 0.8}, "task2": {"success_rate": 0.4}},
                         "mean_success_rate": 0.6}}
    rows = [{"task": "cube-single", "obs": "state", "seeds": [{"seed": 0, "per_task": per_task}]},
            {"task": "reacher", "obs": "state", "seeds": [{"seed": 0, "per_task": {}}]}]
    table = per_task_table(rows).splitlines()
    assert table[-2] == "| cube-single | state | 0 | jepa | task1 80% / task2 40% | 60% |" and len(table) == 6
    assert per_task_table(rows[1:]) == ""


def test_pipeline_passes_the_recipe_and_its_overrides_to_every_stage() -> None:
    from scripts.pipeline import recipe_overrides

    cfg = OmegaConf.create({"task": {"name": "wall"}, "obs": "pixels"})
    given = ["model.latent_dim=32", "train.steps=5", "planner=mppi", "+energy.terms.goal.running_every=1",
             "budget.episodes=3", "model/regularizer=sigreg", "seed=4"]
    assert recipe_overrides(cfg, given, "wall-pixels") == [
        "experiment=wall-pixels", "task=wall", "obs=pixels", "model.latent_dim=32", "planner=mppi",
        "+energy.terms.goal.running_every=1", "budget.episodes=3", "model/regularizer=sigreg"]


def test_report_draws_the_surprise_curve_when_the_probe_has_one(tmp_path: Path) -> None:
    from scripts.report import build_report

    (tmp_path / "evaluate").mkdir()
    (tmp_path / "probe").mkdir()
    jepa = {"success_rate": 0.5, "success_rate_95ci": [0.3, 0.7], "distance": 0.1, "plan_ms_median": 5.0, "episodes": 20}
    (tmp_path / "evaluate" / "results.json").write_text(json.dumps({"spec": {}, "agents": {"jepa": jepa}}))
    probe = tmp_path / "probe" / "probe.json"
    probe.write_text(json.dumps({"plannability": 0.9, "warnings": []}))
    assert "Surprise" not in build_report(tmp_path)  # an older probe.json: no section, no error
    surprise = {"detection_rate": 0.9, "false_alarm_rate": 0.05, "auc": 0.97, "clips": 3, "window": 4,
                "threshold_quantile": 0.99, "threshold": 0.2, "offsets": [-1, 0, 1],
                "curve_impossible": [0.1, 2.0, 0.1], "curve_impossible_std": [0.05, 0.5, 0.05],
                "curve_normal": [0.1, 0.1, 0.1], "curve_normal_std": [0.05, 0.05, 0.05]}
    probe.write_text(json.dumps({"plannability": 0.9, "warnings": [], "surprise": surprise}))
    page = build_report(tmp_path)
    section = page[page.index("Surprise"):]
    assert "<td>auc</td><td>0.97</td>" in section and "data:image/png;base64," in section
    probe.write_text(json.dumps({"plannability": 0.9, "warnings": [], "surprise": {"skipped": "too short", "clips": 0}}))
    page = build_report(tmp_path)
    assert "Skipped: too short" in page and "data:image/png" not in page[page.index("Surprise"):]


def test_a_suite_replaces_its_own_rows_in_the_measurements_and_keeps_every_other_suites() -> None:
    from benchmark_docs import merge_rows

    def row(task: str, experiment: str, rate: float, suite: str | None = None) -> dict:
        return {"task": task, "obs": "state", "experiment": experiment, "rate": rate} | ({"suite": suite} if suite else {})

    full = {"suite": "full", "date": "monday", "env_speed": [1], "rows": [row("wall", "default", 0.9), row("reacher", "default", 0.8)]}
    chance = {"suite": "chance", "date": "tuesday", "rows": [row("wall", "latent-variable", 0.7)]}
    once = merge_rows(full, chance)
    assert once["date"] == "monday" and once["env_speed"] == [1] and once["suite"] == "full"  # the headline stays
    assert [(r["task"], r["experiment"], r["suite"]) for r in once["rows"]] == [
        ("wall", "default", "full"), ("reacher", "default", "full"), ("wall", "latent-variable", "chance")]
    again = merge_rows(once, {"suite": "chance", "date": "friday", "rows": [row("umaze", "latent-variable", 0.5)]})
    assert [(r["task"], r["experiment"]) for r in again["rows"]] == [("wall", "default"), ("reacher", "default"),
                                                                       ("umaze", "latent-variable")]  # its old row went
    rerun = merge_rows(again, {"suite": "full", "date": "sunday", "env_speed": [2], "rows": [row("wall", "default", 0.95)]})
    assert rerun["date"] == "sunday" and rerun["env_speed"] == [2]
    assert [(r["task"], r["rate"]) for r in rerun["rows"]] == [("wall", 0.95), ("umaze", 0.5)]
    assert merge_rows(None, chance)["rows"][0]["suite"] == "chance"
    # a run of some of the suite's rows (another sitting) keeps the rows it still lists and did not measure
    both = merge_rows(rerun, {"suite": "full", "date": "monday", "rows": [row("reacher", "default", 0.7)],
                              "suite_rows": [["wall", "state", "default"], ["reacher", "state", "default"]]})
    assert [(r["task"], r["rate"], r["suite"]) for r in both["rows"]] == [
        ("wall", 0.95, "full"), ("umaze", 0.5, "chance"), ("reacher", 0.7, "full")]
    dropped = merge_rows(both, {"suite": "full", "date": "tuesday", "rows": [row("reacher", "default", 0.6)],
                                "suite_rows": [["reacher", "state", "default"]]})  # wall left the suite
    assert [(r["task"], r["rate"]) for r in dropped["rows"]] == [("umaze", 0.5), ("reacher", 0.6)]


def test_every_row_keeps_the_machine_that_measured_it_when_another_machine_measures_other_rows() -> None:
    from benchmark_docs import cpu_name, merge_rows

    xeon, epyc = "2 CPU cores (Intel Xeon), no GPU", "2 CPU cores (AMD EPYC), no GPU"
    old = {"suite": "full", "machine": xeon, "rows": [{"task": "wall", "obs": "state", "experiment": "default"}]}
    new = {"suite": "full", "machine": epyc, "rows": [{"task": "reacher", "obs": "pixels", "experiment": "default"}],
           "suite_rows": [["wall", "state", "default"], ["reacher", "pixels", "default"]]}
    merged = merge_rows(old, new)
    assert merged["machine"] == epyc  # the headline (speeds) is the latest run's
    assert [(r["task"], cpu_name(r["machine"])) for r in merged["rows"]] == [("wall", "Intel Xeon"), ("reacher", "AMD EPYC")]
    assert merge_rows(merged, {**new, "machine": "other", "rows": []})["rows"][1]["machine"] == epyc  # kept as recorded
    assert cpu_name("2 CPU cores (Intel(R) Xeon(R) Processor), no GPU") == "Intel(R) Xeon(R) Processor"
    assert cpu_name("a machine line without parentheses") == "a machine line without parentheses"


def test_a_rows_commit_is_dirty_for_changed_code_and_not_for_what_the_benchmark_writes(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import scripts.benchmark as benchmark

    def git(*args: str) -> None:
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True,
                       capture_output=True)

    (tmp_path / "docs").mkdir()
    for name in ("docs/report.png", "README.md", "BENCHMARKS.md", "train.py"):
        (tmp_path / name).write_text("a")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "x")
    monkeypatch.setattr(benchmark, "ROOT", tmp_path)
    clean = benchmark.commit()
    assert len(clean) >= 7 and "+" not in clean
    for name in ("docs/report.png", "README.md", "BENCHMARKS.md"):  # a row's screenshot, the generated docs
        (tmp_path / name).write_text("b")
    assert benchmark.commit() == clean
    (tmp_path / "train.py").write_text("b")
    assert benchmark.commit() == clean + "+dirty"


def test_the_speed_section_states_the_load_its_speeds_were_measured_under() -> None:
    from benchmark_docs import speed_section

    measured = {"env_speed": [{"task": "wall", "state_steps_per_s": 1234.5, "pixel_frames_per_s": 99.0}],
                "machine": "48 CPU cores (AMD EPYC), no GPU",  # the run's cores, whatever writes the docs
                "collection_speed": {"task": "reacher", "obs": "pixels", "episodes": 2, "workers": 2,
                                     "frames_per_s_1_worker": 10.0, "frames_per_s_2_workers": 19.0, "speedup": 1.9}}
    assert "Load average" not in speed_section(measured)  # a run that did not record it
    text = speed_section({**measured, "speed_load_average": 2.34})
    assert "Load average (1 min) as these were measured: 2.3 on 48 cores" in text and "| wall | 1,234 | 99 |" in text


def test_the_docs_name_the_suites_rows_not_measured_yet_with_the_command_that_measures_them() -> None:
    from benchmark_docs import pending_note

    measured = {"suite": "full", "rows": [{"task": "wall", "obs": "state", "experiment": "default"},
                                          {"task": "wall", "obs": "state", "experiment": "latent-variable"}],
                "suite_rows": [["wall", "state", "default"], ["reacher", "pixels", "default"], ["wall", "pixels", "default"]]}
    assert pending_note(measured) == ("Not measured yet: reacher-pixels, wall-pixels (`python scripts/benchmark.py "
                                      "suite=full 'only=[reacher-pixels,wall-pixels]'`, a few rows per sitting).\n\n")
    measured["suite_rows"] = measured["suite_rows"][:1]
    assert pending_note(measured) == ""


def test_the_speed_section_says_whether_other_jobs_shared_the_cores() -> None:
    from benchmark_docs import load_note

    assert load_note(0.3, 0.9).endswith("no other job shared the cores.")
    assert "other jobs shared the cores, and every speed below is lower" in load_note(0.4, 3.7)
    assert "not recorded" in load_note(None, 0.5)


def test_the_suites_process_time_is_the_sum_of_its_rows_minutes() -> None:
    from benchmark_docs import suite_time_note

    rows = [{"row_minutes": 30.0}, {"row_minutes": 60.0}, {"row_minutes": 6.0}]
    assert suite_time_note({"rows": rows}).startswith("All 3 rows above took 1.6 hours of process time")
    assert suite_time_note({"rows": []}) == ""


def test_a_benchmark_measures_only_the_rows_it_is_told_and_names_the_suites_rows_when_one_is_unknown() -> None:
    from envs.errors import UserInputError
    from scripts.benchmark import select_rows

    rows = [{"name": "reacher-state"}, {"name": "wall-pixels"}, {"name": "wall-state"}]
    assert select_rows(rows, None) == rows
    assert select_rows(rows, ["wall-state", "reacher-state"]) == [rows[0], rows[2]]  # the suite's order
    with pytest.raises(UserInputError, match=r"wall-pixel not in this suite's rows \(reacher-state, wall-pixels"):
        select_rows(rows, ["wall-pixel"])


def test_processes_sharing_a_rows_seeds_run_the_same_stages_as_one_run_of_them_all(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import scripts.benchmark as benchmark
    from envs.errors import UserInputError

    calls: list[tuple[str, list[str]]] = []
    monkeypatch.setattr(benchmark, "run_pipeline", lambda overrides, out, label: calls.append((out.name, overrides)))
    row = {"name": "wall-pixels", "task": "wall", "obs": "pixels", "recipes": ["wall-pixels", "default"],
           "budget": {"episodes": 10}, "report": {}}
    suite = OmegaConf.create({"seeds": [0, 1, 2], "default_seeds": [0, 1, 2], "eval": {"episodes": 4, "seed": 1000}})

    def run(seeds: list[int]) -> list[tuple[str, list[str]]]:
        calls.clear()
        benchmark.run_row(row, suite, tmp_path, "cpu", True, benchmark.check_seeds([0, 1, 2], seeds))
        return list(calls)

    together = run([0, 1, 2])
    shared = run([2]) + run([0, 1])
    assert sorted(together) == sorted(shared) and len(together) == 6
    agents = {name: next(o for o in overrides if o.startswith("evaluate.agents=")) for name, overrides in together}
    assert agents["wall-pixels-seed0"] == "evaluate.agents=[jepa,oracle,gcbc,random]"  # the suite's first seed
    assert agents["wall-pixels-seed2"] == "evaluate.agents=[jepa,gcbc]" and agents["default-seed2"] == "evaluate.agents=[jepa]"
    assert [name for name, _ in run([2])] == ["wall-pixels-seed2", "default-seed2"]
    with pytest.raises(UserInputError, match=r"only_seeds=\[3\]: \[3\] not in this suite's seeds \[0, 1, 2\]"):
        benchmark.check_seeds([0, 1, 2], [3])


def test_latent_variable_rows_are_shown_beside_the_deterministic_default_of_their_task() -> None:
    from benchmark_docs import predictor_section

    from scripts.benchmark import spread

    def row(task: str, experiment: str, predictor: str, rates: list[float]) -> dict:
        return {"task": task, "obs": "state", "experiment": experiment, "predictor": predictor, "variant": None,
                "seeds": [{"success": {"jepa": r}} for r in rates],
                "summary": {"jepa": spread(rates), "oracle": {"mean": 1.0}}}

    rows = [row("wall", "default", "deterministic", [0.7, 0.8, 0.9]),
            row("wall", "latent-variable", "latent_variable", [0.9, 0.9, 0.9]),
            row("reacher", "latent-variable", "latent_variable", [0.5])]  # no deterministic row: not shown
    lines = [line for line in predictor_section(rows).splitlines() if line.startswith("| wall")]
    assert lines == ["| wall | state | – | 90% ± 0% | 90% / 90% / 90% | 80% ± 10% | 70% / 80% / 90% | +10 | 100% |"]
    assert predictor_section(rows[:1]) == ""


def test_branching_rows_show_where_each_seeds_prediction_lands_between_the_two_futures() -> None:
    from benchmark_docs import branches_table

    branches = {"predictor": "latent_variable", "samples": 8, "episodes": 20, "approach": 0.7, "horizon": 10,
                "separation_last": 13.8, "to_open_over_separation_last": 0.51, "to_shut_over_separation_last": 0.42}
    rows = [{"task": "wall-branching", "obs": "state", "experiment": "latent-variable",
             "seeds": [{"seed": 0, "branches": branches}, {"seed": 1}]},
            {"task": "wall", "obs": "state", "experiment": "default", "seeds": [{"seed": 0}]}]
    lines = [line for line in branches_table(rows).splitlines() if line.startswith("| wall")]
    assert lines == ["| wall-branching | state | latent-variable | latent_variable | 0 | 8 | 13.80 | 0.51 | 0.42 |"]
    assert branches_table(rows[1:]) == ""


TUNED = """# @package _global_
defaults:
  - override /task: reacher
  - override /planner: cem_dense
  - _self_
obs: pixels
model: {latent_norm: false}
budget: {episodes: 200, train_steps: 3000}
"""


def test_suite_rows_name_a_tuned_file_a_task_for_the_default_or_an_any_task_recipe_and_a_task(repo_root, tmp_path) -> None:
    """No row keeps a tuned file today, so the test writes one (as a row's would be) into a copy of the configs."""
    import shutil

    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    from envs.errors import UserInputError
    from scripts.benchmark import resolve_row

    configs = shutil.copytree(repo_root / "configs", tmp_path / "configs")
    (configs / "experiment" / "reacher-pixels.yaml").write_text(TUNED)
    with initialize_config_dir(config_dir=str(configs), version_base="1.3"):
        tuned = resolve_row(OmegaConf.create({"experiment": "reacher-pixels"}))
        default = resolve_row(OmegaConf.create({"task": "wall", "obs": "state", "budget": {"episodes": 7}}))
        any_task = resolve_row(OmegaConf.create({"experiment": "latent-variable", "task": "wall-branching", "obs": "state"}))
        with pytest.raises(UserInputError, match="names a tuned experiment or none"):
            resolve_row(OmegaConf.create({"experiment": "default", "task": "wall", "obs": "state"}))
    assert (tuned["name"], tuned["recipes"]) == ("reacher-pixels", ["reacher-pixels", "default"])
    assert (tuned["task"], tuned["obs"], tuned["budget"]["train_steps"]) == ("reacher", "pixels", 3000)
    assert (default["name"], default["recipes"], default["budget"]["episodes"]) == ("wall-state", ["default"], 7)
    assert (any_task["name"], any_task["experiment"], any_task["recipes"]) == (
        "wall-branching-state", "latent-variable", ["latent-variable", "default"])


def test_a_two_phase_recipe_settles_the_encoder_first_and_the_train_stage_adopts_it(tmp_path: Path) -> None:
    """``budget.settle_steps``: a settle stage (train.py with the deterministic predictor, that many
    steps) before train, which adopts its encoder; the recipe's own predictor overrides reach train
    alone. A one-phase recipe plans no settle stage. A finished stage is judged on the budget it read:
    more train steps redo train only, more settle steps redo settle and train, never collect."""
    from hydra import compose, initialize_config_dir

    from scripts.pipeline import recipe_overrides, stage_plan, stale_stages

    out = tmp_path / "run"
    configs = str(Path(__file__).resolve().parents[1] / "configs")
    two_phase = ["experiment=latent-variable", "task=wall-branching", "budget.settle_steps=40",
                 "budget.train_steps=30", "model.predictor.prior=learned", f"out={out}", "changed=redo"]
    with initialize_config_dir(config_dir=configs, version_base="1.3"):
        def plan(*overrides: str) -> tuple[DictConfig, dict]:
            cfg = compose(config_name="pipeline", overrides=list(overrides))
            return cfg, stage_plan(cfg, out, recipe_overrides(cfg, list(overrides), "latent-variable"))

        cfg, stages = plan(*two_phase)
        assert list(stages) == ["collect", "settle", "train", "probe", "evaluate", "report"]
        settle = compose(config_name="train", overrides=stages["settle"][0])
        train = compose(config_name="train", overrides=stages["train"][0])
        assert settle.model.predictor._target_.endswith("ResidualMLPPredictor") and settle.steps == 40
        assert settle.encoder_from is None and settle.out == str(out / "settle")
        assert train.model.predictor._target_.endswith("LatentVariablePredictor") and train.model.predictor.prior == "learned"
        assert train.steps == 30 and train.encoder_from == str(out / "settle")
        assert "settle" not in plan("task=wall-branching", f"out={out}")[1]  # the default trains in one phase

        for stage in ("collect", "settle", "train"):  # record each stage as finished under this config
            overrides, marker = stages[stage]
            marker.parent.mkdir(parents=True)
            marker.write_text("{}")
            script = "train" if stage == "settle" else stage
            (marker.parent / "config.yaml").write_text(OmegaConf.to_yaml(compose(config_name=script, overrides=overrides),
                                                                         resolve=True))
        assert stale_stages(*plan(*two_phase)) == {}  # the same config: every stage is reused
        longer = stale_stages(*plan(*two_phase, "budget.train_steps=31"))
        assert "train" in longer and not {"collect", "settle"} & set(longer)
        resettled = stale_stages(*plan(*two_phase, "budget.settle_steps=41"))
        assert "settle" in resettled and "train" in resettled and "collect" not in resettled


def test_probe_table_shows_each_state_columns_r2_and_a_dash_where_none_was_recorded() -> None:
    from benchmark_docs import per_column

    assert per_column({"probe_r2_per_dim": [0.977, 0.1074, None, 0.76]}) == "0.98 / 0.11 / - / 0.76"
    assert per_column({"probe_r2_per_dim": None}) == per_column({}) == "-"  # a probe from before the column existed
