-- A referral that came as an order (HL7 ORM/OMG/OMI) keeps the ordering system's number,
-- `AUTHORITY|NUMBER`, so a cancellation or change finds it, and the same order is never filed
-- twice. Kept in step with the other engine's 0012.
ALTER TABLE referrals ADD COLUMN placer_order TEXT;
CREATE UNIQUE INDEX referrals_placer_order ON referrals (placer_order) WHERE placer_order IS NOT NULL;
