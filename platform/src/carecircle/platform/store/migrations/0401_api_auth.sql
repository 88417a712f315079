-- API and dashboard: users with one role and one scope, refresh tokens (hashed, rotated,
-- grouped in families for replay detection), API keys (hashed), alert comments and
-- manual responder assignments, and place-tree helpers used by the scope filters.

CREATE TABLE users (
    id               cc_id PRIMARY KEY,
    username         text NOT NULL UNIQUE CHECK (username ~ '^[A-Za-z0-9_.@-]{1,64}$'),
    password_hash    text NOT NULL,
    role             text NOT NULL CHECK (role IN ('admin', 'staff', 'responder', 'family')),
    place_id         cc_id REFERENCES places (id),        -- admin; staff of a township
    site_id          cc_id REFERENCES sites (id),         -- staff of a facility
    responder_id     cc_id REFERENCES responders (id),    -- responder
    family_member_id cc_id REFERENCES family_members (id),-- family member
    display_name     text NOT NULL DEFAULT '',
    locale           text NOT NULL DEFAULT 'zh' CHECK (locale IN ('zh', 'en')),
    disabled         boolean NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (
        (role = 'admin' AND place_id IS NOT NULL AND site_id IS NULL
            AND responder_id IS NULL AND family_member_id IS NULL)
     OR (role = 'staff' AND ((place_id IS NULL) <> (site_id IS NULL))
            AND responder_id IS NULL AND family_member_id IS NULL)
     OR (role = 'responder' AND responder_id IS NOT NULL AND place_id IS NULL
            AND site_id IS NULL AND family_member_id IS NULL)
     OR (role = 'family' AND family_member_id IS NOT NULL AND place_id IS NULL
            AND site_id IS NULL AND responder_id IS NULL)
    )
);

-- Refresh tokens: only a SHA-256 of each is stored.  Every refresh rotates the token
-- (the old one is marked used); presenting a used token again revokes its family.
CREATE TABLE refresh_tokens (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    family_id   uuid NOT NULL,
    user_id     cc_id NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash  text NOT NULL UNIQUE,
    issued_at   timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    revoked_at  timestamptz
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);

-- API keys for integrations: acting as their user, limited to the listed actions.
CREATE TABLE api_keys (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      cc_id NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         text NOT NULL,
    prefix       text NOT NULL,                   -- first characters, to recognise a key
    key_hash     text NOT NULL UNIQUE,            -- SHA-256 of the whole key
    scopes       text[] NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX api_keys_user_idx ON api_keys (user_id);

-- Notes on an alert that change nothing else (a transition-less comment).
CREATE TABLE alert_comments (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id bigint NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    at       timestamptz NOT NULL,
    actor    text NOT NULL,
    body     text NOT NULL CHECK (length(body) BETWEEN 1 AND 2000)
);
CREATE INDEX alert_comments_alert_idx ON alert_comments (alert_id, at);

-- Responders a member of staff sent to an alert by hand.
CREATE TABLE alert_assignments (
    alert_id     bigint NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    responder_id cc_id NOT NULL REFERENCES responders (id),
    assigned_at  timestamptz NOT NULL,
    assigned_by  text NOT NULL,
    PRIMARY KEY (alert_id, responder_id)
);
CREATE INDEX alert_assignments_responder_idx ON alert_assignments (responder_id);

-- Which responder may see which alert (and the resident on it).  The API's scope
-- filters read only this view; dispatch tasks join it by redefining the view.
CREATE VIEW responder_alerts AS
    SELECT alert_id, responder_id FROM alert_assignments;

-- The place and every place below it.
CREATE FUNCTION cc_place_subtree(root text) RETURNS TABLE (id text)
LANGUAGE sql STABLE AS $$
    WITH RECURSIVE t AS (
        SELECT p.id::text AS id FROM places p WHERE p.id = root
        UNION ALL
        SELECT c.id::text FROM places c JOIN t ON c.parent_id = t.id
    )
    SELECT id FROM t
$$;

-- The place and its ancestors, prefecture first.
CREATE FUNCTION cc_place_path(leaf text) RETURNS text[]
LANGUAGE sql STABLE AS $$
    WITH RECURSIVE t AS (
        SELECT p.id::text AS id, p.parent_id::text AS parent_id, 0 AS depth
        FROM places p WHERE p.id = leaf
        UNION ALL
        SELECT p.id::text, p.parent_id::text, t.depth + 1
        FROM places p JOIN t ON p.id = t.parent_id
    )
    SELECT coalesce(array_agg(id ORDER BY depth DESC), '{}') FROM t
$$;
