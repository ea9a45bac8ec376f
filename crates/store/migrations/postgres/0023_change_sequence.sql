-- The department's change sequence: one number that moves whenever something a screen shows may
-- have changed (an event of any record, a room, a performed step), so a screen that polls (the
-- board) can answer "unchanged" from one indexed read. A counter bumped in the writer's own
-- transaction rather than MAX(events.seq): a sequence value is taken before commit, so a
-- transaction can become visible with a lower seq than one already read; the counter's row lock
-- orders the bumps as the commits are ordered (writers of events queue on it only for the rest
-- of their short transaction). Kept in step with the other engine's 0023.
CREATE TABLE change_sequence (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    seq BIGINT  NOT NULL
);
INSERT INTO change_sequence (id, seq) VALUES (1, 0);

CREATE FUNCTION seldinger_change_sequence_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE change_sequence SET seq = seq + 1 WHERE id = 1;
    RETURN NULL;
END $$;
CREATE TRIGGER change_sequence_on_event AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION seldinger_change_sequence_bump();
CREATE TRIGGER change_sequence_on_step AFTER INSERT OR UPDATE ON performed_steps
    FOR EACH STATEMENT EXECUTE FUNCTION seldinger_change_sequence_bump();
CREATE TRIGGER change_sequence_on_room AFTER INSERT OR UPDATE OR DELETE ON rooms
    FOR EACH STATEMENT EXECUTE FUNCTION seldinger_change_sequence_bump();
