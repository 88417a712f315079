-- Rollups on TimescaleDB: continuous aggregates (the hourly one built on the minute one,
-- a hierarchical continuous aggregate, TimescaleDB >= 2.9), refreshed by TimescaleDB
-- policies; late data is picked up through TimescaleDB's invalidation log.  Retention
-- policies for the aggregates are set by carecircle.platform.rollups.apply_rollup_policies
-- from the platform settings.  The rollup_dirty table exists so that the ingest writer
-- and the rollup interface are the same on both back-ends; it stays empty here.

CREATE MATERIALIZED VIEW rollup_1m WITH (timescaledb.continuous) AS
SELECT time_bucket(INTERVAL '1 minute', time) AS bucket,
       resident_id, site_id, device_id, code,
       count(*)   AS n,
       sum(value) AS sum,
       min(value) AS min,
       max(value) AS max
FROM readings
GROUP BY time_bucket(INTERVAL '1 minute', time), resident_id, site_id, device_id, code
WITH NO DATA;

SELECT add_continuous_aggregate_policy('rollup_1m',
    start_offset => INTERVAL '3 days', end_offset => INTERVAL '1 minute',
    schedule_interval => INTERVAL '1 minute');

CREATE MATERIALIZED VIEW rollup_1h WITH (timescaledb.continuous) AS
SELECT time_bucket(INTERVAL '1 hour', bucket) AS bucket,
       resident_id, site_id, device_id, code,
       sum(n)   AS n,
       sum(sum) AS sum,
       min(min) AS min,
       max(max) AS max
FROM rollup_1m
GROUP BY time_bucket(INTERVAL '1 hour', bucket), resident_id, site_id, device_id, code
WITH NO DATA;

SELECT add_continuous_aggregate_policy('rollup_1h',
    start_offset => INTERVAL '7 days', end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '30 minutes');

ALTER MATERIALIZED VIEW rollup_1m SET (timescaledb.compress = true);
SELECT add_compression_policy('rollup_1m', compress_after => INTERVAL '7 days');

CREATE TABLE rollup_dirty (
    bucket    timestamptz PRIMARY KEY,
    marked_at timestamptz NOT NULL DEFAULT now()
);
