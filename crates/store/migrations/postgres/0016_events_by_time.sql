-- FHIR's _lastUpdated: which records of a kind changed at or after a time, from the event log.
CREATE INDEX events_by_time ON events (stream_type, occurred_at);
