-- The structured procedure report, one per case: the physician's draft, then signed (locked, the
-- text frozen as signed) with addenda. Each change is an event of the `procedure_report` stream
-- (id: the case's, as is this table's); `status` is a column for the lists of reports to sign. Nothing to backfill:
-- cases before this had no report to keep. Kept in step with the other engine's 0021.
CREATE TABLE procedure_reports (
    id         TEXT   PRIMARY KEY REFERENCES cases (id),
    patient_id TEXT   NOT NULL REFERENCES patients (id),
    status     TEXT   NOT NULL,
    version    BIGINT NOT NULL,
    data       TEXT   NOT NULL
);
CREATE INDEX procedure_reports_patient ON procedure_reports (patient_id);
CREATE INDEX procedure_reports_status ON procedure_reports (status);
