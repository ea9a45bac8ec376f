-- The device registry (clinical-rules.md §7): one row per device a case left in a patient, kept
-- until it is removed, exchanged or declared permanent. Its placement is the case's
-- `record_device_left` event; its life after that is the `device` event stream of the same id
-- (`<case>-<n>`). `life` and `placed_at` are columns so the registry's lists are asked of the
-- database. Backfilled from the cases recorded before this table existed (placed when their
-- procedure started), in the same fixed-width UTC text as every other time column. Kept in step
-- with the other engine's 0019.
CREATE TABLE devices (
    id         TEXT   PRIMARY KEY,
    case_id    TEXT   NOT NULL REFERENCES cases (id),
    idx        BIGINT NOT NULL,
    patient_id TEXT   NOT NULL REFERENCES patients (id),
    kind       TEXT   NOT NULL,
    placed_at  TEXT   NOT NULL,
    life       TEXT   NOT NULL,
    version    BIGINT NOT NULL,
    data       TEXT   NOT NULL,
    UNIQUE (case_id, idx)
);
CREATE INDEX devices_patient_life ON devices (patient_id, life);
CREATE INDEX devices_kind_placed ON devices (kind, placed_at);
CREATE INDEX devices_life_placed ON devices (life, placed_at);

INSERT INTO devices (id, case_id, idx, patient_id, kind, placed_at, life, version, data)
SELECT c.id || '-' || d.key, c.id, d.key, c.patient_id, json_extract(d.value, '$.kind'),
       substr(t.s, 1, 19) || '.' ||
       substr(CASE WHEN instr(t.s, '.') > 0
                   THEN substr(t.s, instr(t.s, '.') + 1, length(t.s) - instr(t.s, '.') - 1)
                   ELSE '' END || '000000', 1, 6) || 'Z',
       'in_place', 0,
       json_object(
           'device', json_object('case_id', c.id, 'index', d.key),
           'patient_id', c.patient_id,
           'placed', json(d.value),
           'placed_at', t.s,
           'state', json_object('state', 'in_place'),
           'version', 0)
FROM cases c
JOIN json_each(c.data, '$.devices_left') d
JOIN (SELECT id, coalesce(json_extract(data, '$.procedure_started_at'),
                          json_extract(data, '$.updated_at')) AS s FROM cases) t ON t.id = c.id
WHERE json_type(c.data, '$.devices_left') = 'array';
