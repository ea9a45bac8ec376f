-- The quality pages (clinical-rules.md §6). `cases.procedure_started_at`: the period a case
-- counts in is when its procedure began, a column so a period's cases are one indexed read;
-- backfilled from the case's projection (normalised to the stored instant format). `mm_reviews`:
-- the M&M meeting's notes and actions on a case, each an event of the `mm_review` stream (id: the
-- case's); and the registry export's pseudonym key. Kept in step with the other engine's 0022.
ALTER TABLE cases ADD COLUMN procedure_started_at TEXT;
UPDATE cases SET procedure_started_at =
       substr(data::jsonb ->> 'procedure_started_at', 1, 19) || '.' ||
       substr(CASE WHEN strpos(data::jsonb ->> 'procedure_started_at', '.') > 0
                   THEN substr(data::jsonb ->> 'procedure_started_at',
                               strpos(data::jsonb ->> 'procedure_started_at', '.') + 1,
                               length(data::jsonb ->> 'procedure_started_at')
                                   - strpos(data::jsonb ->> 'procedure_started_at', '.') - 1)
                   ELSE '' END || '000000', 1, 6) || 'Z'
WHERE data::jsonb ->> 'procedure_started_at' IS NOT NULL;
CREATE INDEX cases_by_procedure_start ON cases (procedure_started_at);

CREATE TABLE mm_reviews (
    id         TEXT   PRIMARY KEY REFERENCES cases (id),
    patient_id TEXT   NOT NULL REFERENCES patients (id),
    version    BIGINT NOT NULL,
    data       TEXT   NOT NULL
);

-- The registry export's pseudonym key (HMAC-SHA256): made here once, never shown, so the same
-- patient has the same pseudonym in every export and nobody without it can recompute one.
-- gen_random_uuid() draws from the server's strong random source (244 random bits here).
INSERT INTO deployment_secrets (name, value)
VALUES ('registry_pseudonym_key', replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''));
