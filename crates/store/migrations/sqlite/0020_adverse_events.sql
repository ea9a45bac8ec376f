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
SELECT c.id || '-' || d.key, c.id, c.patient_id,
       substr(json_extract(d.value, '$.at'), 1, 19) || '.' ||
       substr(CASE WHEN instr(json_extract(d.value, '$.at'), '.') > 0
                   THEN substr(json_extract(d.value, '$.at'),
                               instr(json_extract(d.value, '$.at'), '.') + 1,
                               length(json_extract(d.value, '$.at'))
                                   - instr(json_extract(d.value, '$.at'), '.') - 1)
                   ELSE '' END || '000000', 1, 6) || 'Z',
       json_extract(d.value, '$.severity'), 1, 1,
       json_object(
           'id', c.id || '-' || d.key,
           'case_id', c.id,
           'patient_id', c.patient_id,
           'onset', json_extract(d.value, '$.at'),
           'detected', CASE
               WHEN json_extract(c.data, '$.procedure_completed_at') IS NOT NULL
                    AND julianday(json_extract(d.value, '$.at'))
                        > julianday(json_extract(c.data, '$.procedure_completed_at'))
               THEN 'in_recovery' ELSE 'in_room' END,
           'description', json_extract(d.value, '$.description'),
           'severity', json_extract(d.value, '$.severity'),
           'cirse_grade', json_extract(d.value, '$.cirse_grade'),
           'treatment', '',
           'outcome', 'unknown',
           'reported_by', coalesce(r.actor, 'unknown'),
           'reported_at', coalesce(r.occurred_at, json_extract(d.value, '$.at')),
           'version', 1)
FROM cases c
JOIN json_each(c.data, '$.complications') d
LEFT JOIN recorded r ON r.stream_id = c.id AND r.n = d.key
WHERE json_type(c.data, '$.complications') = 'array';
