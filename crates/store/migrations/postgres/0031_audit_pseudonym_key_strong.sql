-- The audit view's pseudonym key was made with random(), which is not a cryptographic source: a
-- key recomputed from its seed would let someone without patient scope turn pseudonyms back into
-- patients. Made anew from gen_random_uuid() (the server's strong random source, 244 random
-- bits), as the registry's key is. Pseudonyms in the audit view change once, on this upgrade.
-- Kept in step with the other engine's 0031 (SQLite's key came from randomblob, already strong).
UPDATE deployment_secrets
SET value = replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '')
WHERE name = 'audit_pseudonym_key';
