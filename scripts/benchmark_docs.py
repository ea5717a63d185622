"""BENCHMARKS.md and the README's Results block, written from ``docs/benchmarks/*.json``; the one place
the benchmark's tables are formatted, and where a suite's rows are merged into ``measurements.json``.

``scripts/benchmark.py`` measures and calls :func:`write_docs`; ``benchmark.py docs_only=true`` rewrites
the pages from the committed files alone (:func:`rewrite_docs`).
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from envs.errors import UserInputError

ROOT = Path(__file__).resolve().parents[1]
MEASUREMENTS = ROOT / "docs" / "benchmarks" / "measurements.json"
SCALE = ROOT / "docs" / "benchmarks" / "scale.json"
RESULTS_BEGIN, RESULTS_END = "<!-- results:begin -->", "<!-- results:end -->"
Row = dict[str, Any]


def read_json(path: Path) -> dict[str, Any]:
    """A JSON file the benchmark wrote (measurements, a pipeline's results or summaries)."""
    return json.loads(path.read_text())


def row_key(row: Row) -> tuple[str, str, str]:
    """What names a row across suites: its task, obs mode and recipe."""
    return row["task"], row["obs"], row["experiment"]


def merge_rows(existing: dict[str, Any] | None, measured: dict[str, Any]) -> dict[str, Any]:
    """``measured`` with the rows of other suites kept from ``existing`` (the committed measurements).

    A suite owns its rows: this run's rows replace the ones with the same task, obs and experiment, and
    every other suite's rows stay where they were. A row this suite wrote before and did not measure now
    stays while the suite still lists it (``measured["suite_rows"]``: a run of some rows only, e.g. in
    another sitting, keeps the rest) and goes once it does not (a run without that list lists only its
    own rows). The headline fields (date, machine, speeds) stay those of the suite that wrote the file
    first, unless this run is that suite; every row keeps the machine that measured it.
    """
    suite = measured["suite"]
    # a row keeps the machine that measured it: a seed's model depends on the CPU (docs/EXPERIMENTS.md)
    new = {row_key(r): {**r, "suite": suite, "machine": r.get("machine", measured.get("machine"))} for r in measured["rows"]}
    listed = {tuple(key) for key in measured.get("suite_rows", [])} | set(new)
    if existing is None:
        return {**measured, "rows": list(new.values())}
    rows = []
    for row in existing.get("rows", []):
        owner = row.get("suite", existing["suite"])
        if row_key(row) in new:
            rows.append(new.pop(row_key(row)))
        elif owner != suite or row_key(row) in listed:
            # a row written before rows named their machine was measured on the file's headline machine
            rows.append({**row, "suite": owner, "machine": row.get("machine", existing.get("machine"))})
    headline = measured if existing["suite"] == suite else existing
    return {**headline, "rows": [*rows, *new.values()]}


def per_column(seed: dict[str, Any]) -> str:
    """A seed's probe R² per column of the task's state (``-`` for a constant column; none recorded: ``-``)."""
    columns = seed.get("probe_r2_per_dim")
    return " / ".join("-" if r is None else f"{r:.2f}" for r in columns) if columns else "-"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """The one place a table is formatted: a header, its rule, one line per row."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join([*lines, *("| " + " | ".join(row) + " |" for row in rows)])


def pct(value: float | None) -> str:
    return "–" if value is None or value != value else f"{value:.0%}"


def mean_std(stats: dict[str, float] | None) -> str:
    return "–" if stats is None else f"{stats['mean']:.0%} ± {stats['std']:.0%}"


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a is not None and b else "–"


def success_table(rows: list[Row], detailed: bool) -> str:
    """Planning success per row: the recipe's mean ± std over seeds beside the default's and the baselines'.
    ``detailed`` (BENCHMARKS.md) adds the worst seed, every seed's rate, speeds and probes."""
    header = ["task", "obs", "recipe", "JEPA (mean ± std)", "default recipe", "Oracle", "GCBC", "random", "JEPA/Oracle"]
    if detailed:
        header[5:5] = ["default / recipe"]
        header[4:4] = ["worst seed", "per seed"]
        header += ["plan ms", "train min", "probe R² per seed", "row min"]
    lines = []
    for r in rows:
        s = r["summary"]
        oracle = s.get("oracle", {}).get("mean")
        line = [r["task"], r["obs"], r["experiment"], mean_std(s["jepa"]), mean_std(s["default"]), pct(oracle),
                pct(s["gcbc"]["mean"]), pct(s.get("random", {}).get("mean")), ratio(s["jepa"]["mean"], oracle)]
        if detailed:
            seeds = r["seeds"]
            line[5:5] = ["same recipe" if r["experiment"] == "default" else ratio(s["default"] and s["default"]["mean"],
                                                                                   s["jepa"]["mean"])]
            line[4:4] = [pct(s["jepa"]["worst"]), " / ".join(pct(x["success"]["jepa"]) for x in seeds)]
            line += [f"{statistics.median(x['plan_ms'] for x in seeds):.0f}",
                     f"{statistics.fmean(x['train_min'] for x in seeds):.1f}",
                     " / ".join(f"{x['probe_r2']:.2f}" for x in seeds), f"{r['row_minutes']:.0f}"]
        lines.append(line)
    return markdown_table(header, lines)


def pending_note(measured: dict[str, Any]) -> str:
    """A line naming the headline suite's rows that measurements.json does not hold yet, with the
    command that measures them (empty when every row is there)."""
    have = {row_key(r) for r in measured["rows"]}
    missing = [f"{task}-{obs}" for task, obs, experiment in measured.get("suite_rows", [])
               if (task, obs, experiment) not in have]
    if not missing:
        return ""
    return (f"Not measured yet: {', '.join(missing)} (`python scripts/benchmark.py suite={measured['suite']} "
            f"'only=[{','.join(missing)}]'`, a few rows per sitting).\n\n")


def per_task_table(rows: list[Row]) -> str:
    """Rows whose task has its own evaluation tasks (OGBench's five): each agent's success per task and
    their mean (OGBench's headline), every seed; empty (no section) when no row has them."""
    lines = [[r["task"], r["obs"], str(x["seed"]), agent, " / ".join(f"{name} {pct(t['success_rate'])}" for name, t in
                                                                    p["tasks"].items()), pct(p["mean_success_rate"])]
             for r in rows for x in r["seeds"] for agent, p in x.get("per_task", {}).items()]
    if not lines:
        return ""
    table = markdown_table(["task", "obs", "seed", "agent", "success per evaluation task", "mean over tasks"], lines)
    return f"Per evaluation task (the pairs cycle the task's own evaluation tasks):\n\n{table}\n\n"


def predictor_section(rows: list[Row]) -> str:
    """Each latent-variable row beside the deterministic default row of its task and obs mode: the
    issue's comparison (empty, no section, when no row has a latent-variable predictor)."""
    deterministic = {(r["task"], r["obs"]): r for r in rows
                     if r["experiment"] == "default" and r.get("predictor", "deterministic") == "deterministic"}
    lines = []
    for r in rows:
        base = deterministic.get((r["task"], r["obs"]))
        if r.get("predictor") != "latent_variable" or base is None:
            continue
        lv, det = r["summary"]["jepa"], base["summary"]["jepa"]
        lines.append([r["task"], r["obs"], r.get("variant") or "–", mean_std(lv), " / ".join(pct(x["success"]["jepa"]) for x in r["seeds"]),
                      mean_std(det), " / ".join(pct(x["success"]["jepa"]) for x in base["seeds"]),
                      f"{100 * (lv['mean'] - det['mean']):+.0f}", pct(r["summary"].get("oracle", {}).get("mean"))])
    text = ""
    if lines:
        table = markdown_table(["task", "obs", "variant", "latent variable (mean ± std)", "per seed", "deterministic (default)",
                                "per seed", "difference (points)", "Oracle"], lines)
        text = ("A latent-variable predictor (`experiment=latent-variable`: futures drawn from its prior, each plan "
                "scored by the statistic the recipe names) against the deterministic default on the same task, obs "
                f"mode, seeds and pairs:\n\n{table}\n\n")
    return text + branches_table(rows)


def branches_table(rows: list[Row]) -> str:
    """Where each seed's prediction lands between the two real futures of a branching row (empty if none)."""
    lines = [[r["task"], r["obs"], r["experiment"], b["predictor"], str(x["seed"]), str(b["samples"]),
              f"{b['separation_last']:.2f}", f"{b['to_open_over_separation_last']:.2f}",
              f"{b['to_shut_over_separation_last']:.2f}"]
             for r in rows for x in r["seeds"] if (b := x.get("branches"))]
    if not lines:
        return ""
    first = next(x["branches"] for r in rows for x in r["seeds"] if x.get("branches"))
    table = markdown_table(["task", "obs", "recipe", "predictor", "seed", "futures drawn", "branch separation",
                            "nearest prediction to open ÷ separation", "to shut ÷ separation"], lines)
    return (f"Prediction where the world branches (`agents/branches.py`): {first['episodes']} layouts of the eval "
            f"pairs, the ball at rest {first['approach']} m before the risky door and pushed at it for "
            f"{first['horizon']} steps, once with the door forced open and once shut; the distance of the "
            "model's prediction (a latent-variable model: the nearest of its drawn futures) to each real "
            "future's latent at the last step, over the two futures' distance (branch separation). A model "
            "that predicts the average of the branches sits near 0.5 from both; one that learned the split "
            f"has a draw near 0 for each.\n\n{table}\n\n")


def speed_section(measured: dict[str, Any]) -> str:
    """Env and collection speeds, where the run that wrote the file measured them (``suite.env_speed``)."""
    c = measured.get("collection_speed")
    if not measured.get("env_speed") or not c:
        return ""
    n = c["workers"]
    env_table = markdown_table(["task", "state env steps/s", "pixel frames/s (64x64)"], [
        [r["task"], f"{r['state_steps_per_s']:,.0f}", f"{r['pixel_frames_per_s']:,.0f}"] for r in measured["env_speed"]])
    load = measured.get("speed_load_average")
    busy = "" if load is None else (
        f"Load average (1 min) as these were measured: {load:.1f} on {core_count(measured['machine'])} cores, about 1 of it the "
        "benchmark's own; the rest is other jobs, which make every speed here lower than an idle machine's.\n\n")
    return f"""## Simulation and collection speed

{busy}{env_table}

Collection of {c['task']} / {c['obs']} ({c['episodes']} episodes, same episodes both times): 1 worker
{c['frames_per_s_1_worker']} frames/s, {n} workers {c[f'frames_per_s_{n}_workers']} frames/s: **{c['speedup']}x**.
"""


def cpu_name(machine: str) -> str:
    """The CPU of a :func:`scripts.benchmark.machine` line (``N CPU cores (<cpu>), ...``), else the line."""
    start, end = machine.find("("), machine.find("), ")
    return machine[start + 1 : end] if 0 <= start < end else machine


def core_count(machine: str) -> str:
    """The core count of a :func:`scripts.benchmark.machine` line (``N CPU cores ...``): the run's own,
    not the one of the machine that writes the docs; "?" for a line of another shape."""
    first = machine.split(" ", 1)[0]
    return first if first.isdigit() else "?"


def suite_time_note(measured: dict[str, Any]) -> str:
    """A line with the process time every measured row's stages took in all (the sum of row min), so
    that the suite's cost is read in one place; a row measured by another suite counts too."""
    rows = measured["rows"]
    if not rows:
        return ""
    total = sum(r["row_minutes"] for r in rows)
    return (f"All {len(rows)} rows above took {total / 60:.1f} hours of process time (the sum of row min: each "
            "stage's own minutes, whichever process and sitting ran it; two processes share the two cores).\n\n")


def write_docs(measured: dict[str, Any], command: str) -> None:
    rows = measured["rows"]
    seeds = measured["seeds"]
    data_table = markdown_table(
        ["task", "obs", "episodes", "collect frames/s", "coverage", "dataset size", "windows/s (sampler)", "train samples/s"],
        [[r["task"], r["obs"], str(r["collect"]["episodes"]), str(r["collect"]["frames_per_s"]),
          str(r["collect"]["coverage"]), f"{r['collect']['bytes_on_disk'] / 1e6:.1f} MB", f"{r['windows_per_s']:,.0f}",
          f"{r['train_samples_per_s']:,.0f}"] for r in rows])
    probe_table = markdown_table(
        ["task", "obs", "recipe", "seed", "probe R²", "per state column", "effective rank", "min latent std", "pred. error",
         "copy-last error", "plannability", "warnings"],
        [[r["task"], r["obs"], r["experiment"], str(x["seed"]), f"{x['probe']['probe_r2']:.3f}", per_column(x),
          f"{x['probe']['effective_rank']:.1f}", f"{x['probe']['latent_std_min']:.3f}", f"{x['probe']['pred_error']:.4f}",
          f"{x['probe']['copy_baseline_error']:.4f}", f"{x['probe']['plannability']:.2f}", str(len(x["warnings"]))]
         for r in rows for x in r["seeds"]])
    per_task = per_task_table(rows)
    recipe_table = markdown_table(["task", "obs", "recipe", "planner", "budget", "measured by", "at commit", "on"], [
        [r["task"], r["obs"], f"`configs/experiment/{r['experiment']}.yaml`", r["seeds"][0]["planner"],
         ", ".join(f"{k} {v}" for k, v in r["budget"].items()), f"`suite={r.get('suite', measured['suite'])}`",
         r.get("commit", "–"), cpu_name(r.get("machine") or measured["machine"])] for r in rows])
    doc = f"""# Benchmarks

Generated by `{command}` on {measured['date']} — do not edit by hand; re-run the command instead.
Machine of this run (the speeds below): {measured['machine']}; each row names the CPU that measured it
(the recipe table). The raw numbers are in
[`docs/benchmarks/measurements.json`](docs/benchmarks/measurements.json) (shape below).
Pipeline stages that had already finished in the run folder are reused (`reuse=true`), so a benchmark
can run over several sittings; their figures (success, probes) are those of the invocation that ran
them, training time counts every sitting of a resumed training, and the speeds below are measured anew
every time. A suite longer than a sitting is also measured a few rows at a time
(`only=[<task>-<obs>,...]`): each run's rows replace theirs in measurements.json and the suite's other
rows stay, each with the commit and date that measured it (the recipe table below); two processes
can also share the seeds of a row longer than a sitting (`only_seeds=[0,1]` beside `only_seeds=[2]`,
then a pass without it measures the row).

## Planning success on held-out start/goal pairs

Every row trains and evaluates with training seeds {', '.join(map(str, seeds))}; each seed also collects its own
dataset (the collection seed is the training seed). The pairs are the same for every seed and agent
(pair seed {measured['eval_seed']}, never a collection seed), {measured['eval_episodes']} per evaluation. JEPA = MPC on the
learned world model with the row's recipe (its tuned `configs/experiment/<task>-<obs>.yaml`, or
`default`), mean ± sample standard deviation over seeds, the worst seed and every seed's rate; default
recipe = `experiment=default` trained on the same data and budget. Oracle = the same planner and budget
on the true simulator, scoring the task's true cost-to-go (the shortest path round the walls), and
random run once per row (they do not depend on the training seed); GCBC = goal-conditioned
behaviour cloning on each seed's data (mean). plan ms = median wall time per control step; train min =
the mean over seeds of training minutes (every sitting, both phases of a two-phase recipe); row min =
the minutes every stage of the row's pipelines recorded for itself (collect, train, probe, evaluate
with GCBC's training and the graph's build), all seeds, whoever ran them.

{success_table(rows, detailed=True)}

{suite_time_note(measured)}{pending_note(measured)}{per_task}{predictor_section(rows)}The recipes (planner with its horizon H and candidates x iterations), the budgets of the rows,
and the suite run and commit that measured each (`python scripts/benchmark.py suite=<name>` updates
its own rows in measurements.json and keeps every other suite's):

{recipe_table}

{speed_section(measured)}
{data_table}

## What the latent learned (held-out episodes, every seed)

{probe_table}

Probe R²: linear map from latent to the true state, fit on training episodes and scored on held-out
ones, averaged over the state's columns; per state column: the same for each column in the order of
the task's state (README's task table), `-` where a column is constant. Pred./copy-last error:
open-loop latent prediction error against repeating the last latent. Plannability: how often the
true action sequence has lower energy than random ones. Warnings: the probe's (`scripts/probe.py`).

## measurements.json

`{{"suite", "suite_rows", "date", "machine", "seeds", "eval_seed", "eval_episodes", "env_speed", "collection_speed",
"rows": [{{"task", "obs", "experiment", "budget", "variant", "predictor", "suite", "commit", "date", "seeds": [{{"seed", "success": {{"jepa",
"oracle", "gcbc", "random"}}, "success_95ci", "episodes", "plan_ms", "train_min", "stage_min", "probe_r2", "probe_r2_per_dim", "probe", "warnings",
"experiment", "variant", "predictor", "per_task", "planner", "folder"}}], "default": {{"experiment", "seeds": [{{"seed", "success": {{"jepa"}},
"plan_ms", "train_min", "probe_r2", "folder"}}]}}, "summary": {{"jepa", "default", "gcbc": {{"mean", "std",
"worst"}}, "oracle", "random": {{"mean"}}, "default_over_tuned"}}, "row_minutes", "collect",
"windows_per_s", "train_samples_per_s"}}]}}`. Success rates are fractions; oracle and random are copied into
every seed's entry from the first seed's evaluation. A row's `suite`, `commit` and `date` say which run
measured it; `suite_rows` lists the `[task, obs, experiment]` rows the headline suite has; `default` is
null in a suite that runs no default beside its recipe (`default_seeds: []`).

Targets missed and the experiments tried on them: [docs/EXPERIMENTS.md](docs/EXPERIMENTS.md).
"""
    if SCALE.exists():
        doc += "\n" + scale_section(read_json(SCALE))
    (ROOT / "BENCHMARKS.md").write_text(doc)
    readme = ROOT / "README.md"
    text = readme.read_text()
    if RESULTS_BEGIN in text and RESULTS_END in text:
        head, rest = text.split(RESULTS_BEGIN, 1)
        tail = rest.split(RESULTS_END, 1)[1]
        section = (f"{RESULTS_BEGIN}\nFrom `{command}` on {measured['date']} ({measured['machine']}), "
                   f"mean ± std over training seeds {', '.join(map(str, seeds))}; details in [BENCHMARKS.md](BENCHMARKS.md).\n\n"
                   f"{success_table(rows, detailed=False)}\n\n{pending_note(measured)}{RESULTS_END}")
        readme.write_text(head + section + tail)


def load_note(start: float | None, end: float | None) -> str:
    """What the 5-minute load average at a speed suite's start and end says about its figures: the
    suite runs one process at a time, so a load above 1.5 means other jobs shared the cores."""
    if start is None or end is None:
        return "Its load average was not recorded: other jobs may have shared the cores."
    shared = max(start, end) > 1.5
    return (f"Load average (5 min) at its start and end: {start:.1f} and {end:.1f}, "
            + ("above the suite's own one process: other jobs shared the cores, and every speed below is lower "
               "than an idle machine's." if shared else "about the suite's own one process: no other job shared the cores."))


def scale_section(scale: dict[str, Any]) -> str:
    """BENCHMARKS.md's section on ``suite=scale`` (docs/benchmarks/scale.json)."""
    graph = scale["landmarks"]
    counts = list(next(iter(scale["rows"].values()))["episodes_per_s"])
    table = markdown_table(
        ["row", *[f"episodes/s, {n} env{'s' if n != '1' else ''}" for n in counts], f"{counts[-1]} / {counts[0]}",
         *[f"plan ms, {n}" for n in counts], "success", "identical episodes", "rollout GFLOP/s", "of matmul peak"],
        [[name, *[f"{r['episodes_per_s'][n]:.2f}" for n in counts],
          f"**{r['episodes_per_s'][counts[-1]] / r['episodes_per_s'][counts[0]]:.2f}x**",
          *[f"{r['plan_ms'][n]:.1f}" for n in counts], " / ".join(pct(r["success"][n]) for n in counts),
          "yes" if r["identical"] else "**no**", f"{r['rollout']['gflops']:.0f}", f"{r['rollout_fraction_of_peak']:.2f}"]
         for name, r in scale["rows"].items()])
    return f"""## Scale and speed

Generated by `python scripts/benchmark.py suite=scale` on {scale['date']} ({scale['machine']}); raw numbers
in [`docs/benchmarks/scale.json`](docs/benchmarks/scale.json). {load_note(scale.get('load_average_at_start'), scale.get('load_average_at_end'))}

The dense landmark graph (`configs/energy/geodesic_subgoal_dense.yaml`) on {graph['landmarks']:,} synthetic
landmarks (a point mass's episodes mapped into 64 dimensions, `agents/speed.py`), in a fresh process:
built in **{graph['build_s']:.1f} s** with a peak of **{graph['peak_gb']:.2f} GB** resident, a new goal's
distances and paths in **{graph['goal_query_s']:.2f} s** ({graph['edges']:,} directed edges, {graph['torch_threads']} torch thread).

JEPA (default recipe, training seed 0) on the same {scale['eval_episodes']} held-out pairs (seed {scale['eval_seed']})
with N envs planned together (`evaluate.py num_envs=N`, each N a fresh process); plan ms = median wall
time per control step, one planner call's time shared by its envs. Rollout GFLOP/s: the predictor's
matrix products over one CEM iteration's candidates, against a 1024-square matmul on this machine,
{scale['matmul_peak_gflops']:.0f} GFLOP/s (`worldmodel/speed.py`).

{table}
"""


def rewrite_docs() -> None:
    """BENCHMARKS.md and the README written again from the committed ``measurements.json`` (and scale.json)."""
    if not MEASUREMENTS.exists():
        raise UserInputError(f"no {MEASUREMENTS.relative_to(ROOT)} yet: run a suite first "
                             "(python scripts/benchmark.py suite=...), or give merge_from=RUN/measurements.json")
    measured = read_json(MEASUREMENTS)
    write_docs(measured, f"python scripts/benchmark.py suite={measured['suite']}")
