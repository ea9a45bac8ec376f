//! Who is talking, and what they may send: a message's sender is established from its header,
//! the address it came from and (over mutual TLS) the certificate it presented, before anything
//! is kept or applied; then the sender may send only the message types its entry in the
//! interface file grants. docs/security.md says what this defends and what it does not.

use crate::config::Sender;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The certificate a peer presented over mutual TLS, as far as binding it to a sender goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerCertificate {
    /// SHA-256 of the certificate's DER, lowercase hex without separators.
    pub sha256: String,
    /// The subject as RFC 4514 writes it (`CN=lab.genhosp,O=General Hospital`).
    pub subject: String,
    /// Its subjectAltName DNS names.
    pub dns_names: Vec<String>,
}

impl PeerCertificate {
    /// Reads the end-entity certificate's DER (TLS has already checked its chain). A certificate
    /// that cannot be parsed keeps its fingerprint, with no subject or names.
    pub fn read(der: &[u8]) -> PeerCertificate {
        let sha256 = hex(&Sha256::digest(der));
        match x509_parser::parse_x509_certificate(der) {
            Ok((_, cert)) => {
                let dns_names = cert
                    .subject_alternative_name()
                    .ok()
                    .flatten()
                    .map(|san| {
                        san.value
                            .general_names
                            .iter()
                            .filter_map(|name| match name {
                                x509_parser::extensions::GeneralName::DNSName(dns) => {
                                    Some(dns.to_ascii_lowercase())
                                }
                                _ => None,
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                PeerCertificate {
                    sha256,
                    subject: cert.subject().to_string(),
                    dns_names,
                }
            }
            Err(_) => PeerCertificate {
                sha256,
                subject: String::new(),
                dns_names: Vec::new(),
            },
        }
    }

    /// How the inbox keeps it (JSON), and reads it back for a replay.
    pub fn to_stored(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_stored(text: &str) -> Option<PeerCertificate> {
        serde_json::from_str(text).ok()
    }

    /// For people: the subject, else the fingerprint's start.
    pub fn label(&self) -> String {
        if self.subject.is_empty() {
            format!("sha256:{}", &self.sha256[..self.sha256.len().min(16)])
        } else {
            self.subject.clone()
        }
    }
}

/// The certificate a sender must present (every field given must match).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateBinding {
    /// The subject, RFC 4514 (`CN=pas.genhosp,O=General Hospital`); compared ignoring case and
    /// the spaces around its commas.
    #[serde(default)]
    pub subject: Option<String>,
    /// A DNS name among its subjectAltNames.
    #[serde(default)]
    pub dns_name: Option<String>,
    /// Its SHA-256 fingerprint (hex; colons and case ignored): pins one certificate.
    #[serde(default)]
    pub sha256: Option<String>,
}

impl CertificateBinding {
    /// Checks the entry: at least one field, a fingerprint that is one.
    pub fn check(&self) -> Result<(), String> {
        if self.subject.is_none() && self.dns_name.is_none() && self.sha256.is_none() {
            return Err("name the certificate by subject, dns_name or sha256".into());
        }
        if let Some(fingerprint) = &self.sha256 {
            let hex = normal_fingerprint(fingerprint);
            if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(format!(
                    "sha256 '{fingerprint}' is not a SHA-256 fingerprint (64 hex digits)"
                ));
            }
        }
        Ok(())
    }

    pub fn matches(&self, cert: &PeerCertificate) -> bool {
        let subject = self
            .subject
            .as_ref()
            .is_none_or(|s| normal_subject(s) == normal_subject(&cert.subject));
        let dns = self.dns_name.as_ref().is_none_or(|name| {
            cert.dns_names
                .iter()
                .any(|n| n.eq_ignore_ascii_case(name.trim()))
        });
        let pinned = self
            .sha256
            .as_ref()
            .is_none_or(|f| normal_fingerprint(f) == cert.sha256);
        subject && dns && pinned
    }
}

fn normal_subject(subject: &str) -> String {
    subject
        .split(',')
        .map(|part| part.trim().to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(",")
}

fn normal_fingerprint(fingerprint: &str) -> String {
    fingerprint
        .chars()
        .filter(|c| *c != ':' && !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Why a message's sender could not be established: it is refused without being kept in the
/// inbox (no control id claimed, never replayable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unestablished {
    pub kind: UnestablishedKind,
    /// What the peer is told: nothing about who else may send, or from where.
    pub told: String,
    /// The whole story, for the interface analyst.
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnestablishedKind {
    /// No header to read a sender from.
    Unreadable,
    /// MSH-3^MSH-4 names no listed sender.
    UnknownSender,
    /// A listed sender, from an address not its own.
    Address,
    /// A listed sender without the certificate bound to it.
    Certificate,
}

impl UnestablishedKind {
    pub fn as_str(self) -> &'static str {
        match self {
            UnestablishedKind::Unreadable => "unreadable",
            UnestablishedKind::UnknownSender => "unknown_sender",
            UnestablishedKind::Address => "address",
            UnestablishedKind::Certificate => "certificate",
        }
    }
}

/// A message type a sender may send: `ADT` (any event read here), or a code with its trigger
/// (`ORU^R01`). Merges (ADT^A40) need the sender's `merge = true` besides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageGrant {
    pub code: String,
    pub trigger: Option<String>,
}

impl MessageGrant {
    pub fn parse(text: &str) -> Result<MessageGrant, String> {
        let text = text.trim().to_ascii_uppercase();
        let (code, trigger) = match text.split_once('^') {
            Some((code, trigger)) => (code.to_string(), Some(trigger.to_string())),
            None => (text.clone(), None),
        };
        if !["ADT", "ORU", "ORM", "OMG", "OMI"].contains(&code.as_str()) {
            return Err(format!(
                "'{text}' is not a message type read here: ADT, ORU, ORM, OMG, OMI (optionally with the trigger, ORU^R01)"
            ));
        }
        if trigger
            .as_deref()
            .is_some_and(|t| t.len() != 3 || !t.chars().all(|c| c.is_ascii_alphanumeric()))
        {
            return Err(format!(
                "'{text}': a trigger is three letters and digits, as A08 or R01"
            ));
        }
        Ok(MessageGrant { code, trigger })
    }

    fn allows(&self, code: &str, trigger: &str) -> bool {
        self.code.eq_ignore_ascii_case(code)
            && self
                .trigger
                .as_deref()
                .is_none_or(|t| t.eq_ignore_ascii_case(trigger))
    }

    pub fn label(&self) -> String {
        match &self.trigger {
            Some(trigger) => format!("{}^{trigger}", self.code),
            None => self.code.clone(),
        }
    }
}

impl Sender {
    /// Whether this sender may send `code^trigger`: a grant for it, and for a merge (A40) the
    /// sender's explicit `merge = true`.
    pub fn may_send(&self, code: &str, trigger: &str) -> bool {
        let granted = self.messages.iter().any(|g| g.allows(code, trigger));
        let merge = code.eq_ignore_ascii_case("ADT") && trigger.eq_ignore_ascii_case("A40");
        granted && (!merge || self.merge)
    }

    /// What it may send, for an error message.
    pub fn grants(&self) -> String {
        let mut grants: Vec<String> = self.messages.iter().map(MessageGrant::label).collect();
        if self.merge {
            grants.push("ADT^A40 (merge)".into());
        }
        grants.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert() -> PeerCertificate {
        PeerCertificate {
            sha256: "ab".repeat(32),
            subject: "CN=lab.genhosp, O=General Hospital".into(),
            dns_names: vec!["lab.genhosp".into()],
        }
    }

    #[test]
    fn a_binding_matches_only_the_certificate_it_names() {
        let by_subject = CertificateBinding {
            subject: Some("cn=LAB.genhosp,o=General Hospital".into()),
            ..Default::default()
        };
        assert!(by_subject.matches(&cert()));
        let other = CertificateBinding {
            subject: Some("CN=pas.genhosp,O=General Hospital".into()),
            ..Default::default()
        };
        assert!(!other.matches(&cert()));
        let pinned = CertificateBinding {
            sha256: Some("AB:".repeat(31) + "AB"),
            dns_name: Some("lab.genhosp".into()),
            ..Default::default()
        };
        assert!(pinned.check().is_ok());
        assert!(pinned.matches(&cert()));
        let wrong_name = CertificateBinding {
            sha256: Some("ab".repeat(32)),
            dns_name: Some("pas.genhosp".into()),
            ..Default::default()
        };
        assert!(!wrong_name.matches(&cert()), "every field given must match");
        assert!(CertificateBinding::default().check().is_err());
        let short = CertificateBinding {
            sha256: Some("abcd".into()),
            ..Default::default()
        };
        assert!(short.check().unwrap_err().contains("64 hex digits"));
    }

    #[test]
    fn grants_read_as_written_and_refuse_what_is_not_read_here() {
        assert_eq!(
            MessageGrant::parse("oru^r01"),
            Ok(MessageGrant {
                code: "ORU".into(),
                trigger: Some("R01".into())
            })
        );
        assert!(MessageGrant::parse("SIU").unwrap_err().contains("ADT, ORU"));
        assert!(MessageGrant::parse("ADT^A0").is_err());
    }
}
