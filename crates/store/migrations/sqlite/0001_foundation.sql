-- Seldinger foundation schema (SQLite). Kept in step with migrations/postgres/0001_foundation.sql.
-- Timestamps are UTC RFC 3339 text with fixed width, so they sort and compare as text on both engines.

-- Every change to a patient, referral or case: append-only, never updated or deleted.
CREATE TABLE events (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    stream_type    TEXT    NOT NULL,
    stream_id      TEXT    NOT NULL,
    stream_version BIGINT  NOT NULL,
    kind           TEXT    NOT NULL,
    actor          TEXT    NOT NULL,
    occurred_at    TEXT    NOT NULL,
    reason         TEXT,
    payload        TEXT    NOT NULL,
    -- Two writers basing a change on the same version cannot both succeed.
    UNIQUE (stream_type, stream_id, stream_version)
);
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;

-- Current-state projections, written in the same transaction as their event.
CREATE TABLE rooms (
    id         TEXT   PRIMARY KEY,
    sort_order BIGINT NOT NULL,
    data       TEXT   NOT NULL
);

CREATE TABLE patients (
    id          TEXT   PRIMARY KEY,
    site        TEXT   NOT NULL,
    mrn         TEXT   NOT NULL,
    name_search TEXT   NOT NULL,
    birth_date  TEXT   NOT NULL,
    version     BIGINT NOT NULL,
    data        TEXT   NOT NULL,
    UNIQUE (site, mrn)
);
CREATE INDEX patients_name ON patients (name_search);

CREATE TABLE medications (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    patient_id  TEXT NOT NULL REFERENCES patients (id),
    drug        TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    data        TEXT NOT NULL
);
CREATE INDEX medications_patient ON medications (patient_id);

CREATE TABLE lab_results (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    patient_id TEXT NOT NULL REFERENCES patients (id),
    test       TEXT NOT NULL,
    drawn_at   TEXT NOT NULL,
    data       TEXT NOT NULL
);
CREATE INDEX lab_results_patient ON lab_results (patient_id, test, drawn_at);

CREATE TABLE referrals (
    id          TEXT   PRIMARY KEY,
    patient_id  TEXT   NOT NULL REFERENCES patients (id),
    case_id     TEXT   NOT NULL,
    received_at TEXT   NOT NULL,
    version     BIGINT NOT NULL,
    data        TEXT   NOT NULL
);
CREATE INDEX referrals_patient ON referrals (patient_id);

CREATE TABLE cases (
    id              TEXT   PRIMARY KEY,
    patient_id      TEXT   NOT NULL REFERENCES patients (id),
    referral_id     TEXT   NOT NULL REFERENCES referrals (id),
    state           TEXT   NOT NULL,
    room            TEXT,
    scheduled_start TEXT,
    scheduled_date  TEXT,
    updated_at      TEXT   NOT NULL,
    version         BIGINT NOT NULL,
    data            TEXT   NOT NULL
);
CREATE INDEX cases_date ON cases (scheduled_date, scheduled_start);
CREATE INDEX cases_state ON cases (state);
CREATE INDEX cases_patient ON cases (patient_id);
