"""FHIR R4 export of vital signs: ``Observation`` resources with LOINC codes and UCUM units.

``GET /api/v1/fhir/Observation?patient=<resident id>`` returns a ``searchset`` Bundle
of the resident's vital-sign readings (only codes that have a LOINC code in the
CareCircle vocabulary: heart rate, SpO2, respiratory rate, skin and body temperature,
steps).  Access is the same as for readings (vitals consent for family members) and
every export is written to the audit log.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from carecircle.common.contract import VOCABULARY, Category, Code
from carecircle.platform.api.deps import ConnDep, PrincipalDep, StateDep
from carecircle.platform.api.errors import InvalidInput
from carecircle.platform.api.params import ID_PATTERN, utc
from carecircle.platform.api.repo import audit, vitals
from carecircle.platform.api.routers.residents import resident_access, window
from carecircle.platform.auth.policy import Action

router = APIRouter(tags=["fhir"])

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
FHIR_JSON = "application/fhir+json"

#: LOINC code → CareCircle code, for the codes that have one.
BY_LOINC: dict[str, Code] = {s.loinc: c for c, s in VOCABULARY.items() if s.loinc}


class FhirBundle(BaseModel):
    model_config = ConfigDict(extra="allow")
    resourceType: Literal["Bundle"]  # noqa: N815 (FHIR spelling)
    type: Literal["searchset"]
    total: int
    entry: list[dict[str, Any]]


def observation(resident_id: str, row: dict[str, Any]) -> dict[str, Any]:
    """One reading as a FHIR R4 Observation."""
    s = VOCABULARY[Code(row["code"])]
    category = "vital-signs" if s.category is Category.VITAL else "activity"
    return {
        "resourceType": "Observation",
        "id": f"{row['msg_id']}-{row['code']}",
        "status": "final",
        "category": [{"coding": [{"system": OBS_CATEGORY, "code": category}], "text": category}],
        "code": {
            "coding": [{"system": LOINC, "code": s.loinc, "display": s.description}],
            "text": s.description,
        },
        "subject": {"reference": f"Patient/{resident_id}"},
        "effectiveDateTime": row["time"].isoformat(),
        "valueQuantity": {"value": row["value"], "unit": s.unit, "system": UCUM, "code": s.unit},
        "device": {"reference": f"Device/{row['device_id']}"},
    }


def _date_bounds(values: list[str]) -> tuple[datetime | None, datetime | None]:
    since = until = None
    for v in values:
        prefix, raw = (v[:2], v[2:]) if v[:2] in ("ge", "gt", "le", "lt") else ("eq", v)
        try:
            parsed = utc(datetime.fromisoformat(raw))
        except ValueError as err:
            raise InvalidInput(f"date {v!r} is not [ge|gt|le|lt]<ISO date-time>") from err
        assert parsed is not None
        t = parsed
        if prefix in ("ge", "gt"):
            since = t
        elif prefix in ("le", "lt"):
            until = t
        else:
            since, until = t, t + timedelta(days=1)
    return since, until


@router.get(
    "/fhir/Observation",
    response_model=FhirBundle,
    responses={200: {"content": {FHIR_JSON: {}}}},
)
def search_observations(
    p: PrincipalDep,
    st: StateDep,
    conn: ConnDep,
    patient: Annotated[str, Query(pattern=ID_PATTERN, max_length=64, description="resident id")],
    code: Annotated[
        list[Annotated[str, Query(max_length=64)]] | None,
        Query(description="LOINC code, optionally as http://loinc.org|8867-4"),
    ] = None,
    date: Annotated[
        list[Annotated[str, Query(max_length=40)]] | None,
        Query(description="ge/gt/le/lt + ISO date-time"),
    ] = None,
    count: Annotated[int, Query(alias="_count", ge=1, le=1000)] = 100,
) -> JSONResponse:
    """Vital-sign Observations of one resident (default: the last 24 h), newest first."""
    resident_access(conn, p, patient, Action.RESIDENT_VITALS)
    codes: list[str] = []
    for c in code or []:
        loinc = c.split("|", 1)[1] if c.startswith(LOINC + "|") else c
        if loinc not in BY_LOINC:
            raise InvalidInput(f"no vital sign with LOINC code {loinc!r} here")
        codes.append(BY_LOINC[loinc].value)
    since, until = window(*_date_bounds(date or []), st.clock.now(), timedelta(days=1))
    rows, _ = vitals.readings(
        conn,
        patient,
        codes=codes or [c.value for c in BY_LOINC.values()],
        since=since,
        until=until,
        limit=count,
        cursor=None,
    )
    audit(
        conn,
        p.actor,
        "resident.export_fhir",
        "resident",
        patient,
        {"since": since.isoformat(), "until": until.isoformat(), "count": len(rows)},
    )
    entries = [
        {"fullUrl": f"urn:uuid:{r['msg_id']}", "resource": observation(patient, r)} for r in rows
    ]
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(entries),
        "entry": entries,
    }
    return JSONResponse(bundle, media_type=FHIR_JSON)
