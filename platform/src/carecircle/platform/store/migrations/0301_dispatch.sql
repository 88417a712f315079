-- Dispatch: responder shifts, one dispatch per alert, tasks offered to responders
-- ("I go" locking), escalations, the notification outbox with every delivery attempt,
-- and the time bank (时间银行) of volunteers' service minutes.

-- Weekly shift windows of a responder (from ResponderSpec.shifts). days: 0 = Monday.
-- end_time <= start_time means the shift runs past midnight into the next day.
CREATE TABLE responder_shifts (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    responder_id cc_id NOT NULL REFERENCES responders (id) ON DELETE CASCADE,
    days         smallint[] NOT NULL CHECK (days <@ ARRAY[0, 1, 2, 3, 4, 5, 6]::smallint[]
                                            AND cardinality(days) > 0),
    start_time   time NOT NULL,
    end_time     time NOT NULL
);
CREATE INDEX responder_shifts_responder_idx ON responder_shifts (responder_id);

-- One row per alert that dispatch took on.
CREATE TABLE dispatches (
    alert_id     bigint PRIMARY KEY REFERENCES alerts (id) ON DELETE CASCADE,
    kind         text NOT NULL,
    site_id      cc_id NOT NULL,
    critical     boolean NOT NULL DEFAULT false,
    opened_at    timestamptz NOT NULL,              -- when the alert opened
    started_at   timestamptz NOT NULL,              -- when dispatch first saw it
    escalated_at timestamptz,
    closed_at    timestamptz,
    state        text NOT NULL DEFAULT 'searching'
                 CHECK (state IN ('searching', 'assigned', 'closed'))
);
CREATE INDEX dispatches_open_idx ON dispatches (state) WHERE state <> 'closed';

CREATE TABLE tasks (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id       bigint NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    responder_id   cc_id NOT NULL REFERENCES responders (id),
    status         text NOT NULL DEFAULT 'offered'
                   CHECK (status IN ('offered', 'accepted', 'declined', 'expired', 'released',
                                     'en_route', 'on_scene', 'resolved', 'handed_over',
                                     'cancelled')),
    via            text NOT NULL DEFAULT 'offer' CHECK (via IN ('offer', 'escalation')),
    eta_s          double precision,
    distance_m     double precision,
    offered_at     timestamptz NOT NULL,
    deadline       timestamptz,                     -- an unanswered offer expires then
    accepted_at    timestamptz,
    declined_at    timestamptz,
    expired_at     timestamptz,
    released_at    timestamptz,
    en_route_at    timestamptz,
    on_scene_at    timestamptz,
    resolved_at    timestamptz,
    handed_over_at timestamptz,
    cancelled_at   timestamptz,
    outcome        text CHECK (outcome IN ('helped', 'hospital', 'resident_fine', 'false_alarm')),
    note           text NOT NULL DEFAULT '',
    updated_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (alert_id, responder_id)
);
-- "I go": at most one responder holds an alert at a time.
CREATE UNIQUE INDEX tasks_one_taker_idx ON tasks (alert_id)
    WHERE status IN ('accepted', 'en_route', 'on_scene');
CREATE INDEX tasks_responder_idx ON tasks (responder_id, status);
CREATE INDEX tasks_offer_deadline_idx ON tasks (deadline) WHERE status = 'offered';

CREATE TABLE escalations (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id    bigint NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    target_kind text NOT NULL CHECK (target_kind IN ('care_worker', 'facility_staff', 'family',
                                                     'doctor', 'emergency')),
    target      text NOT NULL,                      -- responder / family member id, or number
    at          timestamptz NOT NULL,
    reason      text NOT NULL
);
CREATE INDEX escalations_alert_idx ON escalations (alert_id, at);

-- The notification outbox: every message to a person, and how its delivery went.
CREATE TABLE notifications (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id        bigint REFERENCES alerts (id) ON DELETE CASCADE,
    task_id         bigint REFERENCES tasks (id) ON DELETE CASCADE,
    channel         text NOT NULL CHECK (channel IN ('mqtt', 'webhook', 'email', 'sms')),
    target          text NOT NULL,
    payload         jsonb NOT NULL,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL,
    next_attempt_at timestamptz NOT NULL,
    delivered_at    timestamptz,
    last_error      text
);
CREATE INDEX notifications_due_idx ON notifications (next_attempt_at) WHERE status = 'pending';
CREATE INDEX notifications_alert_idx ON notifications (alert_id);

CREATE TABLE notification_attempts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    notification_id bigint NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    at              timestamptz NOT NULL,
    ok              boolean NOT NULL,
    error           text,
    detail          text
);
CREATE INDEX notification_attempts_idx ON notification_attempts (notification_id, at);

-- Time bank: service minutes credited to volunteers for resolved tasks.
CREATE TABLE time_bank (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    responder_id cc_id NOT NULL REFERENCES responders (id) ON DELETE CASCADE,
    task_id      bigint UNIQUE REFERENCES tasks (id) ON DELETE SET NULL,
    minutes      integer NOT NULL CHECK (minutes > 0),
    credited_at  timestamptz NOT NULL,
    note         text NOT NULL DEFAULT ''
);
CREATE INDEX time_bank_responder_idx ON time_bank (responder_id, credited_at);
