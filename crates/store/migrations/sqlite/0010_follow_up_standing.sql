-- Where a follow-up task stands is asked of the database, not worked out after loading every task:
-- the end of its window and how it was closed become columns (kept in step with `data` by every
-- write). Backfilled from `data`, the window's end in the same fixed-width UTC text as `due_from`
-- (microseconds), so the two compare as text. Kept in step with the other engine's 0010.
ALTER TABLE follow_up_tasks ADD COLUMN due_until TEXT;
ALTER TABLE follow_up_tasks ADD COLUMN closed_as TEXT;
UPDATE follow_up_tasks SET
    due_until = (
        SELECT CASE WHEN t.s IS NULL THEN NULL ELSE
            substr(t.s, 1, 19) || '.' ||
            substr(CASE WHEN instr(t.s, '.') > 0
                        THEN substr(t.s, instr(t.s, '.') + 1, length(t.s) - instr(t.s, '.') - 1)
                        ELSE '' END || '000000', 1, 6) || 'Z'
        END
        FROM (SELECT json_extract(follow_up_tasks.data, '$.due_until') AS s) AS t
    ),
    closed_as = CASE
        WHEN json_extract(data, '$.withdrawn') IS NOT NULL THEN 'withdrawn'
        WHEN json_extract(data, '$.completed') IS NOT NULL THEN 'done'
    END;
DROP INDEX follow_up_tasks_due;
CREATE INDEX follow_up_tasks_open_due ON follow_up_tasks (closed_as, due_from);
