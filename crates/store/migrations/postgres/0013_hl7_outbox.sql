-- The HL7 v2 outbox: one row per message owed to one destination (a booking, a rebooking, a
-- cancellation, a report), written in the same commit as the change it tells of, so none is lost
-- and none goes out for a change that did not stand. payload is the record as it was then (JSON);
-- message is the HL7 text, rendered once before the first try so every retry carries the same
-- MSH-10 (the receiver's duplicate check). seq orders the sending: per destination, per patient.
-- pending → sent (AA/CA), rejected (AE/AR: the receiver refused it), skipped (nothing this
-- destination's style sends for it). Kept in step with the other engine's 0013.
CREATE TABLE hl7_outbox (
    seq             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    destination     TEXT NOT NULL,
    patient_id      TEXT NOT NULL,
    case_id         TEXT,
    trigger_event   TEXT NOT NULL,
    payload         TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error      TEXT,
    control_id      TEXT,
    message         TEXT,
    ack             TEXT,
    finished_at     TEXT
);
CREATE INDEX hl7_outbox_due ON hl7_outbox (destination, status, seq);
CREATE INDEX hl7_outbox_case ON hl7_outbox (case_id);
