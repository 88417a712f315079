-- Time series on TimescaleDB: hypertables with one-day chunks, compressed by device.
-- Retention policies are set from the platform settings by
-- carecircle.platform.store.timeseries.TimescaleBackend.apply_policies.

CREATE TABLE readings (
    time        timestamptz NOT NULL,
    received_at timestamptz NOT NULL,
    msg_id      uuid NOT NULL,
    gateway_id  text NOT NULL,
    device_id   text NOT NULL,
    resident_id text,
    site_id     text NOT NULL,
    code        text NOT NULL,
    value       double precision NOT NULL,
    UNIQUE (msg_id, time)
);
SELECT create_hypertable('readings', 'time', chunk_time_interval => INTERVAL '1 day',
                         if_not_exists => TRUE);
CREATE INDEX readings_resident_code_time_idx ON readings (resident_id, code, time DESC);
CREATE INDEX readings_device_time_idx ON readings (device_id, time DESC);
ALTER TABLE readings SET (timescaledb.compress,
                          timescaledb.compress_segmentby = 'device_id, code',
                          timescaledb.compress_orderby = 'time DESC');
SELECT add_compression_policy('readings', compress_after => INTERVAL '7 days',
                              if_not_exists => TRUE);

CREATE TABLE events (
    time        timestamptz NOT NULL,
    received_at timestamptz NOT NULL,
    msg_id      uuid NOT NULL,
    gateway_id  text NOT NULL,
    device_id   text NOT NULL,
    resident_id text,
    site_id     text NOT NULL,
    kind        text NOT NULL,
    code        text NOT NULL,
    value       double precision,
    attrs       jsonb NOT NULL DEFAULT '{}'::jsonb,
    UNIQUE (msg_id, time)
);
SELECT create_hypertable('events', 'time', chunk_time_interval => INTERVAL '7 days',
                         if_not_exists => TRUE);
CREATE INDEX events_resident_time_idx ON events (resident_id, time DESC);
CREATE INDEX events_device_time_idx ON events (device_id, time DESC);
ALTER TABLE events SET (timescaledb.compress,
                        timescaledb.compress_segmentby = 'device_id',
                        timescaledb.compress_orderby = 'time DESC');
SELECT add_compression_policy('events', compress_after => INTERVAL '30 days',
                              if_not_exists => TRUE);
