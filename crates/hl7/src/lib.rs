//! Seldinger's HL7 v2 edge. Messages arrive over MLLP ([`mllp`]) or from batch files, are read
//! in their declared character set ([`charset`], [`message`]), kept in the inbox and applied
//! through the application layer ([`inbound`]): ADT keeps patients' details ([`adt`]), ORU^R01
//! files laboratory results ([`oru`]). Every message is answered with an original-mode
//! acknowledgement ([`ack`]) only once its outcome is stored. The department's interface file
//! ([`config`]) lists who may send and maps their codes; [`trust`] establishes who is talking
//! (header, address, certificate) and what each sender may send.

pub mod ack;
pub mod adt;
pub mod applier;
pub mod batch;
pub mod charset;
pub mod config;
pub mod fields;
pub mod inbound;
pub mod message;
pub mod mllp;
pub mod orders;
pub mod oru;
pub mod outbound;
pub mod problem;
pub mod sender;
pub mod trust;

pub use config::InterfaceConfig;
pub use inbound::{Answer, Interface, Peer};

/// The demo department's interface file (synthetic senders), shipped in the binary.
pub const DEMO_INTERFACE: &str = include_str!("../../../catalog/hl7-interface.toml");
