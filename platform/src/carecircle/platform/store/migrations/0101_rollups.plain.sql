-- Rollups on plain PostgreSQL: real tables, refreshed incrementally by the scheduler job
-- carecircle.platform.rollups.refresh_rollups.  Ingest marks every minute bucket that
-- received readings (late ones included) in rollup_dirty, in the same transaction as
-- the rows; the job re-aggregates exactly those buckets, so late data is never missed.
-- One row per (bucket, device_id, code); resident/site are the device's at that time.

CREATE TABLE rollup_1m (
    bucket      timestamptz NOT NULL,
    resident_id text,
    site_id     text NOT NULL,
    device_id   text NOT NULL,
    code        text NOT NULL,
    n           bigint NOT NULL,
    sum         double precision NOT NULL,
    min         double precision NOT NULL,
    max         double precision NOT NULL,
    PRIMARY KEY (bucket, device_id, code)
);
CREATE INDEX rollup_1m_resident_code_idx ON rollup_1m (resident_id, code, bucket DESC);

CREATE TABLE rollup_1h (
    bucket      timestamptz NOT NULL,
    resident_id text,
    site_id     text NOT NULL,
    device_id   text NOT NULL,
    code        text NOT NULL,
    n           bigint NOT NULL,
    sum         double precision NOT NULL,
    min         double precision NOT NULL,
    max         double precision NOT NULL,
    PRIMARY KEY (bucket, device_id, code)
);
CREATE INDEX rollup_1h_resident_code_idx ON rollup_1h (resident_id, code, bucket DESC);

-- Minute buckets with new raw readings not yet folded into the rollups.
CREATE TABLE rollup_dirty (
    bucket    timestamptz PRIMARY KEY,
    marked_at timestamptz NOT NULL DEFAULT now()
);
