"""Planners behind one interface (:class:`Planner`), chosen by ``configs/planner/*.yaml``."""

from agents.planners.base import Planner
from agents.planners.cem import CEM
from agents.planners.cem_gd import CEMGradient
from agents.planners.gradient import GradientPlanner
from agents.planners.icem import ICEM
from agents.planners.mppi import MPPI
from agents.protocols import Cost

__all__ = ["CEM", "CEMGradient", "Cost", "GradientPlanner", "ICEM", "MPPI", "Planner"]
