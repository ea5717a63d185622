"""Planners against analytic energies with known minima, bounds, determinism and the yaml budgets."""

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from agents.mpc import shift_plan
from agents.planners import CEM, ICEM, MPPI, CEMGradient, GradientPlanner, Planner

H, A = 4, 2  # 8 decision variables


def make(name: str, seed: int = 0) -> Planner:
    """Budgets for the analytic problems (larger than the MPC defaults: tight tolerances)."""
    cem = {"samples": 400, "iterations": 12, "elites": 40, "init_std": 1.0, "min_std": 0.01}
    gd = {"samples": 4, "iterations": 200, "lr": 0.05, "init_std": 0.1}
    planners = {
        "cem": lambda: CEM(H, A, **cem, seed=seed),
        "mppi": lambda: MPPI(H, A, samples=400, iterations=25, noise_std=0.4, temperature=0.05, seed=seed),
        "gd": lambda: GradientPlanner(H, A, **gd, seed=seed),
        "cem_gd": lambda: CEMGradient(H, A, cem=cem, gradient=gd, seed=seed),
        # TARGET zigzags along time, which brown noise (beta=2, the MPC default) explores slowly at H=4
        "icem": lambda: ICEM(H, A, **{**cem, "elites": 20}, beta=0.5, seed=seed),
    }
    return planners[name]()


ALL = ["cem", "mppi", "gd", "cem_gd", "icem"]
TARGET = torch.tensor([[0.5, -0.3], [-0.7, 0.2], [0.1, 0.9], [-0.4, -0.6]])


def quadratic(actions: torch.Tensor) -> torch.Tensor:
    return (actions - TARGET).pow(2).sum(dim=(1, 2))


def double_well(actions: torch.Tensor) -> torch.Tensor:
    """Per variable ``(x^2 - 0.5)^2 + 0.2 x``: a local minimum near +0.63, the global one near -0.77."""
    return ((actions.pow(2) - 0.5).pow(2) + 0.2 * actions).sum(dim=(1, 2))


def double_well_minima() -> tuple[float, float]:
    """(global, local) minimiser of the per-variable double well, on a fine grid."""
    grid = np.linspace(-1, 1, 200001)
    values = (grid**2 - 0.5) ** 2 + 0.2 * grid
    left, right = grid < 0, grid > 0
    return float(grid[left][np.argmin(values[left])]), float(grid[right][np.argmin(values[right])])


@pytest.mark.parametrize("name", ALL)
def test_quadratic_minimum_found(name: str) -> None:
    # MPPI's mean averages samples clamped at the bound (one target is 0.9), so it is the least precise
    tolerance = {"cem": 0.05, "mppi": 0.08, "gd": 1e-3, "cem_gd": 1e-3, "icem": 0.05}[name]
    planner = make(name)
    plan = planner.minimize(quadratic)
    assert plan.shape == (H, A)
    assert (plan - TARGET).abs().max() < tolerance
    assert planner.last_cost == pytest.approx(float(quadratic(plan[None])[0]), abs=1e-5)


@pytest.mark.parametrize("name", ALL)
def test_optimum_outside_the_box_is_clamped_to_the_bound(name: str) -> None:
    target = torch.full((H, A), 2.0)
    plan = make(name).minimize(lambda a: (a - target).pow(2).sum(dim=(1, 2)))
    assert plan.min() >= -1.0 and plan.max() <= 1.0
    # MPPI averages clamped samples, so its mean only approaches a bound from inside; iCEM's last
    # iterations keep half their (fewer) candidates as elites, which also averages some in from inside
    assert plan.min() > {"mppi": 0.9, "icem": 0.98}.get(name, 0.99)


@pytest.mark.parametrize("name", ["cem", "mppi", "cem_gd", "icem"])
def test_sampling_planners_escape_the_local_minimum(name: str) -> None:
    global_min, local_min = double_well_minima()
    plan = make(name).minimize(double_well, warm_start=torch.full((H, A), local_min))
    # fixed-noise MPPI averages samples of a skewed well, which biases its mean by a few hundredths
    tolerance = 0.1 if name == "mppi" else 0.05
    assert (plan - global_min).abs().max() < tolerance


def test_gradient_alone_stays_in_the_local_minimum() -> None:
    """The counterpart of the escape test: it shows the energy really has a trap."""
    _, local_min = double_well_minima()
    planner = GradientPlanner(H, A, samples=1, iterations=200, lr=0.05, init_std=0.0)
    plan = planner.minimize(double_well, warm_start=torch.full((H, A), local_min + 0.05))
    assert (plan - local_min).abs().max() < 0.01


@pytest.mark.parametrize("name", ALL)
def test_same_seed_same_plan_other_seed_other_plan(name: str) -> None:
    first = make(name, seed=3).minimize(double_well)
    again = make(name, seed=3).minimize(double_well)
    assert torch.equal(first, again)
    reseeded = make(name, seed=4)
    reseeded.reseed(3)
    assert torch.equal(reseeded.minimize(double_well), first)
    # gradient refinement converges to the same float minimum for any seed
    if name in ("cem", "mppi", "icem"):
        assert not torch.equal(make(name, seed=5).minimize(double_well), first)


ICEM_BUDGET = {"samples": 40, "iterations": 3, "elites": 8, "init_std": 0.6, "min_std": 0.05}


def lag_correlation(noise: torch.Tensor, lag: int) -> float:
    """Correlation of ``noise (N, T, A)`` with itself ``lag`` steps later, pooled over samples and dims."""
    centred = noise - noise.mean(dim=0)
    return float((centred[:, lag:] * centred[:, :-lag]).mean() / centred.var())


def test_icem_noise_is_brown_for_beta_2_white_for_beta_0_with_unit_variance() -> None:
    for beta in (0.0, 2.0):
        noise = ICEM(32, 2, **ICEM_BUDGET, beta=beta).coloured_noise(8000)
        assert noise.shape == (8000, 32, 2)
        assert (noise.var(dim=0) - 1).abs().max() < 0.1  # every step and action dim
        if beta == 0.0:
            assert abs(lag_correlation(noise, 1)) < 0.1
        else:
            assert lag_correlation(noise, 1) > 0.5
            # drawn over 2H and cropped: the last action is not tied to the first, as a periodic signal's is
            assert lag_correlation(noise, 31) < 0.0


def test_icem_brown_noise_tracks_a_smooth_target_better_than_white_noise() -> None:
    """The reason for coloured noise: with few samples, smooth candidates find a smooth optimum sooner."""
    t = torch.arange(10, dtype=torch.float32)
    smooth = torch.stack([0.8 * torch.sin(t / 3), 0.6 * torch.cos(t / 4)], dim=1)

    def mean_cost(beta: float) -> float:
        costs = []
        for seed in range(10):
            planner = ICEM(10, 2, samples=30, iterations=3, elites=5, init_std=0.6, min_std=0.05, beta=beta,
                           seed=seed)
            planner.minimize(lambda a: (a - smooth).pow(2).sum(dim=(1, 2)))
            costs.append(planner.last_cost)
        return float(np.mean(costs))

    assert mean_cost(2.0) < 0.5 * mean_cost(0.0)


def shifted_quadratic(actions: torch.Tensor) -> torch.Tensor:
    """The quadratic one step later, as a receding horizon sees it."""
    return (actions - shift_plan(TARGET, 1)).pow(2).sum(dim=(1, 2))


def test_icem_replans_deterministically_and_reseed_forgets_the_last_plan() -> None:
    def episode(planner: ICEM) -> tuple[torch.Tensor, torch.Tensor]:
        first = planner.minimize(quadratic)
        return first, planner.minimize(shifted_quadratic, shift_plan(first, 1))  # with the kept elites

    planner = ICEM(H, A, **ICEM_BUDGET, seed=3)
    one = episode(planner)
    planner.reseed(3)
    two = episode(planner)
    assert torch.equal(one[0], two[0]) and torch.equal(one[1], two[1])
    # the warm start continues the last plan, so only a forgotten memory makes it plan as a fresh planner
    warm = shift_plan(two[1], 1)
    planner.reseed(3)
    fresh = ICEM(H, A, **ICEM_BUDGET, seed=3)
    assert torch.equal(planner.minimize(quadratic, warm), fresh.minimize(quadratic, warm))


@pytest.mark.parametrize(("iterations", "decay", "batches"), [(3, 1.25, [100, 80, 64]),
                                                               (6, 2.0, [100, 50, 25, 20, 20, 20])])
def test_icem_population_decays_to_twice_the_elites(
    iterations: int, decay: float, batches: list[int]
) -> None:
    sizes: list[int] = []

    def counting(actions: torch.Tensor) -> torch.Tensor:
        sizes.append(actions.shape[0])
        return quadratic(actions)

    planner = ICEM(H, A, samples=100, iterations=iterations, elites=10, init_std=0.6, min_std=0.05,
                   decay=decay)
    plan = planner.minimize(counting)
    assert sizes == [*batches, 1]  # then the final mean
    assert planner.last_evaluations == sum(batches) + 1
    sizes.clear()
    planner.minimize(counting, shift_plan(plan, 1))  # the kept elites take places, they add none
    assert sizes == [*batches, 1]
    assert planner.last_evaluations == sum(batches) + 1


def test_icem_kept_elites_never_lose_the_best_candidate_between_iterations() -> None:
    def batch_minima(keep_elites: float) -> list[float]:
        minima: list[float] = []

        def recording(actions: torch.Tensor) -> torch.Tensor:
            costs = double_well(actions)
            minima.append(float(costs.min()))
            return costs

        ICEM(H, A, samples=12, iterations=8, elites=4, init_std=1.0, min_std=0.05, keep_elites=keep_elites,
             seed=1).minimize(recording)
        return minima[:-1]  # the last one scores the final mean alone

    kept = batch_minima(0.5)
    assert (np.diff(kept) <= 1e-6).all()
    # the counterpart: resampling alone (the current mean is still scored) loses its best candidate
    lost = batch_minima(0.0)
    assert (np.diff(lost) > 1e-6).any()


@pytest.mark.parametrize("steps", [1, 3])
def test_icem_next_plan_scores_the_last_elites_shifted_as_its_warm_start(steps: int) -> None:
    batches: list[torch.Tensor] = []

    def recording(actions: torch.Tensor) -> torch.Tensor:
        batches.append(actions.clone())
        return quadratic(actions)

    planner = ICEM(H, A, **ICEM_BUDGET, keep_elites=0.5)  # keeps 4 of 8 elites
    plan = planner.minimize(recording)
    last = batches[-2]  # the last iteration's candidates (the final batch is the mean alone)
    elites = last[torch.argsort(quadratic(last))[:4]]
    expected = torch.cat([elites[:, steps:], elites[:, -1:].expand(-1, steps, -1)], dim=1)
    batches.clear()
    planner.minimize(recording, shift_plan(plan, steps))
    assert all(any(torch.equal(row, candidate) for candidate in batches[0]) for row in expected)
    # a warm start that does not continue the last plan gets no elites: it plans as without a memory
    state, foreign = planner.generator.get_state(), torch.full((H, A), 0.1)
    fresh = ICEM(H, A, **ICEM_BUDGET, keep_elites=0.5)
    fresh.generator.set_state(state)
    assert torch.equal(planner.minimize(quadratic, foreign), fresh.minimize(quadratic, foreign))


@pytest.mark.parametrize("bad", [{"elites": 0}, {"elites": 41}, {"iterations": 0}, {"keep_elites": 1.5},
                                 {"decay": 0.9}, {"alpha": 1.0}, {"beta": -1.0}])
def test_icem_refuses_bad_parameters_in_one_line(bad: dict) -> None:
    with pytest.raises(ValueError, match="^iCEM needs [^\\n]+$"):
        ICEM(H, A, **{**ICEM_BUDGET, **bad})


class ShiftModel(torch.nn.Module):
    """``z_{t+1} = z_t + a_t``: a latent model whose optimal plan is known exactly."""

    def rollout(self, z0: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return z0[:, None] + actions.cumsum(dim=1)


@pytest.mark.parametrize("config", sorted((Path(__file__).parents[1] / "configs" / "planner").glob("*.yaml")))
def test_default_budgets_plan_through_a_model(config: Path) -> None:
    """Every ``configs/planner`` file builds, and its plan moves the latent towards the goal."""
    from agents.cost import LatentCost
    from agents.energy import Energy, GoalDistance

    with initialize_config_dir(config_dir=str(config.parents[1]), version_base="1.3"):
        cfg = compose("evaluate", overrides=["checkpoint=unused", f"planner={config.stem}"]).planner  # with its defaults
    energy = Energy({"goal": GoalDistance(final_weight=1.0, running_weight=0.0, metric="l2")})
    planner = instantiate(cfg.optimizer, horizon=cfg.horizon, action_dim=2)
    z0, goal = torch.zeros(2), torch.tensor([1.5, -2.0])
    plan = planner.minimize(LatentCost(ShiftModel(), energy, z0, goal))
    assert plan.shape == (cfg.horizon, 2)
    assert plan.abs().max() <= 1.0
    final = z0 + plan.sum(dim=0)
    assert (final - goal).norm() < 0.1 * goal.norm()  # MPC replans, so one plan only has to get close
    assert planner.last_cost == pytest.approx(float((final - goal).norm()), abs=1e-4)


@pytest.mark.parametrize("name", ALL)
def test_a_batch_of_problems_gets_the_plans_each_gets_alone(name: str) -> None:
    """Three different problems in three slots, solved in one minimize_batch call, give bit for bit the
    plans and costs that minimize gives each alone with the slot's seed: planning many envs together
    changes nothing but the speed."""
    targets = torch.stack([TARGET, -TARGET, 0.5 * TARGET])
    warms = [None, torch.full((H, A), 0.2), None]

    def batch(actions: torch.Tensor) -> torch.Tensor:  # (3, N, H, A) -> (3, N)
        return (actions - targets[:, None]).pow(2).sum(dim=(2, 3))

    planner = make(name)
    for slot in range(3):
        planner.reseed(10 + slot, slot)
    plans = planner.minimize_batch(batch, warms, [0, 1, 2])
    costs = planner.last_costs
    for slot in range(3):
        alone = make(name, seed=10 + slot)
        plan = alone.minimize(lambda a, t=targets[slot]: (a - t).pow(2).sum(dim=(1, 2)), warms[slot])
        assert torch.equal(plans[slot], plan)
        assert costs[slot] == alone.last_cost
    assert not torch.equal(plans[0], plans[1])
