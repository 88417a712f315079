"""Versioned model files with their metadata, promotion and rollback.

Layout: ``<root>/<owner>/<model>/<version>/model.joblib`` plus ``meta.json`` (data
window, features, metrics, seed, SHA-256 of the file, SHA-256 of the learnt
parameters, library versions).  Each file has a row in ``ml_models``.

Safety: joblib files are pickles, so :meth:`ModelRegistry.load` only opens a file
that (1) has a registry row, (2) lies inside the registry directory after resolving
links, and (3) has exactly the SHA-256 recorded in that row.  Nothing else is ever
unpickled.

Reproducibility: ``params_sha256`` hashes the parameters the model learnt (arrays
by dtype, shape and bytes), so the same data and seed give the same hash even if a
library changes how it pickles; in practice the joblib bytes are identical too.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform as _platform
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import psycopg
import sklearn
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from carecircle.common.errors import Conflict, NotFound, StoreError

log = logging.getLogger(__name__)
Conn = psycopg.Connection[Any]
MODEL_FILE = "model.joblib"
META_FILE = "meta.json"


def _feed(h: Any, obj: Any) -> None:
    if isinstance(obj, np.ndarray):
        h.update(f"nd{obj.dtype.str}{obj.shape}".encode())
        h.update(np.ascontiguousarray(obj).tobytes())
    elif isinstance(obj, dict):
        h.update(b"{")
        for key in sorted(obj, key=str):
            h.update(str(key).encode() + b":")
            _feed(h, obj[key])
        h.update(b"}")
    elif isinstance(obj, list | tuple):
        h.update(b"[")
        for item in obj:
            _feed(h, item)
        h.update(b"]")
    elif isinstance(obj, float):
        h.update(repr(float(obj)).encode())
    else:
        h.update(repr(obj).encode())


def fingerprint(params: Any) -> str:
    """SHA-256 of a model's learnt parameters (deterministic across runs)."""
    h = hashlib.sha256()
    _feed(h, params)
    return h.hexdigest()


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class ModelRecord:
    id: int
    owner: str
    resident_id: str | None
    model: str
    version: int
    path: str
    sha256: str
    params_sha256: str
    data_since: datetime
    data_until: datetime
    features: list[str]
    metrics: dict[str, Any]
    seed: int
    status: str
    created_at: datetime
    promoted_at: datetime | None

    @property
    def detector(self) -> str:
        return f"ml:{self.model}@{self.version}"

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ModelRecord:
        return cls(**{k: row[k] for k in cls.__dataclass_fields__})


_COLUMNS = ", ".join(ModelRecord.__dataclass_fields__)


class ModelRegistry:
    """Model files under ``root`` and their rows in ``ml_models``."""

    def __init__(self, root: Path, cache_size: int = 4096) -> None:
        self.root = root.resolve()
        self._cache: OrderedDict[tuple[int, str], Any] = OrderedDict()
        self._cache_size = cache_size

    # ---- writing -------------------------------------------------------------------
    def save(
        self,
        conn: Conn,
        *,
        owner: str,
        resident_id: str | None,
        model: str,
        obj: Any,
        params: Any,
        data_since: datetime,
        data_until: datetime,
        features: list[str],
        metrics: dict[str, Any],
        seed: int,
    ) -> ModelRecord:
        """Write a new candidate version of ``model`` for ``owner``."""
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"ml:{owner}:{model}",))
            row = conn.execute(
                "SELECT COALESCE(max(version), 0) + 1 FROM ml_models "
                "WHERE owner = %s AND model = %s",
                (owner, model),
            ).fetchone()
            assert row is not None
            version = int(row[0])
            rel = Path(owner) / model / str(version)
            folder = self.root / rel
            self._check_inside(folder)
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / (MODEL_FILE + ".tmp")
            joblib.dump(obj, tmp)
            tmp.replace(folder / MODEL_FILE)
            sha = _sha256_file(folder / MODEL_FILE)
            params_sha = fingerprint(params)
            meta = {
                "owner": owner,
                "resident_id": resident_id,
                "model": model,
                "version": version,
                "data_window": [data_since.isoformat(), data_until.isoformat()],
                "features": features,
                "metrics": metrics,
                "seed": seed,
                "sha256": sha,
                "params_sha256": params_sha,
                "sklearn": sklearn.__version__,
                "numpy": np.__version__,
                "python": _platform.python_version(),
            }
            (folder / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))
            with conn.cursor(row_factory=dict_row) as cur:
                rec = cur.execute(
                    f"""
                    INSERT INTO ml_models (owner, resident_id, model, version, path, sha256,
                        params_sha256, data_since, data_until, features, metrics, seed)
                    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                    RETURNING {_COLUMNS}
                    """,  # noqa: S608
                    (
                        owner,
                        resident_id,
                        model,
                        version,
                        str(rel / MODEL_FILE),
                        sha,
                        params_sha,
                        data_since,
                        data_until,
                        features,
                        Jsonb(metrics),
                        seed,
                    ),
                ).fetchone()
            assert rec is not None
        return ModelRecord.from_row(rec)

    # ---- reading ---------------------------------------------------------------------
    def _check_inside(self, path: Path) -> Path:
        resolved = path.resolve()
        if not resolved.is_relative_to(self.root):
            raise StoreError(f"model path {path} is outside the registry {self.root}; refused")
        return resolved

    def load(self, record: ModelRecord) -> Any:
        """Unpickle a registered model after checking its place and its SHA-256."""
        key = (record.id, record.sha256)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        path = self._check_inside(self.root / record.path)
        try:
            actual = _sha256_file(path)
        except OSError as err:
            raise NotFound(
                f"model file of {record.owner}/{record.model}@{record.version} "
                f"is missing: {err.strerror}"
            ) from err
        if actual != record.sha256:
            raise StoreError(
                f"model file of {record.owner}/{record.model}@{record.version} does not match "
                "its registered SHA-256; refused to load it"
            )
        obj = joblib.load(path)
        self._cache[key] = obj
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return obj

    def get(self, conn: Conn, model_id: int) -> ModelRecord:
        with conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                f"SELECT {_COLUMNS} FROM ml_models WHERE id = %s",  # noqa: S608
                (model_id,),
            ).fetchone()
        if row is None:
            raise NotFound(f"model {model_id} not found")
        return ModelRecord.from_row(row)

    def active(
        self,
        conn: Conn,
        model: str,
        owners: list[str] | None = None,
        *,
        features: Sequence[str] | None = None,
    ) -> dict[str, ModelRecord]:
        """Active versions of ``model`` by owner.

        ``features``: only versions trained on exactly this feature list (the feature
        list each version was saved with is its format version: a model trained on
        other features is not used, and the nightly training replaces it)."""
        query = f"SELECT {_COLUMNS} FROM ml_models WHERE status = 'active' AND model = %s"  # noqa: S608
        args: list[Any] = [model]
        if owners is not None:
            query += " AND owner = ANY(%s)"
            args.append(owners)
        if features is not None:
            query += " AND features = %s::text[]"
            args.append(list(features))
        with conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(query, args).fetchall()
        return {r["owner"]: ModelRecord.from_row(r) for r in rows}

    def list(self, conn: Conn, owner: str | None = None, limit: int = 200) -> list[ModelRecord]:
        query = f"SELECT {_COLUMNS} FROM ml_models"  # noqa: S608
        args: list[Any] = []
        if owner:
            query += " WHERE owner = %s"
            args.append(owner)
        query += " ORDER BY owner, model, version DESC LIMIT %s"
        args.append(limit)
        with conn.cursor(row_factory=dict_row) as cur:
            return [ModelRecord.from_row(r) for r in cur.execute(query, args).fetchall()]

    # ---- lifecycle ----------------------------------------------------------------
    def promote(self, conn: Conn, model_id: int, *, at: datetime, actor: str) -> ModelRecord:
        """Make ``model_id`` the active version, retiring the previous one, atomically."""
        with conn.transaction():
            row = conn.execute(
                "SELECT owner, model, status FROM ml_models WHERE id = %s FOR UPDATE", (model_id,)
            ).fetchone()
            if row is None:
                raise NotFound(f"model {model_id} not found")
            owner, model, status = str(row[0]), str(row[1]), str(row[2])
            if status == "active":
                raise Conflict(f"model {model_id} is already active")
            conn.execute(
                "UPDATE ml_models SET status = 'retired' "
                "WHERE owner = %s AND model = %s AND status = 'active'",
                (owner, model),
            )
            conn.execute(
                "UPDATE ml_models SET status = 'active', promoted_at = %s WHERE id = %s",
                (at, model_id),
            )
            self._audit(conn, at, actor, "ml.promote", model_id, {"from_status": status})
        return self.get(conn, model_id)

    def reject(self, conn: Conn, model_id: int, reason: dict[str, Any]) -> None:
        with conn.transaction():
            conn.execute(
                "UPDATE ml_models SET status = 'rejected', "
                "metrics = metrics || %s WHERE id = %s AND status = 'candidate'",
                (Jsonb({"rejected": reason}), model_id),
            )

    def rollback(
        self, conn: Conn, owner: str, model: str, *, at: datetime, actor: str
    ) -> ModelRecord:
        """Re-activate the previously promoted version of ``owner``'s ``model``."""
        with conn.transaction():
            rows = conn.execute(
                "SELECT id, status FROM ml_models WHERE owner = %s AND model = %s "
                "AND promoted_at IS NOT NULL ORDER BY promoted_at DESC, version DESC FOR UPDATE",
                (owner, model),
            ).fetchall()
            current = [int(r[0]) for r in rows if r[1] == "active"]
            previous = [int(r[0]) for r in rows if r[1] == "retired"]
            if not current:
                raise NotFound(f"{owner} has no active {model} model to roll back")
            if not previous:
                raise Conflict(f"{owner} has no earlier {model} version to roll back to")
            conn.execute("UPDATE ml_models SET status = 'retired' WHERE id = %s", (current[0],))
            conn.execute(
                "UPDATE ml_models SET status = 'active', promoted_at = %s WHERE id = %s",
                (at, previous[0]),
            )
            self._audit(conn, at, actor, "ml.rollback", previous[0], {"from": current[0]})
        return self.get(conn, previous[0])

    @staticmethod
    def _audit(
        conn: Conn, at: datetime, actor: str, action: str, model_id: int, detail: dict[str, Any]
    ) -> None:
        conn.execute(
            "INSERT INTO audit_log (at, actor, action, object_type, object_id, detail) "
            "VALUES (%s, %s, %s, 'ml_model', %s, %s)",
            (at, actor, action, str(model_id), Jsonb(detail)),
        )
