-- Where each account last signed in successfully, by address: guessing spread over many
-- addresses slows the account's sign-in from addresses it has never used, while the user's own
-- workstations go on as before (and no session is ever ended by it). Kept in step with the other
-- engine's 0032.
CREATE TABLE sign_in_known_addresses (
    username       TEXT NOT NULL,
    client_addr    TEXT NOT NULL,
    last_signed_in TEXT NOT NULL,
    PRIMARY KEY (username, client_addr)
);
