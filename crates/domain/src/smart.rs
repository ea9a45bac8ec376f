//! SMART on FHIR scopes an API token may be limited to: `patient/Observation.read`,
//! `user/ServiceRequest.write`, `patient/*.read` (SMART App Launch v1), or v2's permission letters
//! (`patient/Observation.rs`, `user/*.cruds`). Scopes only narrow what the token's role may do,
//! never widen it. A token with `patient/` scopes is bound to one patient.

/// Whose data a scope reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// The one patient the token is bound to.
    Patient,
    /// What the user may see.
    User,
    /// A system acting on its own (read as `user/`: the token's user and role still bound it).
    System,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub context: Context,
    /// The resource type, or `None` for `*`.
    pub resource: Option<String>,
    pub read: bool,
    pub write: bool,
}

/// Scopes that grant no resource access but are part of SMART launches; accepted, they allow
/// nothing by themselves.
const NON_RESOURCE: &[&str] = &[
    "openid",
    "fhirUser",
    "profile",
    "launch",
    "launch/patient",
    "offline_access",
    "online_access",
];

/// Seldinger's own scope (not SMART's): an app token limited to SMART scopes may open a record
/// outside its user's scope with a break-glass reason only when granted this.
pub const BREAK_GLASS_SCOPE: &str = "seldinger/break-glass";

/// The scopes a token is limited to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmartScopes {
    scopes: Vec<Scope>,
    text: String,
}

impl SmartScopes {
    /// Reads space-separated scopes; each malformed one is named in the error.
    pub fn parse(text: &str) -> Result<SmartScopes, String> {
        let mut scopes = Vec::new();
        let mut words = Vec::new();
        for word in text.split_whitespace() {
            words.push(word);
            if NON_RESOURCE.contains(&word) || word == BREAK_GLASS_SCOPE {
                continue;
            }
            scopes.push(parse_one(word)?);
        }
        if scopes.is_empty() {
            return Err("give at least one resource scope, e.g. patient/*.read or user/ServiceRequest.write".into());
        }
        Ok(SmartScopes {
            scopes,
            text: words.join(" "),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the token was granted [`BREAK_GLASS_SCOPE`].
    pub fn allows_break_glass(&self) -> bool {
        self.text.split_whitespace().any(|w| w == BREAK_GLASS_SCOPE)
    }

    /// Whether a scope grants reading (or, with `write`, creating or changing) `resource`.
    pub fn allows(&self, resource: &str, write: bool) -> bool {
        self.scopes.iter().any(|s| {
            s.resource.as_deref().is_none_or(|r| r == resource)
                && if write { s.write } else { s.read }
        })
    }

    /// Whether any scope is in the patient context (the token must then be bound to a patient).
    pub fn needs_patient(&self) -> bool {
        self.scopes.iter().any(|s| s.context == Context::Patient)
    }
}

fn parse_one(word: &str) -> Result<Scope, String> {
    let refuse = || {
        format!(
            "'{word}' is not a SMART scope: context/Resource.permissions, e.g. patient/*.read, \
             user/Observation.rs, user/ServiceRequest.write"
        )
    };
    let (context, rest) = word.split_once('/').ok_or_else(refuse)?;
    let context = match context {
        "patient" => Context::Patient,
        "user" => Context::User,
        "system" => Context::System,
        _ => return Err(refuse()),
    };
    let (resource, permissions) = rest.split_once('.').ok_or_else(refuse)?;
    let resource = match resource {
        "*" => None,
        name if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric()) => {
            Some(name.to_string())
        }
        _ => return Err(refuse()),
    };
    let (read, write) = match permissions {
        "read" => (true, false),
        "write" => (false, true),
        "*" => (true, true),
        letters if !letters.is_empty() && is_v2(letters) => (
            letters.contains('r') || letters.contains('s'),
            letters.contains('c') || letters.contains('u') || letters.contains('d'),
        ),
        _ => return Err(refuse()),
    };
    Ok(Scope {
        context,
        resource,
        read,
        write,
    })
}

/// SMART v2 permissions: a subsequence of `cruds`, in that order.
fn is_v2(letters: &str) -> bool {
    let mut order = "cruds".chars();
    letters.chars().all(|l| order.any(|o| o == l))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_narrow_by_resource_and_permission() {
        let scopes = SmartScopes::parse("openid patient/*.read user/ServiceRequest.write").unwrap();
        assert!(scopes.allows("Observation", false));
        assert!(!scopes.allows("Observation", true));
        assert!(scopes.allows("ServiceRequest", true));
        assert!(scopes.needs_patient());
        let v2 = SmartScopes::parse("user/Observation.rs user/ServiceRequest.c").unwrap();
        assert!(v2.allows("Observation", false) && !v2.allows("Observation", true));
        assert!(v2.allows("ServiceRequest", true) && !v2.allows("ServiceRequest", false));
        assert!(!v2.needs_patient());
    }

    #[test]
    fn malformed_scopes_are_named() {
        for bad in [
            "patient/*",
            "doctor/*.read",
            "user/Obs-ervation.read",
            "user/*.sdc",
            "user/*.x",
            "openid",
        ] {
            let error = SmartScopes::parse(bad).expect_err(bad);
            assert!(error.contains(bad) || bad == "openid", "{bad}: {error}");
        }
    }
}
