"""Evaluation: rules vs rules + models against labelled truth."""

from carecircle.ml.evaluation.compare import (
    MATCHES,
    ComparisonTable,
    KindScore,
    compare,
    score_alerts,
)
from carecircle.ml.evaluation.records import AlertRecord, Period, TruthIncident, read_truth

__all__ = [
    "MATCHES",
    "AlertRecord",
    "ComparisonTable",
    "KindScore",
    "Period",
    "TruthIncident",
    "compare",
    "read_truth",
    "score_alerts",
]
