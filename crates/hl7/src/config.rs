//! The department's interface file: which hospital systems may send, from where, and how their
//! codes map to Seldinger's (identifier authorities to sites, local laboratory codes to tests).
//! Nothing is guessed: a code not in the file is a dead letter naming the line to add.

use crate::trust::{CertificateBinding, MessageGrant};
use seldinger_app::Notice;
use seldinger_domain::clinical::LabTest;
use seldinger_domain::patient::SiteCode;
use seldinger_domain::referral::RequestingService;
use seldinger_domain::ProcedureCatalogue;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// One system allowed to send, named as its messages name it (MSH-3.1 and MSH-4.1), with where
/// it connects from, the certificate it presents, and what it may send.
#[derive(Debug, Clone)]
pub struct Sender {
    pub application: String,
    pub facility: String,
    /// Addresses it connects from; none listed: any address (a batch file has none).
    pub addresses: Vec<IpAddr>,
    /// The message types it may send (PAS: ADT; laboratory: ORU^R01; order entry: ORM, OMG,
    /// OMI). Nothing is granted by default.
    pub messages: Vec<MessageGrant>,
    /// May it merge patients (ADT^A40)? Only a sender trusted with the master patient index.
    pub merge: bool,
    /// Over mutual TLS: the certificate it must present.
    pub certificate: Option<CertificateBinding>,
    /// An order sender's placer-order namespaces (ORC-2.2): no one else may file an order
    /// number in them. Default: its application name (MSH-3).
    pub placer_namespaces: Vec<String>,
    /// What it is, for people reading the inbox.
    pub description: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SenderEntry {
    application: String,
    facility: String,
    #[serde(default)]
    addresses: Vec<IpAddr>,
    #[serde(default)]
    messages: Vec<String>,
    #[serde(default)]
    merge: bool,
    #[serde(default)]
    certificate: Option<CertificateBinding>,
    #[serde(default)]
    placer_namespaces: Vec<String>,
    #[serde(default)]
    description: String,
}

impl SenderEntry {
    fn check(self, at: &str) -> Result<Sender, String> {
        if self.application.trim().is_empty() {
            return Err(format!("{at}.application is empty"));
        }
        if self.messages.is_empty() {
            return Err(format!(
                "{at}.messages: list what {} may send (e.g. [\"ADT\"] for a PAS, [\"ORU^R01\"] for a laboratory, [\"ORM\", \"OMG\", \"OMI\"] for order entry); nothing is granted by default",
                self.application
            ));
        }
        let messages = self
            .messages
            .iter()
            .map(|m| MessageGrant::parse(m).map_err(|e| format!("{at}.messages: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        if self.merge && !messages.iter().any(|g| g.code == "ADT") {
            return Err(format!(
                "{at}.merge: a sender that merges patients sends ADT: add \"ADT\" to its messages"
            ));
        }
        if let Some(binding) = &self.certificate {
            binding
                .check()
                .map_err(|e| format!("{at}.certificate: {e}"))?;
        }
        Ok(Sender {
            application: self.application.trim().to_string(),
            facility: self.facility.trim().to_string(),
            // As a connection's address is compared: an IPv4 address written IPv4-mapped is
            // the IPv4 address.
            addresses: self.addresses.iter().map(IpAddr::to_canonical).collect(),
            messages,
            merge: self.merge,
            certificate: self.certificate,
            placer_namespaces: self
                .placer_namespaces
                .iter()
                .map(|n| n.trim().to_ascii_uppercase())
                .filter(|n| !n.is_empty())
                .collect(),
            description: self.description,
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    version: String,
    #[serde(default = "default_application")]
    receiving_application: String,
    #[serde(default)]
    receiving_facility: String,
    #[serde(default = "default_processing_ids")]
    processing_ids: Vec<String>,
    #[serde(default)]
    senders: Vec<SenderEntry>,
    /// Assigning authority (PID-3, CX-4.1) → site code.
    #[serde(default)]
    identifiers: BTreeMap<String, String>,
    /// A laboratory's own result code (OBX-3.1) → test name (inr, platelets, …).
    #[serde(default)]
    results: BTreeMap<String, String>,
    /// An order code (OBR-4.1) → catalogue procedure id.
    #[serde(default)]
    orders: BTreeMap<String, String>,
    /// An ordering provider's id (ORC-12.1 / OBR-16.1) → Seldinger username.
    #[serde(default)]
    providers: BTreeMap<String, String>,
    /// A hospital service (PV1-10) → requesting service (oncology, surgery, urology, …).
    #[serde(default)]
    services: BTreeMap<String, String>,
    /// Systems told of bookings and reports.
    #[serde(default)]
    destinations: Vec<DestinationEntry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct DestinationEntry {
    name: String,
    #[serde(default)]
    address: Option<String>,
    #[serde(default)]
    style: Option<String>,
    #[serde(default)]
    application: String,
    #[serde(default)]
    facility: String,
    #[serde(default)]
    notices: Option<Vec<String>>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    tls_ca: Option<std::path::PathBuf>,
    #[serde(default)]
    tls_cert: Option<std::path::PathBuf>,
    #[serde(default)]
    tls_key: Option<std::path::PathBuf>,
}

/// The shape of message a destination's software expects for bookings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Scheduling: SIU^S12 booked, S13 rescheduled, S15 cancelled (v2.5.1).
    Siu,
    /// The order's placer (order entry): ORR^O02 with the filler order number and the order's
    /// status (v2.5.1); declines and reports too.
    OrderStatus,
    /// An image manager or PACS, IHE Radiology RAD-4/RAD-13 in v2.5.1: OMI^O23 (NW, XO, CA) with
    /// IPC (accession number, requested procedure, Study Instance UID).
    Omi,
    /// The same in v2.3.1: ORM^O01 with OBR-18/19 and ZDS (Study Instance UID).
    Orm,
}

impl Style {
    pub const ALL: [Style; 4] = [Style::Siu, Style::OrderStatus, Style::Omi, Style::Orm];

    pub fn as_str(self) -> &'static str {
        match self {
            Style::Siu => "siu",
            Style::OrderStatus => "order_status",
            Style::Omi => "omi",
            Style::Orm => "orm",
        }
    }

    pub fn parse(value: &str) -> Result<Style, String> {
        Style::ALL
            .into_iter()
            .find(|s| s.as_str() == value.trim())
            .ok_or_else(|| format!("'{value}' is not a style; use siu, order_status, omi or orm"))
    }

    /// What a destination of this style is sent when its entry does not say.
    pub fn default_notices(self) -> Vec<Notice> {
        match self {
            Style::OrderStatus => Notice::ALL.to_vec(),
            Style::Siu | Style::Omi | Style::Orm => {
                vec![Notice::Booked, Notice::Rescheduled, Notice::Cancelled]
            }
        }
    }
}

/// A system Seldinger sends to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub name: String,
    /// `host:port`; from the file or `--hl7-destination NAME=host:port`.
    pub address: Option<String>,
    pub style: Style,
    /// Its MSH-5 and MSH-6.
    pub application: String,
    pub facility: String,
    pub notices: Vec<Notice>,
    pub description: String,
    /// MLLP over TLS: the CA (PEM) the destination's certificate must chain to; none: plain TCP.
    pub tls_ca: Option<std::path::PathBuf>,
    /// This end's certificate chain and key (PEM) for a destination that asks for one (mutual TLS).
    pub tls_client: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

impl Destination {
    /// A destination named on the command line only: SIU, the default notices.
    pub fn named(name: &str, address: &str) -> Destination {
        Destination {
            name: name.to_string(),
            address: Some(address.to_string()),
            style: Style::Siu,
            application: name.to_ascii_uppercase(),
            facility: String::new(),
            notices: Style::Siu.default_notices(),
            description: String::new(),
            tls_ca: None,
            tls_client: None,
        }
    }
}

fn default_application() -> String {
    "SELDINGER".to_string()
}

fn default_processing_ids() -> Vec<String> {
    vec!["P".to_string()]
}

/// The interface file, checked.
#[derive(Debug, Clone)]
pub struct InterfaceConfig {
    pub version: String,
    /// This end's MSH-3 in acknowledgements when the message did not name one.
    pub receiving_application: String,
    pub receiving_facility: String,
    /// MSH-11 values accepted (P production; add T for a test feed).
    pub processing_ids: Vec<String>,
    pub senders: Vec<Sender>,
    identifiers: BTreeMap<String, SiteCode>,
    results: BTreeMap<String, LabTest>,
    orders: BTreeMap<String, String>,
    providers: BTreeMap<String, String>,
    services: BTreeMap<String, RequestingService>,
    pub destinations: Vec<Destination>,
}

impl InterfaceConfig {
    /// No sender allowed: every message is refused (and kept) until the department lists its systems.
    pub fn empty() -> InterfaceConfig {
        InterfaceConfig {
            version: "none".into(),
            receiving_application: default_application(),
            receiving_facility: String::new(),
            processing_ids: default_processing_ids(),
            senders: Vec::new(),
            identifiers: BTreeMap::new(),
            results: BTreeMap::new(),
            orders: BTreeMap::new(),
            providers: BTreeMap::new(),
            services: BTreeMap::new(),
            destinations: Vec::new(),
        }
    }

    /// Reads the TOML text of an interface file; `source` names it in errors.
    pub fn parse(text: &str, source: &str) -> Result<InterfaceConfig, String> {
        let file: File = toml::from_str(text).map_err(|e| format!("{source}: {e}"))?;
        let mut identifiers = BTreeMap::new();
        for (authority, site) in file.identifiers {
            let site = SiteCode::parse(&site)
                .map_err(|e| format!("{source}: identifiers.{authority}: {e}"))?;
            identifiers.insert(authority.to_ascii_uppercase(), site);
        }
        let mut results = BTreeMap::new();
        for (code, test) in file.results {
            let found = LabTest::ALL
                .into_iter()
                .find(|t| t.as_str() == test.trim().to_ascii_lowercase())
                .ok_or_else(|| {
                    let names: Vec<&str> = LabTest::ALL.iter().map(|t| t.as_str()).collect();
                    format!(
                        "{source}: results.{code}: '{test}' is not a test; use one of: {}",
                        names.join(", ")
                    )
                })?;
            results.insert(code, found);
        }
        let mut services = BTreeMap::new();
        for (code, service) in file.services {
            let found = RequestingService::parse(&service)
                .map_err(|e| format!("{source}: services.{code}: {e}"))?;
            services.insert(code.to_ascii_uppercase(), found);
        }
        let mut senders: Vec<Sender> = Vec::new();
        for (i, entry) in file.senders.into_iter().enumerate() {
            let at = format!("{source}: senders[{i}]");
            let sender = entry.check(&at)?;
            if senders.iter().any(|s| {
                s.application.eq_ignore_ascii_case(&sender.application)
                    && s.facility.eq_ignore_ascii_case(&sender.facility)
            }) {
                return Err(format!(
                    "{at}: {}^{} is listed twice",
                    sender.application, sender.facility
                ));
            }
            senders.push(sender);
        }
        let mut destinations: Vec<Destination> = Vec::new();
        for (i, entry) in file.destinations.into_iter().enumerate() {
            let at = format!("{source}: destinations[{i}]");
            let name = entry.name.trim().to_string();
            check_name(&name).map_err(|e| format!("{at}.name: {e}"))?;
            if destinations.iter().any(|d| d.name == name) {
                return Err(format!("{at}.name: '{name}' is listed twice"));
            }
            let style = match &entry.style {
                Some(style) => Style::parse(style).map_err(|e| format!("{at}.style: {e}"))?,
                None => Style::Siu,
            };
            let notices = match entry.notices {
                None => style.default_notices(),
                Some(names) => names
                    .iter()
                    .map(|n| {
                        Notice::parse(n.trim()).ok_or_else(|| {
                            let all: Vec<&str> = Notice::ALL.iter().map(|n| n.as_str()).collect();
                            format!(
                                "{at}.notices: '{n}' is not a notice; use: {}",
                                all.join(", ")
                            )
                        })
                    })
                    .collect::<Result<_, _>>()?,
            };
            if let Some(address) = &entry.address {
                check_address(address).map_err(|e| format!("{at}.address: {e}"))?;
            }
            let tls_client = match (entry.tls_cert, entry.tls_key) {
                (Some(cert), Some(key)) => Some((cert, key)),
                (None, None) => None,
                _ => return Err(format!("{at}: give tls_cert and tls_key together")),
            };
            if tls_client.is_some() && entry.tls_ca.is_none() {
                return Err(format!(
                    "{at}: a client certificate needs TLS: give tls_ca, the CA the destination's certificate chains to"
                ));
            }
            destinations.push(Destination {
                application: if entry.application.trim().is_empty() {
                    name.to_ascii_uppercase()
                } else {
                    entry.application.trim().to_string()
                },
                name,
                address: entry.address,
                style,
                facility: entry.facility.trim().to_string(),
                notices,
                description: entry.description,
                tls_ca: entry.tls_ca,
                tls_client,
            });
        }
        Ok(InterfaceConfig {
            destinations,
            version: file.version,
            receiving_application: file.receiving_application,
            receiving_facility: file.receiving_facility,
            processing_ids: file.processing_ids,
            senders,
            identifiers,
            results,
            orders: file.orders,
            providers: file.providers,
            services,
        })
    }

    /// Adds or readdresses a destination (`--hl7-destination NAME=host:port`): one the file
    /// names keeps its style; another is sent SIU.
    pub fn address_destination(&mut self, spec: &str) -> Result<(), String> {
        let (name, address) = spec
            .split_once('=')
            .ok_or_else(|| format!("--hl7-destination '{spec}': write NAME=host:port"))?;
        let (name, address) = (name.trim(), address.trim());
        check_address(address).map_err(|e| format!("--hl7-destination '{spec}': {e}"))?;
        match self.destinations.iter_mut().find(|d| d.name == name) {
            Some(known) => known.address = Some(address.to_string()),
            None => {
                check_name(name).map_err(|e| format!("--hl7-destination '{spec}': {e}"))?;
                self.destinations.push(Destination::named(name, address))
            }
        }
        Ok(())
    }

    /// Destinations with no address to send to (named in the file, not given one).
    pub fn unaddressed(&self) -> Vec<&str> {
        self.destinations
            .iter()
            .filter(|d| d.address.is_none())
            .map(|d| d.name.as_str())
            .collect()
    }

    /// The assigning authority (PID-3's CX-4) that issues a site's MRNs, for messages sent.
    pub fn authority_of(&self, site: &SiteCode) -> Option<&str> {
        self.identifiers
            .iter()
            .find(|(_, s)| *s == site)
            .map(|(authority, _)| authority.as_str())
    }

    /// The order-entry code the file maps to a catalogue procedure, for messages sent.
    pub fn order_code_of(&self, procedure: &str) -> Option<&str> {
        self.orders
            .iter()
            .find(|(_, id)| id.as_str() == procedure)
            .map(|(code, _)| code.as_str())
    }

    /// Order codes that map to a procedure the catalogue does not hold (checked at start).
    pub fn unknown_procedures(&self, catalogue: &ProcedureCatalogue) -> Vec<String> {
        self.orders
            .iter()
            .filter(|(_, id)| catalogue.find(id).is_err())
            .map(|(code, id)| format!("orders.{code} = \"{id}\""))
            .collect()
    }

    /// The catalogue procedure an order code asks for.
    pub fn procedure_of(&self, code: &str) -> Option<&str> {
        self.orders.get(code.trim()).map(String::as_str)
    }

    /// The Seldinger user an ordering provider is.
    pub fn user_of(&self, provider: &str) -> Option<&str> {
        self.providers.get(provider.trim()).map(String::as_str)
    }

    /// The requesting service a hospital service code is.
    pub fn service_of(&self, code: &str) -> Option<RequestingService> {
        self.services
            .get(&code.trim().to_ascii_uppercase())
            .copied()
    }

    /// The listed sender with this application and facility (case-insensitive).
    pub fn sender(&self, application: &str, facility: &str) -> Option<&Sender> {
        self.senders.iter().find(|s| {
            s.application.eq_ignore_ascii_case(application.trim())
                && s.facility.eq_ignore_ascii_case(facility.trim())
        })
    }

    /// Every address some sender connects from; none when a sender may connect from any.
    pub fn sender_addresses(&self) -> Option<Vec<IpAddr>> {
        if self.senders.iter().any(|s| s.addresses.is_empty()) {
            return None;
        }
        let mut all: Vec<IpAddr> = self
            .senders
            .iter()
            .flat_map(|s| s.addresses.iter().copied())
            .collect();
        all.sort();
        all.dedup();
        Some(all)
    }

    /// The placer-order namespaces the order senders own: each order sender's own list, else
    /// its application name.
    pub fn order_namespaces(&self) -> Vec<String> {
        let mut namespaces: Vec<String> = self
            .senders
            .iter()
            .filter(|s| {
                s.messages
                    .iter()
                    .any(|g| ["ORM", "OMG", "OMI"].contains(&g.code.as_str()))
            })
            .flat_map(|s| {
                if s.placer_namespaces.is_empty() {
                    vec![s.application.to_ascii_uppercase()]
                } else {
                    s.placer_namespaces.clone()
                }
            })
            .collect();
        namespaces.sort();
        namespaces.dedup();
        namespaces
    }

    /// Senders with no certificate bound (refused when the listener asks for client
    /// certificates: any certificate of the hospital's CA could speak as them).
    pub fn senders_without_certificate(&self) -> Vec<String> {
        self.senders
            .iter()
            .filter(|s| s.certificate.is_none())
            .map(|s| format!("{}^{}", s.application, s.facility))
            .collect()
    }

    /// The site whose MRNs `authority` issues.
    pub fn site_of(&self, authority: &str) -> Option<&SiteCode> {
        self.identifiers.get(&authority.trim().to_ascii_uppercase())
    }

    pub fn authorities(&self) -> impl Iterator<Item = (&String, &SiteCode)> {
        self.identifiers.iter()
    }

    /// The test a result code names: a LOINC code a test is stored under, or a laboratory
    /// code the file maps.
    pub fn test_of(&self, code: &str) -> Option<LabTest> {
        let code = code.trim();
        LabTest::ALL
            .into_iter()
            .find(|t| t.loinc() == code)
            .or_else(|| self.results.get(code).copied())
    }
}

/// A destination's name: letters, digits, '-' or '_' (it names the outbox's queue).
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
    {
        return Err(format!("'{name}' must be letters, digits, '-' or '_'"));
    }
    Ok(())
}

/// `host:port`, with a port.
fn check_address(address: &str) -> Result<(), String> {
    match address.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {
            Ok(())
        }
        _ => Err(format!("'{address}' is not host:port")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_demo_file_reads_and_a_bad_line_is_named() {
        let demo = InterfaceConfig::parse(crate::DEMO_INTERFACE, "demo").unwrap();
        assert!(demo.sender("pas", "GENHOSP").is_some());
        assert_eq!(demo.site_of("genhosp").map(|s| s.as_str()), Some("MAIN"));
        assert_eq!(demo.test_of("6301-6"), Some(LabTest::Inr));
        let bad = InterfaceConfig::parse(
            "version = \"x\"\n[results]\n\"LOCAL1\" = \"sodium\"\n",
            "f.toml",
        );
        assert!(bad.unwrap_err().contains("results.LOCAL1"));
        let bad_site = InterfaceConfig::parse(
            "version = \"x\"\n[identifiers]\nA = \"no spaces\"\n",
            "f.toml",
        );
        assert!(bad_site.unwrap_err().contains("identifiers.A"));
        let destinations = |entry: &str| {
            InterfaceConfig::parse(
                &format!("version = \"x\"\n[[destinations]]\n{entry}"),
                "f.toml",
            )
        };
        let pacs = destinations("name = \"pacs\"\nstyle = \"omi\"\naddress = \"10.0.0.5:2575\"")
            .expect("a destination");
        assert_eq!(pacs.destinations[0].style, Style::Omi);
        assert_eq!(pacs.destinations[0].application, "PACS");
        assert_eq!(pacs.destinations[0].notices, Style::Omi.default_notices());
        for (entry, named) in [
            ("name = \"a\"\nstyle = \"hl7\"", "style"),
            (
                "name = \"a\"\nnotices = [\"booked\", \"admitted\"]",
                "notices",
            ),
            ("name = \"a\"\naddress = \"pacs\"", "address"),
            ("name = \"a b\"", "name"),
            ("name = \"a\"\ntls_cert = \"c.pem\"", "tls_key together"),
            (
                "name = \"a\"\ntls_cert = \"c.pem\"\ntls_key = \"c.key\"",
                "tls_ca",
            ),
        ] {
            let refused = destinations(entry).unwrap_err();
            assert!(refused.contains(named), "{entry}: {refused}");
        }
        let mut config = destinations("name = \"pacs\"\nstyle = \"omi\"").expect("unaddressed");
        assert_eq!(config.unaddressed(), ["pacs"]);
        config
            .address_destination("pacs=127.0.0.1:2575")
            .expect("addressed");
        config
            .address_destination("ris=127.0.0.1:2576")
            .expect("a new one");
        assert!(config.unaddressed().is_empty());
        assert_eq!(config.destinations[1].style, Style::Siu);
        assert!(config.address_destination("ris").is_err());
    }
}
