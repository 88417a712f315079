-- CareCircle core schema: places, sites (households and facilities), rooms, residents,
-- gateways, devices, responders, family links, alerts, dead letters and the audit log.
-- Identifiers are short text ids (safe in MQTT topics and logs); residents are named
-- only in `residents.display_name`, never in ids.

CREATE DOMAIN cc_id AS text CHECK (VALUE ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$');

-- The four levels of place: prefecture -> county/city -> township/street -> village/community.
CREATE TABLE places (
    id            cc_id PRIMARY KEY,
    parent_id     cc_id REFERENCES places (id),
    level         text NOT NULL CHECK (level IN ('prefecture', 'county', 'township', 'village')),
    name          text NOT NULL,
    division_code text,                                -- GB/T 2260 administrative code
    lat           double precision CHECK (lat BETWEEN -90 AND 90),
    lon           double precision CHECK (lon BETWEEN -180 AND 180),
    created_at    timestamptz NOT NULL DEFAULT now(),
    CHECK ((level = 'prefecture') = (parent_id IS NULL))
);
CREATE INDEX places_parent_idx ON places (parent_id);

CREATE FUNCTION cc_place_level_rank(level text) RETURNS int
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE level WHEN 'prefecture' THEN 1 WHEN 'county' THEN 2
                      WHEN 'township' THEN 3 WHEN 'village' THEN 4 END
$$;

CREATE FUNCTION cc_check_place_parent() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE parent_level text;
BEGIN
    IF NEW.parent_id IS NULL THEN RETURN NEW; END IF;
    SELECT level INTO parent_level FROM places WHERE id = NEW.parent_id;
    IF cc_place_level_rank(parent_level) <> cc_place_level_rank(NEW.level) - 1 THEN
        RAISE EXCEPTION 'a % must sit directly under a %, not under a %', NEW.level,
            (ARRAY['prefecture', 'county', 'township'])[cc_place_level_rank(NEW.level) - 1],
            parent_level
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER places_parent_level BEFORE INSERT OR UPDATE ON places
    FOR EACH ROW EXECUTE FUNCTION cc_check_place_parent();

-- A site is where care happens: a household, or a service facility.
CREATE TABLE sites (
    id         cc_id PRIMARY KEY,
    kind       text NOT NULL CHECK (kind IN ('household', 'nursing_home', 'day_care',
                                             'community_station', 'meal_point')),
    place_id   cc_id NOT NULL REFERENCES places (id),  -- village/community (or township)
    name       text NOT NULL,
    address    text,
    lat        double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lon        double precision NOT NULL CHECK (lon BETWEEN -180 AND 180),
    capacity   integer CHECK (capacity > 0),           -- beds or day places of a facility
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sites_place_idx ON sites (place_id);

CREATE VIEW households AS
    SELECT id, place_id, name, address, lat, lon, created_at FROM sites WHERE kind = 'household';
CREATE VIEW facilities AS
    SELECT id, kind, place_id, name, address, lat, lon, capacity, created_at
    FROM sites WHERE kind <> 'household';

CREATE TABLE rooms (
    id      cc_id PRIMARY KEY,
    site_id cc_id NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    kind    text NOT NULL CHECK (kind IN ('bedroom', 'bathroom', 'toilet', 'kitchen',
                                          'living_room', 'entrance', 'corridor', 'dining',
                                          'activity', 'other')),
    name    text NOT NULL
);
CREATE INDEX rooms_site_idx ON rooms (site_id);

CREATE TABLE residents (
    id               cc_id PRIMARY KEY,
    site_id          cc_id NOT NULL REFERENCES sites (id),     -- home or nursing home
    room_id          cc_id REFERENCES rooms (id),              -- bedroom / nursing-home room
    day_care_site_id cc_id REFERENCES sites (id),              -- attends this day-care centre
    display_name     text NOT NULL,                            -- how staff address them
    birth_year       integer CHECK (birth_year BETWEEN 1900 AND 2100),
    sex              text NOT NULL DEFAULT 'unknown'
                     CHECK (sex IN ('female', 'male', 'other', 'unknown')),
    lives_alone      boolean NOT NULL DEFAULT false,
    care_level       text NOT NULL DEFAULT 'independent'
                     CHECK (care_level IN ('independent', 'assisted', 'dependent')),
    conditions       text[] NOT NULL DEFAULT '{}',             -- dementia, hypertension, ...
    care_profile     jsonb NOT NULL DEFAULT '{}'::jsonb,       -- per-resident overrides
    presence         text NOT NULL DEFAULT 'home'
                     CHECK (presence IN ('home', 'away', 'hospital', 'day_care')),
    presence_until   timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX residents_site_idx ON residents (site_id);

CREATE TABLE gateways (
    id             cc_id PRIMARY KEY,
    site_id        cc_id NOT NULL REFERENCES sites (id),
    secret_hash    text,                       -- per-gateway broker credential, hashed
    status         text NOT NULL DEFAULT 'unknown' CHECK (status IN ('online', 'offline', 'unknown')),
    last_seen      timestamptz,
    config_version integer NOT NULL DEFAULT 0,
    software       text,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX gateways_site_idx ON gateways (site_id);

CREATE TABLE devices (
    id                cc_id PRIMARY KEY,
    gateway_id        cc_id NOT NULL REFERENCES gateways (id),
    site_id           cc_id NOT NULL REFERENCES sites (id),
    room_id           cc_id REFERENCES rooms (id),
    resident_id       cc_id REFERENCES residents (id),
    family            text NOT NULL CHECK (family IN ('zigbee2mqtt', 'wearable', 'homeassistant',
                                                      'bed_sensor')),
    native_id         text NOT NULL,               -- friendly name / MAC on the local broker
    type              text NOT NULL,               -- motion_sensor, door_sensor, wearable, ...
    model             text,
    power             text NOT NULL DEFAULT 'battery' CHECK (power IN ('battery', 'mains')),
    offline_timeout_s integer NOT NULL DEFAULT 3600 CHECK (offline_timeout_s > 0),
    status            text NOT NULL DEFAULT 'unknown' CHECK (status IN ('online', 'offline', 'unknown')),
    last_seen         timestamptz,
    battery           real CHECK (battery BETWEEN 0 AND 100),
    created_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (gateway_id, native_id)
);
CREATE INDEX devices_resident_idx ON devices (resident_id);
CREATE INDEX devices_site_idx ON devices (site_id);

-- People who respond: volunteers, township care workers, facility staff, family, doctors.
CREATE TABLE responders (
    id            cc_id PRIMARY KEY,
    display_name  text NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('volunteer', 'care_worker', 'facility_staff',
                                                'family', 'doctor')),
    place_id      cc_id REFERENCES places (id),     -- village/township they belong to
    site_id       cc_id REFERENCES sites (id),      -- facility they work at
    lat           double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lon           double precision NOT NULL CHECK (lon BETWEEN -180 AND 180),
    travel_mode   text NOT NULL DEFAULT 'walk' CHECK (travel_mode IN ('walk', 'ebike', 'car')),
    skills        text[] NOT NULL DEFAULT '{}',     -- first_aid, nursing, can_lift
    availability  text NOT NULL DEFAULT 'off_duty'
                  CHECK (availability IN ('on_duty', 'off_duty', 'busy')),
    phone         text,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- Which places (villages/townships) or residents a responder covers.
CREATE TABLE responder_coverage (
    responder_id cc_id NOT NULL REFERENCES responders (id) ON DELETE CASCADE,
    place_id     cc_id NOT NULL REFERENCES places (id),
    PRIMARY KEY (responder_id, place_id)
);

CREATE TABLE family_members (
    id           cc_id PRIMARY KEY,
    display_name text NOT NULL,
    phone        text,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- A family member sees only linked residents, and only what the consent allows.
CREATE TABLE family_links (
    family_member_id cc_id NOT NULL REFERENCES family_members (id) ON DELETE CASCADE,
    resident_id      cc_id NOT NULL REFERENCES residents (id) ON DELETE CASCADE,
    relationship     text NOT NULL DEFAULT 'family',
    consent          jsonb NOT NULL DEFAULT
                     '{"alerts": true, "daily_summary": true, "vitals": false, "location": false}'::jsonb,
    PRIMARY KEY (family_member_id, resident_id)
);

-- Alerts: at most one active alert per (subject, kind); a repeat refreshes it.
-- The subject is the resident, or the device/gateway for technical alerts.
CREATE TABLE alerts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subject         cc_id NOT NULL,
    resident_id     cc_id REFERENCES residents (id),
    site_id         cc_id NOT NULL REFERENCES sites (id),
    device_id       cc_id,
    kind            text NOT NULL,
    severity        text NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    status          text NOT NULL DEFAULT 'open'
                    CHECK (status IN ('open', 'acknowledged', 'dispatched', 'on_scene',
                                      'resolved', 'cancelled')),
    outcome         text CHECK (outcome IN ('real_incident', 'false_alarm', 'resident_fine')),
    source          text NOT NULL DEFAULT 'rule' CHECK (source IN ('rule', 'model', 'manual')),
    detector        text NOT NULL,
    message         text NOT NULL DEFAULT '',
    explanation     jsonb NOT NULL DEFAULT '{}'::jsonb,
    occurrences     integer NOT NULL DEFAULT 1,
    opened_at       timestamptz NOT NULL,
    last_seen_at    timestamptz NOT NULL,
    snoozed_until   timestamptz,
    acknowledged_at timestamptz,
    dispatched_at   timestamptz,
    on_scene_at     timestamptz,
    closed_at       timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX alerts_one_active_idx ON alerts (subject, kind)
    WHERE status NOT IN ('resolved', 'cancelled');
CREATE INDEX alerts_site_status_idx ON alerts (site_id, status, opened_at DESC);
CREATE INDEX alerts_resident_idx ON alerts (resident_id, opened_at DESC);

-- Every alert transition: who did what, when.
CREATE TABLE alert_transitions (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id    bigint NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    at          timestamptz NOT NULL,
    from_status text,
    to_status   text NOT NULL,
    actor       text NOT NULL,
    note        text NOT NULL DEFAULT ''
);
CREATE INDEX alert_transitions_alert_idx ON alert_transitions (alert_id, at);

-- Messages that broke the contract: kept with the reason, never silently dropped.
CREATE TABLE dead_letters (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    stage       text NOT NULL,                 -- gateway, ingest, api
    source      text NOT NULL,                 -- MQTT topic or endpoint
    gateway_id  text,
    reason      text NOT NULL,
    payload     bytea NOT NULL
);
CREATE INDEX dead_letters_received_idx ON dead_letters (received_at DESC);

CREATE TABLE audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,                 -- user/role id or 'system:<component>'
    action      text NOT NULL,                 -- e.g. alert.acknowledge, resident.read_vitals
    object_type text NOT NULL,
    object_id   text,
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_object_idx ON audit_log (object_type, object_id, at DESC);
CREATE INDEX audit_log_at_idx ON audit_log (at DESC);
