-- A token may be limited to SMART on FHIR scopes (space-separated), and bound to one patient
-- (patient/ scopes). Neither set: the token does what its role may, as before.
ALTER TABLE api_tokens ADD COLUMN scopes TEXT;
ALTER TABLE api_tokens ADD COLUMN patient_id TEXT;
