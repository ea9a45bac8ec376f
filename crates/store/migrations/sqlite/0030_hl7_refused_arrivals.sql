-- Messages refused before their sender was established (no readable header, a sender not listed,
-- an address or certificate that is not the sender's): they claim no (sender, MSH-10) key in the
-- inbox and are never replayed. Each address keeps one row per kind of refusal: how many, when
-- first and last, and the head of the latest (at most 1 KiB), so a host flooding the port costs
-- a counter, not a copy of every message. Kept in step with the other engine's 0030.
CREATE TABLE hl7_refused_arrivals (
    peer_address   TEXT NOT NULL,
    kind           TEXT NOT NULL,
    claimed_sender TEXT NOT NULL,
    reason         TEXT NOT NULL,
    last_peer      TEXT NOT NULL,
    head           BLOB NOT NULL,
    arrivals       BIGINT NOT NULL,
    first_at       TEXT NOT NULL,
    last_at        TEXT NOT NULL,
    PRIMARY KEY (peer_address, kind)
);
CREATE INDEX hl7_refused_arrivals_last ON hl7_refused_arrivals (last_at);

-- The certificate a message's sender presented over mutual TLS (JSON: SHA-256 fingerprint,
-- subject, DNS names), so a replay checks it against the sender's binding as on arrival.
ALTER TABLE hl7_messages ADD COLUMN peer_certificate TEXT;
