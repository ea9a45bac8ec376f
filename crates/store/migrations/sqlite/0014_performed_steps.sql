-- Modality Performed Procedure Steps (DICOM MPPS): what the rooms' imaging systems report they
-- did. performed_step_messages keeps every N-CREATE and N-SET as read (append-only, who and when);
-- performed_steps is the current state, with its case once found and, when a person must look at
-- it, why (the review list). Kept in step with the other engine's 0014.
CREATE TABLE performed_steps (
    sop_instance_uid TEXT PRIMARY KEY,
    case_id          TEXT REFERENCES cases (id),
    status           TEXT NOT NULL,
    station_ae_title TEXT NOT NULL,
    study_instance_uid TEXT,
    started_at       TEXT NOT NULL,
    review           TEXT,
    version          BIGINT NOT NULL,
    updated_at       TEXT NOT NULL,
    data             TEXT NOT NULL
);
CREATE INDEX performed_steps_case ON performed_steps (case_id);
CREATE INDEX performed_steps_started ON performed_steps (started_at);
CREATE INDEX performed_steps_study ON performed_steps (study_instance_uid);

CREATE TABLE performed_step_messages (
    sop_instance_uid TEXT NOT NULL REFERENCES performed_steps (sop_instance_uid),
    version          BIGINT NOT NULL,
    kind             TEXT NOT NULL,
    actor            TEXT NOT NULL,
    at               TEXT NOT NULL,
    data             TEXT NOT NULL,
    PRIMARY KEY (sop_instance_uid, version)
);

-- The study a case was booked with (the worklist's): dose reports and performed steps that carry
-- it find their case exactly; so do reports of a study a linked performed step named.
ALTER TABLE cases ADD COLUMN study_instance_uid TEXT;
UPDATE cases SET study_instance_uid = json_extract(data, '$.study_instance_uid');
CREATE INDEX cases_study ON cases (study_instance_uid);
