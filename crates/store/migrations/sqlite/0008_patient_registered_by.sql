-- Who registered each patient: a referring clinician's scope reaches the whole record only of the
-- patients they registered; a referral opens its own case, not the rest of the record (docs/roles.md).
-- Backfilled from each patient's first event. Kept in step with the other engine's 0008.
ALTER TABLE patients ADD COLUMN registered_by TEXT;
UPDATE patients SET registered_by = (
    SELECT e.actor FROM events e
    WHERE e.stream_type = 'patient' AND e.stream_id = patients.id AND e.stream_version = 1
);
CREATE INDEX patients_registered_by ON patients (registered_by);

-- A per-deployment key for the audit view's patient pseudonyms (readers without patient scope see
-- a stable pseudonym, never the id). Generated here, once; never shown.
CREATE TABLE deployment_secrets (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO deployment_secrets (name, value) VALUES ('audit_pseudonym_key', lower(hex(randomblob(32))));
