-- Time series on plain PostgreSQL: native range partitioning by device time, one
-- partition a day, created ahead and dropped after the retention period by the
-- store's maintenance job (carecircle.platform.store.timeseries.PlainBackend).
-- A DEFAULT partition catches rows outside the prepared range, so no insert fails;
-- maintenance moves them into their own partition when it creates it.

CREATE TABLE readings (
    time        timestamptz NOT NULL,           -- device time
    received_at timestamptz NOT NULL,           -- platform receive time
    msg_id      uuid NOT NULL,                  -- idempotency key from the gateway
    gateway_id  text NOT NULL,
    device_id   text NOT NULL,
    resident_id text,
    site_id     text NOT NULL,
    code        text NOT NULL,                  -- carecircle.common.contract.Code
    value       double precision NOT NULL,
    UNIQUE (msg_id, time)
) PARTITION BY RANGE (time);
CREATE TABLE readings_default PARTITION OF readings DEFAULT;
CREATE INDEX readings_resident_code_time_idx ON readings (resident_id, code, time DESC);
CREATE INDEX readings_device_time_idx ON readings (device_id, time DESC);

CREATE TABLE events (
    time        timestamptz NOT NULL,
    received_at timestamptz NOT NULL,
    msg_id      uuid NOT NULL,
    gateway_id  text NOT NULL,
    device_id   text NOT NULL,
    resident_id text,
    site_id     text NOT NULL,
    kind        text NOT NULL,                  -- event, status or heartbeat
    code        text NOT NULL,
    value       double precision,
    attrs       jsonb NOT NULL DEFAULT '{}'::jsonb,
    UNIQUE (msg_id, time)
) PARTITION BY RANGE (time);
CREATE TABLE events_default PARTITION OF events DEFAULT;
CREATE INDEX events_resident_time_idx ON events (resident_id, time DESC);
CREATE INDEX events_device_time_idx ON events (device_id, time DESC);
