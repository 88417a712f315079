"""Normalisation and validation: native messages → canonical envelopes or dead letters."""

from carecircle.gateway.pipeline.normalise import (
    MAX_FUTURE,
    MAX_PAST,
    Normaliser,
    Outcome,
    dead_letter_record,
    make_status,
)

__all__ = ["MAX_FUTURE", "MAX_PAST", "Normaliser", "Outcome", "dead_letter_record", "make_status"]
