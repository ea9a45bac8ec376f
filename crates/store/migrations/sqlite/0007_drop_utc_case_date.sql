-- The UTC date of a booking (sqlite; kept in step with the other engine's 0007). Cases are found by
-- their start time in the department's day (0006), so this copy is no longer read; dropped so
-- nobody takes a UTC date for the department's.
DROP INDEX cases_date;
ALTER TABLE cases DROP COLUMN scheduled_date;
