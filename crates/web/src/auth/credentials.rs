//! Secrets: Argon2id password hashes, random session and API tokens, and the one-way hashes under
//! which tokens are stored (a stolen database opens no session).

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::SaltString;
use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use base64::Engine;
use rand::RngCore;

/// Minimum password length: a security policy default, not a clinical rule.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Maximum password length, so that hashing a sent body stays cheap.
pub const MAX_PASSWORD_CHARS: usize = 1024;

pub fn check_password_policy(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!("must be at least {MIN_PASSWORD_CHARS} characters"));
    }
    if password.chars().count() > MAX_PASSWORD_CHARS {
        return Err(format!("must be at most {MAX_PASSWORD_CHARS} characters"));
    }
    Ok(())
}

/// Argon2id with the crate's (OWASP-recommended) default parameters and a random salt.
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash password: {e}"))
}

pub fn verify_password(stored_hash: &str, password: &str) -> bool {
    PasswordHash::new(stored_hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Spends the same time as a real check when the username is unknown, so response time does
/// not reveal which usernames exist.
pub fn verify_against_nothing(password: &str) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let hash =
        DUMMY.get_or_init(|| hash_password("not a real password at all").unwrap_or_default());
    let _ = verify_password(hash, password);
}

/// 256 random bits, URL-safe: session cookies, CSRF tokens, API tokens.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub use seldinger_app::{constant_time_eq, secret_hash};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ_per_salt() {
        let a = hash_password("correct horse battery").expect("hash");
        let b = hash_password("correct horse battery").expect("hash");
        assert_ne!(a, b);
        assert!(a.starts_with("$argon2id$"));
        assert!(verify_password(&a, "correct horse battery"));
        assert!(!verify_password(&a, "correct horse battery!"));
        assert!(!verify_password("not a hash", "x"));
    }

    #[test]
    fn secrets_are_long_random_and_hashed_one_way() {
        let s = new_secret();
        assert_eq!(s.len(), 43);
        assert_ne!(s, new_secret());
        assert_eq!(secret_hash(&s).len(), 64);
        assert!(constant_time_eq(&s, &s.clone()));
        assert!(!constant_time_eq(&s, &new_secret()));
    }
}
