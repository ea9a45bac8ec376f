-- Which sender may send a destination's outbox now. With two nodes on one database each runs a
-- sender per destination; only the holder of the destination's lease sends, so a message goes
-- out once and a destination's messages keep their order. A lease lapses at expires_at (UTC,
-- RFC 3339 with microseconds: text order is time order) unless its holder renews it, so a node
-- that dies hands its destinations on. Kept in step with the other engine's 0027.
CREATE TABLE hl7_sender_leases (
    destination TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    expires_at  TEXT NOT NULL
);
