-- Adverse events as records of their own (clinical-rules.md §6): one row per event, whether
-- recorded in the procedure record (a case's `record_complication`, id `<case>-<n>`, written in
-- the same commit) or reported later (id `<case>-r<k>`); corrections, attribution decisions and
-- withdrawals are the `adverse_event` event stream of the same id. `onset`, `severity` and
-- `counted` (0 once entered in error) are columns for the quality pages' period queries.
-- Backfilled from the complications recorded before this table existed, with who recorded each
-- and when, from the case's events. Kept in step with the other engine's 0020.
CREATE TABLE adverse_events (
    id         TEXT   PRIMARY KEY,
    case_id    TEXT   NOT NULL REFERENCES cases (id),
    patient_id TEXT   NOT NULL REFERENCES patients (id),
    onset      TEXT   NOT NULL,
    severity   TEXT   NOT NULL,
    counted    BIGINT NOT NULL,
    version    BIGINT NOT NULL,
    data       TEXT   NOT NULL
);
CREATE INDEX adverse_events_case ON adverse_events (case_id);
CREATE INDEX adverse_events_patient ON adverse_events (patient_id);
CREATE INDEX adverse_events_onset ON adverse_events (onset, severity);

INSERT INTO adverse_events (id, case_id, patient_id, onset, severity, counted, version, data)
WITH recorded AS (
    SELECT stream_id, actor, occurred_at,
           ROW_NUMBER() OVER (PARTITION BY stream_id ORDER BY stream_version) - 1 AS n
    FROM events WHERE stream_type = 'case' AND kind = 'record_complication'
)
SELECT c.id || '-' || (d.n - 1), c.id, c.patient_id,
       substr(d.value ->> 'at', 1, 19) || '.' ||
       substr(CASE WHEN strpos(d.value ->> 'at', '.') > 0
                   THEN substr(d.value ->> 'at', strpos(d.value ->> 'at', '.') + 1,
                               length(d.value ->> 'at') - strpos(d.value ->> 'at', '.') - 1)
                   ELSE '' END || '000000', 1, 6) || 'Z',
       d.value ->> 'severity', 1, 1,
       json_build_object(
           'id', c.id || '-' || (d.n - 1),
           'case_id', c.id,
           'patient_id', c.patient_id,
           'onset', d.value ->> 'at',
           'detected', CASE
               WHEN (c.data::json ->> 'procedure_completed_at') IS NOT NULL
                    AND (d.value ->> 'at')::timestamptz
                        > (c.data::json ->> 'procedure_completed_at')::timestamptz
               THEN 'in_recovery' ELSE 'in_room' END,
           'description', d.value ->> 'description',
           'severity', d.value ->> 'severity',
           'cirse_grade', d.value -> 'cirse_grade',
           'treatment', '',
           'outcome', 'unknown',
           'reported_by', coalesce(r.actor, 'unknown'),
           'reported_at', coalesce(r.occurred_at, d.value ->> 'at'),
           'version', 1)::text
FROM cases c
CROSS JOIN LATERAL json_array_elements(
    CASE WHEN json_typeof(c.data::json -> 'complications') = 'array'
         THEN c.data::json -> 'complications' ELSE '[]'::json END) WITH ORDINALITY AS d(value, n)
LEFT JOIN recorded r ON r.stream_id = c.id AND r.n = d.n - 1;
