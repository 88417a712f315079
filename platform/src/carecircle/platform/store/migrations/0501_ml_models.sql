-- ml: the versioned model registry.  Each row describes one trained model file kept
-- under the registry directory (<owner>/<model>/<version>/model.joblib + meta.json);
-- a file is only ever loaded when its path is inside that directory and its SHA-256
-- equals `sha256` here.  At most one version per (owner, model) is active.
CREATE TABLE ml_models (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner         text NOT NULL,                 -- resident id, or 'population.<profile>'
    resident_id   cc_id REFERENCES residents (id) ON DELETE CASCADE,
    model         text NOT NULL CHECK (model IN ('routine', 'vitals', 'priors')),
    version       integer NOT NULL CHECK (version > 0),
    path          text NOT NULL,                 -- relative to the registry directory
    sha256        text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    params_sha256 text NOT NULL CHECK (params_sha256 ~ '^[0-9a-f]{64}$'),
    data_since    timestamptz NOT NULL,
    data_until    timestamptz NOT NULL,
    features      text[] NOT NULL DEFAULT '{}',
    metrics       jsonb NOT NULL DEFAULT '{}'::jsonb,
    seed          integer NOT NULL,
    status        text NOT NULL DEFAULT 'candidate'
                  CHECK (status IN ('candidate', 'active', 'retired', 'rejected')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    promoted_at   timestamptz,
    UNIQUE (owner, model, version),
    CHECK (data_since < data_until)
);
CREATE UNIQUE INDEX ml_models_one_active_idx ON ml_models (owner, model) WHERE status = 'active';
CREATE INDEX ml_models_resident_idx ON ml_models (resident_id, model, status);
