"""Per-resident models: routine (activity by hour and room), vitals, population priors."""

from carecircle.ml.models.findings import Finding
from carecircle.ml.models.priors import PopulationPriors, fit_priors
from carecircle.ml.models.routine import MIN_HISTORY_DAYS, RoutineModel, Thresholds
from carecircle.ml.models.vitals import VitalsModel

__all__ = [
    "MIN_HISTORY_DAYS",
    "Finding",
    "PopulationPriors",
    "RoutineModel",
    "Thresholds",
    "VitalsModel",
    "fit_priors",
]
