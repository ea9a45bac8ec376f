-- API tokens expire. Tokens made before this column existed read as expiring 90 days after they
-- were made (the code's default), so none lives on for ever. Kept in step with the other engine.
ALTER TABLE api_tokens ADD COLUMN expires_at TEXT;
