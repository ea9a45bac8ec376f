-- Linking dose reports to cases, and follow-up tasks (postgres). Kept in step with the other engine's 0004.

-- The imaging study's accession number: one case each.
ALTER TABLE cases ADD COLUMN accession_number TEXT;
CREATE UNIQUE INDEX cases_accession ON cases (accession_number);

-- The current link of each report; every change is also an event (stream "dose_report").
ALTER TABLE dose_reports ADD COLUMN link_version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE dose_reports ADD COLUMN link_basis TEXT;
ALTER TABLE dose_reports ADD COLUMN unmatched_reason TEXT;
-- When the study started (UTC, as read), for periods and statistics.
ALTER TABLE dose_reports ADD COLUMN performed_at TEXT;
CREATE INDEX dose_reports_performed ON dose_reports (performed_at);
-- Manufacturer, model and station: the system that reported.
ALTER TABLE dose_reports ADD COLUMN device TEXT NOT NULL DEFAULT '';
-- Who authorized (else administered) the irradiation, as the report names them.
ALTER TABLE dose_reports ADD COLUMN operator TEXT;
-- The report's totals in SI units (JSON), for case sums and statistics.
ALTER TABLE dose_reports ADD COLUMN totals TEXT NOT NULL DEFAULT '{}';

-- Work owed to a patient after the procedure: one task per case and kind. Each change is also an
-- event (stream "follow_up_task").
CREATE TABLE follow_up_tasks (
    id         TEXT   PRIMARY KEY,
    case_id    TEXT   NOT NULL REFERENCES cases (id),
    patient_id TEXT   NOT NULL REFERENCES patients (id),
    kind       TEXT   NOT NULL,
    due_from   TEXT   NOT NULL,
    done       BIGINT NOT NULL,
    version    BIGINT NOT NULL,
    data       TEXT   NOT NULL,
    UNIQUE (case_id, kind)
);
CREATE INDEX follow_up_tasks_due ON follow_up_tasks (done, due_from);
