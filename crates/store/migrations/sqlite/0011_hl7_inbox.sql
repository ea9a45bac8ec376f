-- The HL7 v2 inbox: every message received over MLLP (or from a batch file), kept as the bytes that
-- arrived, with its outcome. (sender, control_id) is MSH-3/MSH-4 and MSH-10: the same message again
-- is answered from here and changes nothing. A message that could not even be read has neither.
-- 'received' means stored and not yet finished (a crash between receipt and reply leaves it so; the
-- sender's retry finishes it). 'failed' (AE) and 'refused' (AR) are the dead letters.
-- Kept in step with the other engine's 0011.
CREATE TABLE hl7_messages (
    id             TEXT PRIMARY KEY,
    sender         TEXT,
    control_id     TEXT,
    received_at    TEXT NOT NULL,
    peer           TEXT NOT NULL,
    message_type   TEXT NOT NULL,
    version        TEXT NOT NULL,
    content_sha256 TEXT NOT NULL,
    raw            BLOB NOT NULL,
    patient_key    TEXT,
    status         TEXT NOT NULL,
    ack            TEXT,
    error_code     TEXT,
    error_location TEXT,
    error_reason   TEXT,
    finished_at    TEXT,
    attempts       INTEGER NOT NULL DEFAULT 1,
    UNIQUE (sender, control_id)
);
CREATE INDEX hl7_messages_status ON hl7_messages (status, received_at);
CREATE INDEX hl7_messages_received ON hl7_messages (received_at);

-- Which received message a write applied: the audit row names it, and the same commit marks the
-- message applied (exactly once, whatever the sender re-sends).
ALTER TABLE audit_log ADD COLUMN via_message TEXT;
