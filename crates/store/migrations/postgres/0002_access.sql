-- Users, sessions, API tokens and the audit log (PostgreSQL). Kept in step with migrations/sqlite/0002_access.sql.

CREATE TABLE users (
    id                  TEXT   PRIMARY KEY,
    username            TEXT   NOT NULL UNIQUE,
    display_name        TEXT   NOT NULL,
    role                TEXT   NOT NULL,
    password_hash       TEXT   NOT NULL,
    disabled            BIGINT NOT NULL DEFAULT 0,
    failed_logins       BIGINT NOT NULL DEFAULT 0,
    locked_until        TEXT,
    password_changed_at TEXT   NOT NULL,
    created_at          TEXT   NOT NULL
);

-- Only a hash of each session token is kept: a copy of the database opens no session.
CREATE TABLE sessions (
    token_hash      TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users (id),
    csrf_token      TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    last_seen_at    TEXT NOT NULL,
    expires_at      TEXT NOT NULL,
    client_addr     TEXT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    token_hash   TEXT NOT NULL UNIQUE,
    user_id      TEXT NOT NULL REFERENCES users (id),
    role         TEXT NOT NULL,
    name         TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    revoked_at   TEXT,
    last_used_at TEXT
);

-- Every look at and change to patient data, and every sign-in: append-only.
CREATE TABLE audit_log (
    seq                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at                 TEXT NOT NULL,
    username           TEXT NOT NULL,
    role               TEXT NOT NULL,
    action             TEXT NOT NULL,
    resource_type      TEXT NOT NULL,
    resource_id        TEXT,
    patient_id         TEXT,
    client_addr        TEXT NOT NULL,
    outcome            TEXT NOT NULL,
    break_glass_reason TEXT
);
CREATE INDEX audit_user ON audit_log (username, at);
CREATE INDEX audit_patient ON audit_log (patient_id, at);
CREATE INDEX audit_at ON audit_log (at);
CREATE FUNCTION seldinger_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END;
$$;
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit_log
FOR EACH ROW EXECUTE FUNCTION seldinger_audit_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit_log
FOR EACH STATEMENT EXECUTE FUNCTION seldinger_audit_append_only();

-- Who referred: a referring clinician sees only their own referrals, cases and patients.
ALTER TABLE referrals ADD COLUMN referred_by TEXT;
ALTER TABLE cases ADD COLUMN referred_by TEXT;
CREATE INDEX referrals_referred_by ON referrals (referred_by, patient_id);
CREATE INDEX cases_referred_by ON cases (referred_by);
