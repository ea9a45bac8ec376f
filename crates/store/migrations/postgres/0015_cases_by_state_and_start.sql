-- Lists of cases in some states booked in a span (the worklist's day, the board's) seek by both:
-- on an index of state alone, a day's query walked every scheduled case of every day. The new
-- index also serves queries on state alone. Kept in step with the other engine's 0015.
CREATE INDEX cases_state_start ON cases (state, scheduled_start);
DROP INDEX cases_state;
