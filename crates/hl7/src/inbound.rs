//! One path for every received message, from the MLLP listener or a batch file: refuse what is
//! not ours (AR), apply what is through the application layer — one patient's messages one at a
//! time, in the order they came — and answer only once the message, as it arrived, is stored
//! with its outcome (in the same commit as the change it made). A message seen before (same
//! sender and MSH-10) gets the same answer again and changes nothing; one cut short by a crash
//! is applied by the sender's retry (decision 0004).

use crate::ack::{self, Header};
use crate::charset::{msh18_of, Charset};
use crate::config::{InterfaceConfig, Sender};
use crate::fields::patient_identity;
use crate::message::{Location, Received};
use crate::problem::{Disposition, ErrorCode, Problem};
use crate::trust::{PeerCertificate, Unestablished, UnestablishedKind};
use crate::{adt, orders, oru};
use seldinger_app::{App, AppError, MessageHandler, Principal, Replayed, Shown};
use seldinger_domain::access::Role;
use seldinger_domain::patient::{Mrn, SiteCode};
use seldinger_store::{
    Batch, Claim, Engine, Finish, InboundMessage, InboxStatus, NewInboundMessage, RefusedArrival,
    StoreError, REFUSED_HEAD_BYTES,
};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, Weak};

/// Where a message came from.
#[derive(Debug, Clone)]
pub struct Peer {
    /// For people: `10.1.2.3:40112`, or `file:adt-batch.hl7`.
    pub label: String,
    /// The address a sender's allowed addresses are checked against; none for a file.
    pub ip: Option<IpAddr>,
    /// The certificate it presented over mutual TLS.
    pub certificate: Option<PeerCertificate>,
}

impl Peer {
    /// A connection from `address` (with the certificate it presented, over mutual TLS).
    pub fn connected(address: std::net::SocketAddr, certificate: Option<PeerCertificate>) -> Peer {
        Peer {
            label: address.to_string(),
            // An IPv4 peer of a listener on [::] arrives as ::ffff:a.b.c.d.
            ip: Some(address.ip().to_canonical()),
            certificate,
        }
    }

    /// Where a stored message came from, as it was written down on arrival (`10.1.2.3:40112`
    /// or `file:…`): the same address — canonical, as [`Peer::connected`] made it — so that a
    /// replay is checked as the arrival was.
    pub fn arrived(label: &str, certificate: Option<PeerCertificate>) -> Peer {
        match label.parse::<std::net::SocketAddr>() {
            Ok(address) => Peer::connected(address, certificate),
            Err(_) => Peer {
                label: label.to_string(),
                ip: None,
                certificate,
            },
        }
    }

    /// A batch file an administrator imports: no address to check.
    pub fn file(name: &str) -> Peer {
        Peer {
            label: format!("file:{name}"),
            ip: None,
            certificate: None,
        }
    }
}

/// What a message was answered.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The acknowledgement, in the message's character set.
    pub ack: Vec<u8>,
    /// AA, AE or AR.
    pub code: &'static str,
    /// The inbox id it is kept under (none when even that failed, or the sender was not
    /// established).
    pub message_id: Option<String>,
    /// The reason, when not accepted.
    pub reason: Option<String>,
    /// Whether the sender was established (listed, from its address, with its certificate): a
    /// connection that has established none is held to the short first-message timeout.
    pub established: bool,
}

/// The HL7 interface: the department's interface file and the application it applies to.
pub struct Interface {
    app: App,
    config: Arc<InterfaceConfig>,
    queues: PatientQueues,
}

impl Interface {
    pub fn new(app: App, config: InterfaceConfig) -> Interface {
        Interface {
            app,
            config: Arc::new(config),
            queues: PatientQueues::default(),
        }
    }

    pub fn config(&self) -> &InterfaceConfig {
        &self.config
    }

    pub fn engine(&self) -> Engine {
        self.app.store.engine()
    }

    /// Opens a batch: the listener's writers apply many messages in one commit.
    pub async fn begin_batch(&self) -> Result<Batch, StoreError> {
        self.app.store.begin_batch().await
    }

    /// This interface with every change made in `batch` (answers hold until it commits).
    pub fn in_batch(&self, batch: &Batch) -> Interface {
        Interface {
            app: self.app.in_batch(batch),
            config: self.config.clone(),
            // One writer applies a batch's messages one after another: nothing to queue.
            queues: PatientQueues::default(),
        }
    }

    /// After a batch commits: what it changed may owe messages to destinations.
    pub fn committed(&self) {
        self.app.wake_senders();
    }

    /// The patient a message is about (`SITE/MRN`), when it can be read.
    pub fn patient_key_of(&self, raw: &[u8]) -> Option<String> {
        let received = Received::read(raw).ok()?;
        let (site, mrn) = patient_identity(&received, &self.config).ok()?;
        Some(format!("{}/{}", site.as_str(), mrn.as_str()))
    }

    /// The answer to a message (or its header) that could not be stored: send it again.
    pub fn not_stored(&self, raw: &[u8], reason: &str) -> Answer {
        let (header, charset) = header_and_charset(raw, &Received::read(raw));
        tracing::error!(%reason, control_id = %header.control_id, "HL7 message not stored");
        self.send_again(&header, charset)
    }

    /// Receives one message (its bytes between the MLLP frame marks) and answers it.
    pub async fn receive(&self, raw: &[u8], peer: &Peer) -> Answer {
        self.receive_or_refuse(raw, peer, None).await
    }

    /// A message over the size limit: its first `max` bytes are kept, and it is refused.
    pub async fn too_large(&self, head: &[u8], length: usize, max: usize, peer: &Peer) -> Answer {
        let problem = Problem::new(
            ErrorCode::ApplicationInternalError,
            None,
            format!("the message is {length} bytes; this interface takes at most {max} (kept truncated)"),
        );
        self.receive_or_refuse(head, peer, Some(problem)).await
    }

    async fn receive_or_refuse(&self, raw: &[u8], peer: &Peer, refusal: Option<Problem>) -> Answer {
        let now = self.app.clock.now();
        let parsed = Received::read(raw);
        let (header, charset) = header_and_charset(raw, &parsed);
        // Who is talking, before anything is looked up, kept or claimed: a message whose sender
        // is not established takes no (sender, MSH-10) key and is never replayable.
        let sender_entry = match self.establish(&header, peer) {
            Ok(sender) => sender,
            Err(why) => {
                return self
                    .refuse_unestablished(raw, &header, charset, peer, why)
                    .await
            }
        };
        let peer_certificate = peer.certificate.as_ref().map(PeerCertificate::to_stored);
        // As the message names itself: the key a copy sent again is found by.
        let sender = Some(format!(
            "{}^{}",
            header.sending_application, header.sending_facility
        ));
        let control_id = (!header.control_id.is_empty()).then(|| header.control_id.clone());
        let patient_key = parsed
            .as_ref()
            .ok()
            .and_then(|r| patient_identity(r, &self.config).ok())
            .map(|(site, mrn)| format!("{}/{}", site.as_str(), mrn.as_str()));
        let digest = content_digest(raw);
        let mut new = NewInboundMessage {
            id: uuid::Uuid::new_v4().to_string(),
            sender,
            control_id,
            received_at: now,
            peer: peer.label.clone(),
            message_type: message_type(&header, &parsed),
            version: header.version.clone(),
            content_sha256: digest.clone(),
            raw: raw.to_vec(),
            patient_key: patient_key.clone(),
            peer_certificate,
        };
        // Arrived before? Answered as then; kept but never finished (an earlier version kept
        // messages before applying them): finished now. In a batch the inbox's unique key finds
        // it instead, one statement less for every new message: the copy's claim meets the first
        // one, which spoils the batch, and applied again alone it is answered as before.
        let earlier = match (&new.sender, &new.control_id) {
            _ if self.app.store.in_batch() => None,
            (Some(sender), Some(control_id)) => {
                match self.app.find_message(sender, control_id).await {
                    Ok(earlier) => earlier,
                    Err(e) => return self.unstored(&header, charset, e),
                }
            }
            _ => None,
        };
        let kept = match earlier {
            Some(earlier) if earlier.status == InboxStatus::Received => {
                if let Err(e) = self
                    .app
                    .store
                    .count_message_attempt(&earlier.arrived.id)
                    .await
                {
                    return self.unstored(&header, charset, e.into());
                }
                Some(earlier.arrived.id)
            }
            Some(earlier) if earlier.arrived.content_sha256 == digest => {
                return self.answered_before(earlier, &header, charset)
            }
            Some(earlier) => {
                // The same control id for other content: kept apart (no control id) and refused.
                new.control_id = None;
                let problem = Problem::new(
                    ErrorCode::DuplicateKeyIdentifier,
                    Some(Location::new("MSH", 10)),
                    format!(
                        "control id {} was used before by this sender for a different message (kept as {}); give each message its own MSH-10",
                        header.control_id, earlier.arrived.id
                    ),
                );
                return self
                    .record(&new, &header, charset, Disposition::Rejected(problem), None)
                    .await;
            }
            None => None,
        };
        // The answer if it applies, built first: the write that applies it keeps it too.
        let accepted = self.ack_text(&header, &Disposition::Accepted, charset);
        let disposition = match (parsed, refusal) {
            (_, Some(problem)) | (Err(problem), None) => Disposition::Rejected(problem),
            (Ok(received), None) => match self.check(&header, sender_entry) {
                Err(problem) => Disposition::Rejected(problem),
                Ok(()) => {
                    let queue = self.queues.of(patient_key.as_deref());
                    let _turn = match &queue {
                        Some(q) => Some(q.lock().await),
                        None => None,
                    };
                    let claim = Arc::new(Claim::new(
                        accepted.clone(),
                        kept.is_none().then(|| new.clone()),
                    ));
                    let id = kept.clone().unwrap_or_else(|| new.id.clone());
                    match self
                        .apply(&received, &header, peer, &id, claim.clone())
                        .await
                    {
                        // Applied and kept in one commit: nothing left to store.
                        Ok(Disposition::Accepted) if claim.was_kept() => {
                            return self.answer(
                                &id,
                                &header,
                                charset,
                                &Disposition::Accepted,
                                accepted,
                            )
                        }
                        Ok(disposition) => disposition,
                        // The database did not answer: nothing is kept, and the sender is told
                        // to send it again.
                        Err(transient) => return self.unstored(&header, charset, transient),
                    }
                }
            },
        };
        match kept {
            Some(id) => {
                self.finish(&id, &header, charset, disposition, Some(accepted))
                    .await
            }
            None => {
                self.record(&new, &header, charset, disposition, Some(accepted))
                    .await
            }
        }
    }

    /// The answer a message got the first time, for the same message sent again.
    fn answered_before(
        &self,
        earlier: InboundMessage,
        header: &Header,
        charset: Charset,
    ) -> Answer {
        tracing::info!(message_id = %earlier.arrived.id, control_id = %header.control_id, "HL7 message received again: answered as before");
        let code = earlier.ack.as_deref().map(ack_code).unwrap_or("AA");
        let text = earlier
            .ack
            .clone()
            .unwrap_or_else(|| self.ack_text(header, &Disposition::Accepted, charset));
        Answer {
            ack: charset.encode(&text),
            code,
            message_id: Some(earlier.arrived.id),
            established: true,
            reason: earlier
                .error_reason
                .map(|reason| match earlier.error_location {
                    Some(at) => format!("{at}: {reason}"),
                    None => reason,
                }),
        }
    }

    /// Keeps a new message with its outcome (one commit; nothing when the write that applied it
    /// kept it already), then answers. Another delivery of the same message kept first: its
    /// answer is given.
    async fn record(
        &self,
        new: &NewInboundMessage,
        header: &Header,
        charset: Charset,
        disposition: Disposition,
        accepted_ack: Option<String>,
    ) -> Answer {
        let finish = self.outcome(header, &disposition, charset, accepted_ack);
        match self.app.record_message(new, &finish).await {
            Err(error) => {
                tracing::error!(message_id = %new.id, %error, "HL7 message outcome not stored");
                self.unstored(header, charset, error)
            }
            Ok(Some(first)) if first.arrived.id != new.id => {
                if self.app.store.in_batch()
                    && (first.status == InboxStatus::Received
                        || first.arrived.content_sha256 != new.content_sha256)
                {
                    // Not looked up first (in a batch): a control id used for other content, or
                    // a copy never finished, is handled when the message is applied alone.
                    self.app.store.spoil_batch();
                }
                self.answered_before(first, header, charset)
            }
            Ok(_) => self.answer(&new.id, header, charset, &disposition, finish.ack),
        }
    }

    /// Replays a stored message (from the dead-letter list) through the same path and every
    /// check, as it arrived: its sender is established again from the address it came from and
    /// the certificate it presented, against today's interface file. A message refused for who
    /// sent it is never replayed as that sender. The answer is stored, not sent (the sender had
    /// its answer).
    pub async fn replay(&self, message: &InboundMessage, by: &str) -> Result<Replayed, AppError> {
        let raw = &message.arrived.raw;
        let parsed = Received::read(raw);
        let header = match &parsed {
            Ok(received) => header_of(received),
            Err(_) => lossy_header(raw),
        };
        let charset = parsed.as_ref().map(|r| r.charset).unwrap_or(Charset::Utf8);
        // Kept by an earlier version, which refused unknown senders and addresses into the
        // inbox: who sent it was never established.
        if message.status == InboxStatus::Refused
            && message.error_location.as_deref() == Some("MSH-3")
        {
            return Err(AppError::invalid(
                "message",
                format!(
                    "message {} was refused for who sent it ({}): it is never replayed as that sender",
                    message.arrived.id,
                    message.error_reason.as_deref().unwrap_or("sender not established")
                ),
            ));
        }
        let arrived = Peer::arrived(
            &message.arrived.peer,
            message
                .arrived
                .peer_certificate
                .as_deref()
                .and_then(PeerCertificate::from_stored),
        );
        let sender = match self.establish(&header, &arrived) {
            Ok(sender) => sender,
            Err(why) => {
                return Err(AppError::invalid(
                    "message",
                    format!(
                        "message {} cannot be replayed as {}^{}: {}",
                        message.arrived.id,
                        header.sending_application,
                        header.sending_facility,
                        why.detail
                    ),
                ))
            }
        };
        self.app
            .store
            .count_message_attempt(&message.arrived.id)
            .await?;
        let peer = Peer {
            label: format!("replay by {by} of {}", message.arrived.peer),
            ..arrived
        };
        let accepted = self.ack_text(&header, &Disposition::Accepted, charset);
        let disposition = match parsed {
            Err(problem) => Disposition::Rejected(problem),
            Ok(received) => match self.check(&header, sender) {
                Err(problem) => Disposition::Rejected(problem),
                Ok(()) => {
                    let key = message.arrived.patient_key.clone();
                    let queue = self.queues.of(key.as_deref());
                    let _turn = match &queue {
                        Some(q) => Some(q.lock().await),
                        None => None,
                    };
                    let claim = Arc::new(Claim::new(accepted.clone(), None));
                    self.apply(&received, &header, &peer, &message.arrived.id, claim)
                        .await?
                }
            },
        };
        let answer = self
            .finish(
                &message.arrived.id,
                &header,
                charset,
                disposition,
                Some(accepted),
            )
            .await;
        Ok(Replayed {
            status: match answer.code {
                "AA" => InboxStatus::Applied,
                "AE" => InboxStatus::Failed,
                _ => InboxStatus::Refused,
            },
            reason: answer.reason,
        })
    }

    /// Establishes who sent a message: a listed sender (MSH-3^MSH-4), from one of its addresses,
    /// with the certificate bound to it. A batch file (no address) is an administrator's import:
    /// its senders need only be listed.
    fn establish(&self, header: &Header, peer: &Peer) -> Result<&Sender, Unestablished> {
        if header.sending_application.is_empty() {
            return Err(Unestablished {
                kind: UnestablishedKind::Unreadable,
                told: "no message header (MSH-3) to read the sender from".into(),
                detail: format!("from {}: no readable MSH-3", peer.label),
            });
        }
        let named = format!("{}^{}", header.sending_application, header.sending_facility);
        let Some(sender) = self
            .config
            .sender(&header.sending_application, &header.sending_facility)
        else {
            return Err(Unestablished {
                kind: UnestablishedKind::UnknownSender,
                told: format!("sender {named} (MSH-3^MSH-4) is not on this department's list of systems"),
                detail: format!("sender {named} (MSH-3^MSH-4) is not listed under [[senders]] in the interface file; it came from {}", peer.label),
            });
        };
        let Some(ip) = peer.ip else {
            return Ok(sender);
        };
        if !sender.addresses.is_empty() && !sender.addresses.contains(&ip) {
            return Err(Unestablished {
                kind: UnestablishedKind::Address,
                told: format!("sender {named} may not send from this address"),
                detail: format!(
                    "sender {named} may send only from {}; this came from {}",
                    sender
                        .addresses
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                    peer.label
                ),
            });
        }
        if let Some(binding) = &sender.certificate {
            let presented = peer.certificate.as_ref();
            if !presented.is_some_and(|c| binding.matches(c)) {
                return Err(Unestablished {
                    kind: UnestablishedKind::Certificate,
                    told: format!("sender {named} must present its own certificate"),
                    detail: format!(
                        "sender {named} must present the certificate bound to it in the interface file; {} presented {}",
                        peer.label,
                        presented.map_or_else(|| "none".to_string(), PeerCertificate::label)
                    ),
                });
            }
        }
        Ok(sender)
    }

    /// Refuses a message whose sender was not established: counted with its head (capped) for
    /// the interface analyst, never kept in the inbox, and the peer told only what it got wrong.
    async fn refuse_unestablished(
        &self,
        raw: &[u8],
        header: &Header,
        charset: Charset,
        peer: &Peer,
        why: Unestablished,
    ) -> Answer {
        let kind = why.kind.as_str();
        metrics::counter!("seldinger_hl7_unestablished_total", "kind" => kind).increment(1);
        tracing::warn!(peer = %peer.label, kind, detail = %why.detail, "HL7 message refused: sender not established");
        let arrival = RefusedArrival {
            peer_address: peer
                .ip
                .map_or_else(|| peer.label.clone(), |ip| ip.to_string()),
            kind: kind.to_string(),
            claimed_sender: format!("{}^{}", header.sending_application, header.sending_facility)
                .trim_matches('^')
                .to_string(),
            reason: why.detail.clone(),
            last_peer: peer.label.clone(),
            head: raw[..raw.len().min(REFUSED_HEAD_BYTES)].to_vec(),
            at: self.app.clock.now(),
        };
        if let Err(error) = self.app.note_refused_arrival(&arrival).await {
            tracing::warn!(%error, "a refused arrival was not counted");
        }
        let problem = Problem::new(
            ErrorCode::TableValueNotFound,
            Some(Location::new("MSH", 3)),
            why.told,
        );
        let disposition = Disposition::Rejected(problem);
        Answer {
            ack: charset.encode(&self.ack_text(header, &disposition, charset)),
            code: disposition.code(),
            message_id: None,
            reason: disposition.problem().map(|p| p.to_string()),
            established: false,
        }
    }

    /// The message itself, from its established sender: this interface reads it, and the sender
    /// may send it.
    fn check(&self, header: &Header, sender: &Sender) -> Result<(), Problem> {
        self.check_message(header)?;
        let (code, trigger) = (header.message_code.as_str(), header.trigger.as_str());
        if sender.may_send(code, trigger) {
            return Ok(());
        }
        Err(Problem::new(
            ErrorCode::UnsupportedMessageType,
            Some(Location::new("MSH", 9)),
            format!(
                "{}^{} may not send {code}^{trigger}: the interface file grants it {}",
                sender.application,
                sender.facility,
                sender.grants()
            ),
        ))
    }

    /// MSH-10, MSH-11, MSH-12 and MSH-9 as this interface reads them.
    fn check_message(&self, header: &Header) -> Result<(), Problem> {
        if header.control_id.is_empty() {
            return Err(Problem::new(
                ErrorCode::RequiredFieldMissing,
                Some(Location::new("MSH", 10)),
                "the message control id (MSH-10) is required: it is how a message sent again is recognised",
            ));
        }
        if !self.config.processing_ids.contains(&header.processing_id) {
            return Err(Problem::new(
                ErrorCode::UnsupportedProcessingId,
                Some(Location::new("MSH", 11)),
                format!(
                    "processing id '{}' is not accepted here (accepted: {})",
                    header.processing_id,
                    self.config.processing_ids.join(", ")
                ),
            ));
        }
        if !ack::VERSIONS.contains(&header.version.as_str()) {
            return Err(Problem::new(
                ErrorCode::UnsupportedVersionId,
                Some(Location::new("MSH", 12)),
                format!(
                    "version '{}' is not read here: send one of {}",
                    header.version,
                    ack::VERSIONS.join(", ")
                ),
            ));
        }
        let (code, event) = (header.message_code.as_str(), header.trigger.as_str());
        let supported = match code {
            "ADT" => adt::EVENTS.contains(&event),
            "ORU" => event == "R01",
            _ => match orders::TYPES.iter().find(|(c, _)| *c == code) {
                Some((_, trigger)) => *trigger == event,
                None => {
                    return Err(Problem::new(
                        ErrorCode::UnsupportedMessageType,
                        Some(Location::new("MSH", 9).component(1)),
                        format!(
                            "message type '{code}' is not read here: ADT, ORU, ORM, OMG and OMI are"
                        ),
                    ))
                }
            },
        };
        if !supported {
            return Err(Problem::new(
                ErrorCode::UnsupportedEventCode,
                Some(Location::new("MSH", 9).component(2)),
                format!(
                    "{code}^{event} is not read here (ADT: {}; ORU^R01; ORM^O01; OMG^O19; OMI^O23)",
                    adt::EVENTS.join(", ")
                ),
            ));
        }
        Ok(())
    }

    /// Applies a checked message; `Err` only when the database did not answer.
    async fn apply(
        &self,
        received: &Received,
        header: &Header,
        peer: &Peer,
        id: &str,
        claim: Arc<Claim>,
    ) -> Result<Disposition, AppError> {
        let who = Principal {
            username: format!(
                "hl7:{}^{}",
                header.sending_application, header.sending_facility
            )
            .chars()
            .take(64)
            .collect(),
            role: Role::Interface,
            client_addr: peer.label.clone(),
            break_glass_reason: None,
            via_message: Some(id.to_string()),
            via_claim: Some(claim),
        };
        let time = &self.app.time;
        let result = match header.message_code.as_str() {
            "ADT" if header.trigger == "A40" => match adt::read_merge(received, &self.config) {
                Err(problem) => return Ok(Disposition::Error(problem)),
                Ok(m) => self
                    .app
                    .merge_patients(&who, m.survivor, m.merged)
                    .await
                    .map(|_| ()),
            },
            "ADT" => match adt::read(received, &header.trigger, &self.config, time) {
                Err(problem) => return Ok(Disposition::Error(problem)),
                Ok(m) => self
                    .app
                    .keep_patient_details(&who, m.site, m.mrn, &m.patch)
                    .await
                    .map(|_| ()),
            },
            "ORM" | "OMG" | "OMI" => {
                match orders::read(received, &self.config, &self.app.catalogue) {
                    Err(problem) => return Ok(Disposition::Error(problem)),
                    Ok(order) => {
                        let patient =
                            match self.app.patient_by_mrn(&who, &order.site, &order.mrn).await {
                                Ok(Some(patient)) => patient,
                                Ok(None) => {
                                    return Ok(Disposition::Error(unknown_patient(
                                        &order.site,
                                        &order.mrn,
                                    )))
                                }
                                Err(e) => return disposition_of(e),
                            };
                        match order.request {
                            orders::OrderRequest::New {
                                details,
                                ordered_by,
                            } => {
                                let user =
                                    ordered_by.as_deref().and_then(|p| self.config.user_of(p));
                                self.app
                                    .file_order(&who, patient.id, details, user)
                                    .await
                                    .map(|_| ())
                            }
                            orders::OrderRequest::Change { details } => self
                                .app
                                .change_order(&who, patient.id, details)
                                .await
                                .map(|_| ()),
                            orders::OrderRequest::Cancel { placer, reason } => self
                                .app
                                .cancel_order(&who, patient.id, &placer, &reason)
                                .await
                                .map(|_| ()),
                        }
                    }
                }
            }
            _ => match oru::read(received, &self.config, time, self.app.clock.now()) {
                Err(problem) => return Ok(Disposition::Error(problem)),
                Ok(report) => match self
                    .app
                    .patient_by_mrn(&who, &report.site, &report.mrn)
                    .await
                {
                    Ok(None) => {
                        return Ok(Disposition::Error(unknown_patient(
                            &report.site,
                            &report.mrn,
                        )))
                    }
                    Ok(Some(patient)) => self
                        .app
                        .record_lab_report(&who, patient.id, &report.results)
                        .await
                        .map(|_| ()),
                    Err(e) => Err(e),
                },
            },
        };
        match result {
            Ok(()) => Ok(Disposition::Accepted),
            Err(e) => disposition_of(e),
        }
    }

    /// Stores the outcome of a message kept before (a replay, or one an earlier version kept
    /// before applying), then answers. If the outcome cannot be stored the answer still tells
    /// the truth (an applied message was committed with its change).
    async fn finish(
        &self,
        id: &str,
        header: &Header,
        charset: Charset,
        disposition: Disposition,
        accepted_ack: Option<String>,
    ) -> Answer {
        let finish = self.outcome(header, &disposition, charset, accepted_ack);
        if let Err(error) = self.app.finish_message(id, &finish).await {
            tracing::error!(message_id = %id, %error, "HL7 message outcome not stored");
            if disposition != Disposition::Accepted {
                return self.unstored(header, charset, error);
            }
        }
        self.answer(id, header, charset, &disposition, finish.ack)
    }

    /// How a message ended, with the acknowledgement that says so.
    fn outcome(
        &self,
        header: &Header,
        disposition: &Disposition,
        charset: Charset,
        accepted_ack: Option<String>,
    ) -> Finish {
        let ack = match (disposition, accepted_ack) {
            (Disposition::Accepted, Some(ack)) => ack,
            _ => self.ack_text(header, disposition, charset),
        };
        let problem = disposition.problem();
        Finish {
            status: match disposition {
                Disposition::Accepted => InboxStatus::Applied,
                Disposition::Error(_) => InboxStatus::Failed,
                Disposition::Rejected(_) => InboxStatus::Refused,
            },
            ack,
            error_code: problem.map(|p| p.code.code().to_string()),
            error_location: problem
                .and_then(|p| p.location.as_ref())
                .map(Location::path),
            error_reason: problem.map(|p| p.reason.clone()),
            at: self.app.clock.now(),
        }
    }

    fn answer(
        &self,
        id: &str,
        header: &Header,
        charset: Charset,
        disposition: &Disposition,
        ack: String,
    ) -> Answer {
        let problem = disposition.problem();
        tracing::info!(
            message_id = %id,
            control_id = %header.control_id,
            kind = %format!("{}^{}", header.message_code, header.trigger),
            ack = disposition.code(),
            reason = problem.map(|p| p.to_string()).unwrap_or_default(),
            "HL7 message answered"
        );
        Answer {
            ack: charset.encode(&ack),
            code: disposition.code(),
            message_id: Some(id.to_string()),
            reason: problem.map(|p| p.to_string()),
            established: true,
        }
    }

    /// AR for a message the database could not take: the sender keeps it and sends it again.
    fn unstored(&self, header: &Header, charset: Charset, error: AppError) -> Answer {
        tracing::error!(%error, control_id = %header.control_id, "HL7 message not stored");
        self.send_again(header, charset)
    }

    /// AR: nothing was kept, the sender is to send the message again.
    fn send_again(&self, header: &Header, charset: Charset) -> Answer {
        let problem = Problem::new(
            ErrorCode::ApplicationInternalError,
            None,
            "the message could not be stored now; send it again",
        );
        let disposition = Disposition::Rejected(problem);
        Answer {
            ack: charset.encode(&self.ack_text(header, &disposition, charset)),
            code: disposition.code(),
            message_id: None,
            reason: Some("not stored: the database did not answer".to_string()),
            // Not known, and no reason to hold a sender to the short timeout for it.
            established: true,
        }
    }

    fn ack_text(&self, header: &Header, disposition: &Disposition, charset: Charset) -> String {
        let mut header = header.clone();
        if header.receiving_application.is_empty() {
            header.receiving_application = self.config.receiving_application.clone();
        }
        if header.receiving_facility.is_empty() {
            header.receiving_facility = self.config.receiving_facility.clone();
        }
        let now = self.app.clock.now();
        let control: String = uuid::Uuid::new_v4().simple().to_string()[..20].to_string();
        ack::build(
            &header,
            disposition,
            &control,
            &now.format("%Y%m%d%H%M%S+0000").to_string(),
            charset,
        )
    }
}

impl MessageHandler for Interface {
    fn replay<'a>(
        &'a self,
        message: &'a InboundMessage,
        requested_by: &'a Principal,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Replayed, AppError>> + Send + 'a>>
    {
        Box::pin(Interface::replay(self, message, &requested_by.username))
    }

    /// The text in its character set (unreadable bytes replaced), one segment a line, with the
    /// failure's field marked.
    fn show(&self, message: &InboundMessage) -> Shown {
        let text = match Received::read(&message.arrived.raw) {
            Ok(received) => received.message.raw().to_string(),
            Err(_) => String::from_utf8_lossy(&message.arrived.raw).into_owned(),
        };
        let mark = message.error_location.as_deref().and_then(|path| {
            let parsed = hl7kit::Message::parse(text.as_str()).ok()?;
            let span = parsed.get_span(path)?;
            // An empty field is marked as the place it would be.
            Some(span.start..span.end.max(span.start))
        });
        // One byte for one: the marks stay where they are.
        Shown {
            text: text.replace('\r', "\n"),
            mark,
        }
    }
}

/// An application refusal in HL7's terms; `Err` when the database itself failed.
fn disposition_of(error: AppError) -> Result<Disposition, AppError> {
    let problem = |code, reason: String| Ok(Disposition::Error(Problem::new(code, None, reason)));
    match error {
        // A rule of the record refused it (an order past the point of change, a merge already
        // made otherwise): the message is understood, the application will not do it.
        AppError::Invalid(errors)
            if errors
                .0
                .iter()
                .any(|e| matches!(e.field.as_str(), "order" | "merge")) =>
        {
            problem(ErrorCode::ApplicationInternalError, errors.to_string())
        }
        AppError::Invalid(errors) => problem(ErrorCode::DataTypeError, errors.to_string()),
        AppError::BadRequest { field, detail } => {
            problem(ErrorCode::DataTypeError, format!("{field}: {detail}"))
        }
        AppError::NotFound(what) => problem(
            ErrorCode::UnknownKeyIdentifier,
            format!("{what} does not exist"),
        ),
        AppError::Transition(e) => problem(ErrorCode::ApplicationInternalError, e.to_string()),
        AppError::Forbidden { .. } => Ok(Disposition::Rejected(Problem::new(
            ErrorCode::ApplicationInternalError,
            None,
            error.to_string(),
        ))),
        AppError::Store(StoreError::AlreadyApplied(_)) => Ok(Disposition::Accepted),
        AppError::Store(e @ StoreError::Conflict { .. }) => {
            problem(ErrorCode::ApplicationRecordLocked, e.to_string())
        }
        AppError::Store(StoreError::Duplicate(d)) => problem(ErrorCode::DuplicateKeyIdentifier, d),
        AppError::Store(StoreError::NotFound(what)) => {
            problem(ErrorCode::UnknownKeyIdentifier, format!("{what} not found"))
        }
        other => Err(other),
    }
}

/// The header to answer with and the character set to answer in: as read, or as far as an
/// unreadable message lets them be read.
fn header_and_charset(raw: &[u8], parsed: &Result<Received, Problem>) -> (Header, Charset) {
    match parsed {
        Ok(received) => (header_of(received), received.charset),
        Err(_) => (
            lossy_header(raw),
            Charset::declared(&msh18_of(raw)).unwrap_or(Charset::Utf8),
        ),
    }
}

fn unknown_patient(site: &SiteCode, mrn: &Mrn) -> Problem {
    Problem::new(
        ErrorCode::UnknownKeyIdentifier,
        Some(Location::new("PID", 3).component(1)),
        format!(
            "patient {}/{} is not registered here: the PAS's ADT must come first; replay this message once it has",
            site.as_str(),
            mrn.as_str()
        ),
    )
}

fn header_of(received: &Received) -> Header {
    let h = |field, component| received.header(field, component);
    Header {
        sending_application: h(3, 1),
        sending_facility: h(4, 1),
        receiving_application: h(5, 1),
        receiving_facility: h(6, 1),
        control_id: h(10, 1),
        message_code: h(9, 1),
        trigger: h(9, 2),
        processing_id: h(11, 1),
        version: h(12, 1),
    }
}

/// The header of a message that could not be read, as far as it can be: the answer should
/// still reach the right sender with the right control id.
fn lossy_header(raw: &[u8]) -> Header {
    match hl7kit::Message::parse_lossy(raw) {
        Ok(message) => {
            let h = |path: &str| message.get(path).unwrap_or("").trim().to_string();
            Header {
                sending_application: h("MSH-3.1"),
                sending_facility: h("MSH-4.1"),
                receiving_application: h("MSH-5.1"),
                receiving_facility: h("MSH-6.1"),
                control_id: h("MSH-10"),
                message_code: h("MSH-9.1"),
                trigger: h("MSH-9.2"),
                processing_id: h("MSH-11.1"),
                version: h("MSH-12.1"),
            }
        }
        Err(_) => Header::default(),
    }
}

fn message_type(header: &Header, parsed: &Result<Received, Problem>) -> String {
    match parsed {
        Ok(received) => received
            .segment("MSH")
            .and_then(|m| m.segment.field(9).map(|f| f.value().to_string()))
            .unwrap_or_default(),
        Err(_) if !header.message_code.is_empty() => {
            format!("{}^{}", header.message_code, header.trigger)
        }
        Err(_) => String::new(),
    }
}

fn ack_code(ack: &str) -> &'static str {
    match hl7kit::Message::parse(ack)
        .ok()
        .and_then(|m| m.get("MSA-1").map(str::to_string))
        .as_deref()
    {
        Some("AE") => "AE",
        Some("AR") => "AR",
        _ => "AA",
    }
}

/// SHA-256 of the message's segments, whatever ends its lines: the same message sent again by
/// another tool (CRLF instead of CR, a trailing CR or not) is the same message.
pub fn content_digest(raw: &[u8]) -> String {
    let mut hasher = Sha256::new();
    for segment in raw
        .split(|&b| b == b'\r' || b == b'\n')
        .filter(|s| !s.iter().all(u8::is_ascii_whitespace))
    {
        hasher.update(segment);
        hasher.update(b"\r");
    }
    hex(&hasher.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One queue per patient: their messages are applied one at a time, in arrival order (a tokio
/// mutex serves waiters first come, first served). Idle queues are dropped.
#[derive(Default)]
struct PatientQueues {
    queues: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
}

impl PatientQueues {
    fn of(&self, patient: Option<&str>) -> Option<Arc<tokio::sync::Mutex<()>>> {
        let patient = patient?;
        let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        if queues.len() > 1024 {
            queues.retain(|_, q| q.strong_count() > 0);
        }
        if let Some(queue) = queues.get(patient).and_then(Weak::upgrade) {
            return Some(queue);
        }
        let queue = Arc::new(tokio::sync::Mutex::new(()));
        queues.insert(patient.to_string(), Arc::downgrade(&queue));
        Some(queue)
    }
}

#[cfg(test)]
mod tests {
    use super::Peer;

    #[test]
    fn a_stored_peer_is_checked_with_the_address_it_arrived_from() {
        // An IPv4 sender of a listener on [::] is written down as ::ffff:a.b.c.d; replayed, it
        // is the IPv4 address its sender entry lists, as on arrival.
        let mapped = Peer::arrived("[::ffff:127.0.0.2]:40000", None);
        assert_eq!(mapped.ip, Some([127, 0, 0, 2].into()));
        assert_eq!(mapped.label, "[::ffff:127.0.0.2]:40000");
        let file = Peer::arrived("file:adt-batch.hl7", None);
        assert_eq!(file.ip, None);
        assert_eq!(file.label, "file:adt-batch.hl7");
    }
}
