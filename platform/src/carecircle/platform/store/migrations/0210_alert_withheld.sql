-- Rule alerts a gate (a per-resident model) withheld because the condition is normal
-- for that person, with the gate's explanation.  One row per (subject, kind, episode):
-- ``first_at`` is when the rule first found it (when the rules alone would have opened
-- the alert), ``last_seen_at`` the last check that still found it; ``released_alert_id``
-- the alert opened when a later check was no longer withheld (the alert was delayed).
-- `carecircle eval` counts these rows as the rules' own alerts in "rules alone".
CREATE TABLE alert_withheld (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subject           text NOT NULL,
    resident_id       text,
    site_id           text NOT NULL,
    kind              text NOT NULL,
    detector          text NOT NULL,
    gate              text NOT NULL,
    episode_start     timestamptz NOT NULL,
    first_at          timestamptz NOT NULL,
    last_seen_at      timestamptz NOT NULL,
    occurrences       integer NOT NULL DEFAULT 1,
    message           text NOT NULL DEFAULT '',
    explanation       jsonb NOT NULL DEFAULT '{}'::jsonb,
    released_alert_id bigint REFERENCES alerts (id) ON DELETE SET NULL,
    UNIQUE (subject, kind, episode_start)
);
CREATE INDEX alert_withheld_first_idx ON alert_withheld (first_at);
