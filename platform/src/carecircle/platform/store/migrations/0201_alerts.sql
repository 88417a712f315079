-- Alerts domain: rule configuration per scope, and the last activity per sensor code
-- (maintained by the alert engine on every ingest hand-off, read by absence checks).

CREATE TABLE alert_rules (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    scope      text NOT NULL CHECK (scope IN ('global', 'site', 'resident')),
    scope_id   cc_id,                                -- site or resident id; NULL for global
    kind       text NOT NULL,
    params     jsonb NOT NULL DEFAULT '{}'::jsonb,   -- validated by alerts.config models
    enabled    boolean NOT NULL DEFAULT true,
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text NOT NULL,
    CHECK ((scope = 'global') = (scope_id IS NULL)),
    UNIQUE NULLS NOT DISTINCT (scope, scope_id, kind)
);

-- One row per (device, activity code): when it last showed activity and its last value.
-- Upserts are order-independent (GREATEST / newer-wins), so several ingest workers may
-- update the same row in any order.
CREATE TABLE activity_state (
    device_id      text NOT NULL,
    code           text NOT NULL,
    site_id        text NOT NULL,
    resident_id    text,
    room_id        text,
    last_active_at timestamptz,           -- last activation (motion 1, door change, steps > 0)
    last_value     double precision,
    last_value_at  timestamptz NOT NULL,  -- device time of last_value
    last_change_at timestamptz,           -- when the value last changed (bed in/out)
    PRIMARY KEY (device_id, code)
);
CREATE INDEX activity_state_resident_idx ON activity_state (resident_id);
CREATE INDEX activity_state_site_idx ON activity_state (site_id);

CREATE INDEX alerts_kind_subject_opened_idx ON alerts (subject, kind, opened_at DESC);
