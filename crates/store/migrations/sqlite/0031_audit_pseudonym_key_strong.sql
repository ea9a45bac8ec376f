-- PostgreSQL's audit pseudonym key is made anew from a strong random source in its 0031. SQLite's
-- came from randomblob(32) (SQLite's cryptographic generator) and stands; this keeps the engines'
-- migrations in step.
SELECT 1;
