-- Corrections of labs and drugs (postgres). Kept in step with the other engine's 0005.
-- The rows are the current view; every correction is also a patient event with who, when and why.

-- When the entry was withdrawn as entered in error (UTC); withdrawn entries leave the rules and
-- the lists but stay here and in the history.
ALTER TABLE medications ADD COLUMN entered_in_error_at TEXT;
ALTER TABLE lab_results ADD COLUMN entered_in_error_at TEXT;
