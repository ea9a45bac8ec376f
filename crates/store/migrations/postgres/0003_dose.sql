-- Radiation dose reports (PostgreSQL). Kept in step with migrations/sqlite/0003_dose.sql.

-- One row per SOP instance: a re-sent report is recognised, never stored twice.
CREATE TABLE dose_reports (
    sop_instance_uid   TEXT PRIMARY KEY,
    study_instance_uid TEXT NOT NULL,
    accession_number   TEXT,
    patient_id         TEXT,
    study_date         TEXT,
    case_id            TEXT REFERENCES cases (id),
    received_at        TEXT NOT NULL,
    source             TEXT NOT NULL,
    data               TEXT NOT NULL
);
CREATE INDEX dose_reports_study ON dose_reports (study_instance_uid);
CREATE INDEX dose_reports_patient ON dose_reports (patient_id, study_date);
CREATE INDEX dose_reports_case ON dose_reports (case_id);

-- Files that could not be read as dose reports, with the reason; nothing else in a batch is lost.
CREATE TABLE dose_quarantine (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at TEXT NOT NULL,
    source      TEXT NOT NULL,
    reason      TEXT NOT NULL,
    bytes       BYTEA
);
