-- Each list walks an index in its own order and stops at the page (issue 16: on ten years of
-- data these sorted every row). The expressions are the lists' sort keys exactly as the queries
-- write them (crates/store: `cases_page`, `dose_reports_page`), or no engine matches them.
-- Kept in step with the other engine's 0026.
CREATE INDEX cases_list_order ON cases
    ((CASE WHEN scheduled_start IS NULL THEN '1' || updated_at ELSE '0' || scheduled_start END), id);
CREATE INDEX dose_reports_list_order ON dose_reports
    ((COALESCE(performed_at, received_at)), sop_instance_uid);
-- Referrals newest first; and a case's referral, so the vetting queue starts from the few
-- cases awaiting vetting rather than every referral ever received.
CREATE INDEX referrals_received ON referrals (received_at, id);
CREATE INDEX referrals_case ON referrals (case_id);
-- The follow-up queue's standing filter (open, due from before now) in due order, with the id
-- that breaks ties, so a page needs no sort.
DROP INDEX follow_up_tasks_open_due;
CREATE INDEX follow_up_tasks_open_due ON follow_up_tasks (closed_as, due_from, id);
-- The audit search reads in sequence order: one user's or one patient's trail a page at a time,
-- not all of it sorted (the nurse who reads the board has hundreds of thousands of rows).
DROP INDEX audit_user;
DROP INDEX audit_patient;
CREATE INDEX audit_user ON audit_log (username, seq);
CREATE INDEX audit_patient ON audit_log (patient_id, seq);
