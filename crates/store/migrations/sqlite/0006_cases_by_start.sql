-- A department's day is a span of instants in its time zone, not a UTC date (sqlite; kept in step
-- with the other engine's 0006): cases are found by their start time.
CREATE INDEX cases_start ON cases (scheduled_start);
