-- The department's change sequence: one number that moves whenever something a screen shows may
-- have changed (an event of any record, a room, a performed step), so a screen that polls (the
-- board) can answer "unchanged" from one indexed read. A counter bumped in the writer's own
-- transaction rather than MAX(events.seq): on PostgreSQL a sequence value is taken before commit,
-- so a transaction can become visible with a lower seq than one already read; the counter's row
-- lock orders the bumps as the commits are ordered. Kept in step with the other engine's 0023.
CREATE TABLE change_sequence (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    seq BIGINT  NOT NULL
);
INSERT INTO change_sequence (id, seq) VALUES (1, 0);

CREATE TRIGGER change_sequence_on_event AFTER INSERT ON events
BEGIN UPDATE change_sequence SET seq = seq + 1 WHERE id = 1; END;
CREATE TRIGGER change_sequence_on_step_insert AFTER INSERT ON performed_steps
BEGIN UPDATE change_sequence SET seq = seq + 1 WHERE id = 1; END;
CREATE TRIGGER change_sequence_on_step_update AFTER UPDATE ON performed_steps
BEGIN UPDATE change_sequence SET seq = seq + 1 WHERE id = 1; END;
CREATE TRIGGER change_sequence_on_room_insert AFTER INSERT ON rooms
BEGIN UPDATE change_sequence SET seq = seq + 1 WHERE id = 1; END;
CREATE TRIGGER change_sequence_on_room_update AFTER UPDATE ON rooms
BEGIN UPDATE change_sequence SET seq = seq + 1 WHERE id = 1; END;
CREATE TRIGGER change_sequence_on_room_delete AFTER DELETE ON rooms
BEGIN UPDATE change_sequence SET seq = seq + 1 WHERE id = 1; END;
