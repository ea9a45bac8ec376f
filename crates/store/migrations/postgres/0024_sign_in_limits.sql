-- Sign-in limits kept in the database, not in a process: with two nodes behind one proxy a
-- guesser is counted the same whichever node answers. `sign_in_windows`: attempts per client
-- address in the current one-minute window. `sign_in_strikes`: consecutive failures per
-- (account, address) and until when the next attempt must wait. Kept in step with the other
-- engine's 0024.
CREATE TABLE sign_in_windows (
    client_addr  TEXT   PRIMARY KEY,
    window_start TEXT   NOT NULL,
    attempts     BIGINT NOT NULL
);
CREATE TABLE sign_in_strikes (
    username     TEXT   NOT NULL,
    client_addr  TEXT   NOT NULL,
    failures     BIGINT NOT NULL,
    last_failure TEXT   NOT NULL,
    wait_until   TEXT,
    PRIMARY KEY (username, client_addr)
);
