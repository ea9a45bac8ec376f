//! The department's DICOM listener (SCP), on dicom-ul: dose reports by C-STORE and the
//! Modality Worklist by C-FIND.
//!
//! It accepts the RDSR storage class (and Enhanced/Comprehensive SR, which some systems use for
//! the same template), the Modality Worklist information model (FIND) and Verification
//! (C-ECHO), in explicit or implicit VR little endian. Each report goes through [`Ingest`]; the
//! C-STORE response says success only once the report is committed to the database (PS3.4
//! B.2.3: a status of 0000 means the SCP has stored it). Worklist queries are answered by
//! [`find`](crate::find) as the calling modality.

use crate::dimse::{
    error_comment, read_command, response, send_command, send_data, tag_list, Command, Failure,
    C_CANCEL_RQ, C_ECHO_RQ, C_FIND_RQ, C_STORE_RQ, N_CREATE_RQ, N_SET_RQ,
};
use crate::find;
use crate::guard::{self, MAX_QUERY_BYTES, MAX_REPORT_BYTES};
use crate::ingest::{Ingest, Ingested};
use crate::mpps;
use dicom_dictionary_std::{tags, uids};
use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use dicom_ul::association::server::AsyncServerAssociation;
use dicom_ul::pdu::PDataValueType;
use dicom_ul::Pdu;
use seldinger_app::{App, Principal};
use seldinger_domain::access::Role;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

/// Abstract syntaxes accepted.
pub const ACCEPTED_SOP_CLASSES: &[&str] = &[
    uids::X_RAY_RADIATION_DOSE_SR_STORAGE,
    uids::ENHANCED_SR_STORAGE,
    uids::COMPREHENSIVE_SR_STORAGE,
    uids::MODALITY_WORKLIST_INFORMATION_MODEL_FIND,
    uids::MODALITY_PERFORMED_PROCEDURE_STEP,
    uids::VERIFICATION,
];

/// Transfer syntaxes accepted: the two the header check in `guard` walks.
pub const ACCEPTED_TRANSFER_SYNTAXES: &[&str] = &[
    uids::EXPLICIT_VR_LITTLE_ENDIAN,
    uids::IMPLICIT_VR_LITTLE_ENDIAN,
];

// Statuses (PS3.7 Annex C, PS3.4 Annex B.2.3).
const STATUS_SUCCESS: u16 = 0x0000;
/// Refused: the request's SOP class is not one this listener serves on that context.
const STATUS_SOP_CLASS_NOT_SUPPORTED: u16 = 0x0122;
/// Refused: out of resources (the database did not take it; the sender should retry).
const STATUS_OUT_OF_RESOURCES: u16 = 0xA700;
/// Error: data set does not match SOP class (an SR without dose content).
const STATUS_NOT_MATCHING_SOP_CLASS: u16 = 0xA900;
/// Error: cannot understand (unreadable).
const STATUS_CANNOT_UNDERSTAND: u16 = 0xC000;

/// The listener's TLS settings, as [`tls_config`] reads them.
pub type TlsSettings = Arc<rustls::ServerConfig>;

#[derive(Debug, Clone)]
pub struct ScpConfig {
    /// This listener's AE title; associations called for another title are rejected.
    pub ae_title: String,
    /// The calling AE titles of the department's modalities; when not empty, any other caller
    /// is rejected before it can send (PS3.8 A-ASSOCIATE-RJ: calling AE title not recognized).
    pub allowed_callers: Vec<String>,
    /// DICOM over TLS (PS3.15 B.9, BCP 195): when set, every association is encrypted; see
    /// [`tls_config`].
    pub tls: Option<TlsSettings>,
    /// An association idle this long is dropped, so a silent peer cannot hold a worker.
    pub read_timeout: Duration,
}

/// Who may open an association: callers must address this listener's AE title and, when the
/// department lists its modalities, be one of them.
struct KnownSenders {
    allowed: Vec<String>,
}

impl dicom_ul::association::server::AccessControl for KnownSenders {
    fn check_access(
        &self,
        this_ae_title: &str,
        calling_ae_title: &str,
        called_ae_title: &str,
        _user_identity: Option<&dicom_ul::pdu::UserIdentity>,
    ) -> Result<(), dicom_ul::pdu::AssociationRJServiceUserReason> {
        use dicom_ul::pdu::AssociationRJServiceUserReason as Reason;
        if called_ae_title.trim() != this_ae_title.trim() {
            return Err(Reason::CalledAETitleNotRecognized);
        }
        let calling = calling_ae_title.trim();
        if !self.allowed.is_empty() && !self.allowed.iter().any(|a| a == calling) {
            tracing::warn!(calling_ae = %calling, "DICOM association from an unlisted AE title rejected");
            return Err(Reason::CallingAETitleNotRecognized);
        }
        Ok(())
    }
}

/// Serves associations from `listener` until the task is dropped. Dose reports are ingested
/// with the application's store and safety reference; worklist queries are read through the
/// application as the calling modality.
pub async fn serve(listener: TcpListener, config: ScpConfig, app: App) -> std::io::Result<()> {
    let config = Arc::new(config);
    let app = Arc::new(app);
    loop {
        let (socket, peer) = listener.accept().await?;
        let (config, app) = (config.clone(), app.clone());
        tokio::spawn(async move {
            let open = metrics::gauge!("seldinger_dicom_associations_open");
            open.increment(1.0);
            let outcome = match association(socket, &config, &app).await {
                Ok(()) => "completed",
                Err(error) => {
                    tracing::warn!(%peer, %error, "DICOM association ended with an error");
                    "error"
                }
            };
            open.decrement(1.0);
            metrics::counter!("seldinger_dicom_associations_total", "outcome" => outcome)
                .increment(1);
        });
    }
}

async fn association(socket: TcpStream, config: &ScpConfig, app: &App) -> Result<(), Failure> {
    let peer = socket.peer_addr()?;
    // A response is a command and a data set, written one after the other: without this, the
    // second waits for the peer's delayed acknowledgement (tens of milliseconds per answer).
    socket.set_nodelay(true)?;
    let mut options = dicom_ul::association::ServerAssociationOptions::new()
        .ae_access_control(KnownSenders {
            allowed: config.allowed_callers.clone(),
        })
        .ae_title(config.ae_title.as_str())
        .read_timeout(config.read_timeout);
    for uid in ACCEPTED_SOP_CLASSES {
        options = options.with_abstract_syntax(*uid);
    }
    for uid in ACCEPTED_TRANSFER_SYNTAXES {
        options = options.with_transfer_syntax(*uid);
    }
    match &config.tls {
        Some(tls) => {
            let association = options
                .tls_config(tls.clone())
                .establish_tls_async(socket)
                .await?;
            Session::new(association, peer, app).run().await
        }
        None => {
            let association = options.establish_async(socket).await?;
            Session::new(association, peer, app).run().await
        }
    }
}

/// A request whose data set is still arriving, fragment by fragment.
struct Incoming {
    command: Command,
    data: Vec<u8>,
    /// More arrived than the service accepts: the rest is dropped and the request refused.
    oversize: bool,
}

impl Incoming {
    fn limit(&self) -> usize {
        match self.command.field {
            C_STORE_RQ => MAX_REPORT_BYTES,
            _ => MAX_QUERY_BYTES,
        }
    }

    fn take(&mut self, fragment: &[u8]) {
        if self.data.len() + fragment.len() > self.limit() {
            self.oversize = true;
            self.data = Vec::new();
        } else if !self.oversize {
            self.data.extend_from_slice(fragment);
        }
    }
}

/// One established association, plain or TLS: echoes, dose reports and worklist queries.
struct Session<'a, S> {
    association: AsyncServerAssociation<S>,
    peer: std::net::SocketAddr,
    app: &'a App,
    /// The calling AE title.
    calling: String,
    /// The calling modality, as the application sees it (interface role, audited by AE title).
    who: Principal,
}

impl<'a, S> Session<'a, S>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    fn new(
        association: AsyncServerAssociation<S>,
        peer: std::net::SocketAddr,
        app: &'a App,
    ) -> Self {
        let calling = dicom_ul::association::Association::peer_ae_title(&association)
            .trim()
            .to_string();
        Session {
            association,
            peer,
            app,
            calling: calling.clone(),
            who: Principal {
                username: format!("dicom:{calling}"),
                role: Role::Interface,
                client_addr: peer.to_string(),
                break_glass_reason: None,
                via_message: None,
                via_claim: None,
            },
        }
    }

    async fn run(mut self) -> Result<(), Failure> {
        let peer = self.peer;
        tracing::info!(%peer, caller = %self.who.username, "DICOM association accepted");
        let mut incoming: Option<Incoming> = None;
        // A PDU that arrived while responses were going out, handled next.
        let mut held_back: Option<Pdu> = None;
        loop {
            let pdu = match held_back.take() {
                Some(pdu) => pdu,
                None => match self.association.receive().await {
                    Ok(pdu) => pdu,
                    Err(error) => {
                        tracing::info!(%peer, %error, "DICOM association closed");
                        return Ok(());
                    }
                },
            };
            let values = match pdu {
                Pdu::PData { data } => data,
                Pdu::ReleaseRQ => {
                    self.association.send(&Pdu::ReleaseRP).await?;
                    tracing::info!(%peer, "DICOM association released");
                    return Ok(());
                }
                Pdu::AbortRQ { .. } => {
                    tracing::info!(%peer, "DICOM association aborted by the peer");
                    return Ok(());
                }
                _ => continue,
            };
            for value in values {
                let context = value.presentation_context_id;
                match value.value_type {
                    PDataValueType::Command => {
                        if !value.is_last {
                            return Err("command fragments are not supported".into());
                        }
                        let command = read_command(&value.data)?;
                        if command.has_data_set {
                            incoming = Some(Incoming {
                                command,
                                data: Vec::new(),
                                oversize: false,
                            });
                            continue;
                        }
                        match command.field {
                            C_ECHO_RQ => {
                                let rsp = response(&command, STATUS_SUCCESS, None, false, vec![]);
                                send_command(&mut self.association, context, &rsp).await?;
                            }
                            // A cancel for a query already answered in full: nothing to stop.
                            C_CANCEL_RQ => {}
                            other => {
                                tracing::warn!(%peer, command = other, "unsupported DIMSE command; aborting");
                                self.association.abort().await?;
                                return Ok(());
                            }
                        }
                    }
                    PDataValueType::Data => {
                        let Some(request) = incoming.as_mut() else {
                            return Err("a data set arrived without a request".into());
                        };
                        request.take(&value.data);
                        if !value.is_last {
                            continue;
                        }
                        let Some(request) = incoming.take() else {
                            continue;
                        };
                        let transfer_syntax = self
                            .association
                            .presentation_contexts()
                            .iter()
                            .find(|pc| pc.id == context)
                            .map(|pc| pc.transfer_syntax.clone())
                            .ok_or("data on a presentation context never negotiated")?;
                        match request.command.field {
                            C_STORE_RQ => self.store(request, context, &transfer_syntax).await?,
                            C_FIND_RQ => {
                                held_back = self.find(request, context, &transfer_syntax).await?;
                            }
                            N_CREATE_RQ | N_SET_RQ => {
                                self.performed_step(request, context, &transfer_syntax)
                                    .await?
                            }
                            other => {
                                tracing::warn!(%peer, command = other, "unsupported DIMSE command; aborting");
                                self.association.abort().await?;
                                return Ok(());
                            }
                        }
                    }
                }
            }
        }
    }

    /// A dose report: stored, then acknowledged (PS3.4 B.2.3).
    async fn store(
        &mut self,
        request: Incoming,
        context: u8,
        transfer_syntax: &str,
    ) -> Result<(), Failure> {
        let (peer, command) = (self.peer, &request.command);
        let status = if request.oversize {
            tracing::warn!(%peer, sop = %command.sop_instance_uid, "refused: larger than any dose report");
            STATUS_OUT_OF_RESOURCES
        } else {
            let ingest = Ingest {
                store: &self.app.store,
                reference: &self.app.safety,
                station: Some(&self.calling),
            };
            let source = format!("C-STORE from {} at {peer}", self.calling);
            let outcome = ingest
                .dataset(
                    &request.data,
                    transfer_syntax,
                    &source,
                    self.app.clock.now(),
                )
                .await;
            status_for(&outcome, &command.sop_instance_uid, &peer)
        };
        let rsp = response(
            command,
            status,
            Some(&command.sop_instance_uid),
            false,
            vec![],
        );
        send_command(&mut self.association, context, &rsp).await
    }

    /// A worklist query: each match as a pending response, then the final status; a C-CANCEL
    /// arriving in between stops the matches (status Cancel). Returns a PDU that arrived
    /// meanwhile and is not this query's cancel, for the loop to handle.
    async fn find(
        &mut self,
        request: Incoming,
        context: u8,
        transfer_syntax: &str,
    ) -> Result<Option<Pdu>, Failure> {
        let command = &request.command;
        let outcome = if request.oversize {
            Err(find::Refused {
                status: find::OUT_OF_RESOURCES,
                comment: format!("query larger than {MAX_QUERY_BYTES} bytes"),
                offending: Vec::new(),
            })
        } else if command.sop_class_uid != uids::MODALITY_WORKLIST_INFORMATION_MODEL_FIND {
            Err(find::Refused {
                status: STATUS_SOP_CLASS_NOT_SUPPORTED,
                comment: "only the Modality Worklist is queried here".into(),
                offending: Vec::new(),
            })
        } else {
            match read_identifier(&request.data, transfer_syntax) {
                Ok(query) => find::find(self.app, &self.who, &self.calling, &query).await,
                Err(why) => Err(find::Refused {
                    status: find::UNABLE_TO_PROCESS,
                    comment: why,
                    offending: Vec::new(),
                }),
            }
        };
        let found = match outcome {
            Ok(found) => found,
            Err(refused) => {
                tracing::warn!(peer = %self.peer, status = refused.status, reason = %refused.comment, "worklist query refused");
                let mut extra = vec![error_comment(&refused.comment)];
                if !refused.offending.is_empty() {
                    extra.push(tag_list(tags::OFFENDING_ELEMENT, &refused.offending));
                }
                let rsp = response(command, refused.status, None, false, extra);
                send_command(&mut self.association, context, &rsp).await?;
                return Ok(None);
            }
        };
        let ts = TransferSyntaxRegistry
            .get(transfer_syntax.trim_end_matches(['\0', ' ']))
            .ok_or("a transfer syntax this listener did not offer")?;
        let total = found.identifiers.len();
        for (sent, identifier) in found.identifiers.into_iter().enumerate() {
            if let Some(pdu) = self.arrived_now().await? {
                return self.interrupted(command, context, pdu, sent).await;
            }
            let mut bytes = Vec::new();
            identifier.write_dataset_with_ts(&mut bytes, ts)?;
            let rsp = response(command, found.pending_status, None, true, vec![]);
            send_command(&mut self.association, context, &rsp).await?;
            send_data(&mut self.association, context, &bytes).await?;
        }
        if let Some(pdu) = self.arrived_now().await? {
            return self.interrupted(command, context, pdu, total).await;
        }
        tracing::info!(peer = %self.peer, matches = total, "worklist query answered");
        let rsp = response(command, find::SUCCESS, None, false, vec![]);
        send_command(&mut self.association, context, &rsp).await?;
        Ok(None)
    }

    /// A performed procedure step's N-CREATE or N-SET: answered once it is committed.
    async fn performed_step(
        &mut self,
        request: Incoming,
        context: u8,
        transfer_syntax: &str,
    ) -> Result<(), Failure> {
        let command = &request.command;
        let answer = if request.oversize {
            mpps::Answer {
                status: mpps::PROCESSING_FAILURE,
                instance: command.sop_instance_uid.clone(),
                extra: vec![error_comment(&format!(
                    "data set larger than {MAX_QUERY_BYTES} bytes"
                ))],
            }
        } else if command.sop_class_uid != uids::MODALITY_PERFORMED_PROCEDURE_STEP {
            mpps::Answer {
                status: STATUS_SOP_CLASS_NOT_SUPPORTED,
                instance: command.sop_instance_uid.clone(),
                extra: vec![error_comment(
                    "only performed procedure steps are created or set here",
                )],
            }
        } else {
            match read_identifier(&request.data, transfer_syntax) {
                Ok(data_set) => mpps::handle(self.app, &self.who, command, &data_set).await,
                Err(why) => mpps::Answer {
                    status: mpps::PROCESSING_FAILURE,
                    instance: command.sop_instance_uid.clone(),
                    extra: vec![error_comment(&why)],
                },
            }
        };
        if answer.status != mpps::SUCCESS {
            tracing::warn!(peer = %self.peer, status = answer.status, instance = %answer.instance, "performed procedure step refused");
        }
        let rsp = response(
            command,
            answer.status,
            Some(&answer.instance),
            false,
            answer.extra,
        );
        send_command(&mut self.association, context, &rsp).await
    }

    /// A PDU arrived while a query's matches were going out: its cancel ends the query with
    /// status Cancel; anything else ends it too and is handed back to the loop.
    async fn interrupted(
        &mut self,
        query: &Command,
        context: u8,
        pdu: Pdu,
        sent: usize,
    ) -> Result<Option<Pdu>, Failure> {
        let cancels = match &pdu {
            Pdu::PData { data } => data.iter().any(|value| {
                value.value_type == PDataValueType::Command
                    && read_command(&value.data).is_ok_and(|c| {
                        c.field == C_CANCEL_RQ && c.responding_to == query.message_id
                    })
            }),
            _ => false,
        };
        if !cancels {
            return Ok(Some(pdu));
        }
        tracing::info!(peer = %self.peer, sent, "worklist query cancelled by the caller");
        let rsp = response(query, find::CANCELLED, None, false, vec![]);
        send_command(&mut self.association, context, &rsp).await?;
        Ok(None)
    }

    /// A PDU the peer has already sent, without waiting for one. Receiving is safe to stop
    /// midway: dicom-ul keeps what it has read in the association's buffer.
    async fn arrived_now(&mut self) -> Result<Option<Pdu>, Failure> {
        tokio::select! {
            biased;
            pdu = self.association.receive() => Ok(Some(pdu?)),
            _ = tokio::task::yield_now() => Ok(None),
        }
    }
}

/// Reads a query's identifier in its presentation context's transfer syntax, after the
/// structural check (size, lengths, nesting).
fn read_identifier(bytes: &[u8], transfer_syntax: &str) -> Result<InMemDicomObject, String> {
    let uid = transfer_syntax.trim_end_matches(['\0', ' ']);
    guard::check_query(bytes, guard::Encoding::of_transfer_syntax(uid))?;
    let ts = TransferSyntaxRegistry
        .get(uid)
        .ok_or_else(|| format!("unknown transfer syntax {uid}"))?;
    InMemDicomObject::read_dataset_with_ts(bytes, ts)
        .map_err(|e| format!("the identifier is not readable: {e}"))
}

fn status_for(
    outcome: &Result<Ingested, seldinger_store::StoreError>,
    sop: &str,
    peer: &std::net::SocketAddr,
) -> u16 {
    let status = dose_store_status(outcome, sop, peer);
    metrics::counter!("seldinger_dicom_dose_reports_total", "status" => format!("{status:04X}"))
        .increment(1);
    status
}

fn dose_store_status(
    outcome: &Result<Ingested, seldinger_store::StoreError>,
    sop: &str,
    peer: &std::net::SocketAddr,
) -> u16 {
    match outcome {
        Ok(Ingested::Stored { link, tasks, .. }) => {
            tracing::info!(%peer, %sop, ?link, follow_up_tasks = tasks.len(), "dose report stored");
            STATUS_SUCCESS
        }
        Ok(Ingested::AlreadyStored { .. }) => {
            tracing::info!(%peer, %sop, "dose report already stored; acknowledged");
            STATUS_SUCCESS
        }
        Ok(Ingested::Quarantined { reason }) => {
            tracing::warn!(%peer, %sop, %reason, "dose report quarantined");
            if reason.starts_with("not a radiation dose report") {
                STATUS_NOT_MATCHING_SOP_CLASS
            } else {
                STATUS_CANNOT_UNDERSTAND
            }
        }
        Err(error) => {
            tracing::error!(%peer, %sop, %error, "dose report not stored");
            STATUS_OUT_OF_RESOURCES
        }
    }
}

/// The TLS settings for the listener from PEM files: its certificate chain and key, and, when
/// `client_ca` is given, the CA whose certificates the modalities must present (mutual
/// authentication, as the BCP 195 profiles expect). TLS 1.2 and 1.3 only (rustls).
pub fn tls_config(
    cert_pem: &std::path::Path,
    key_pem: &std::path::Path,
    client_ca: Option<&std::path::Path>,
) -> Result<TlsSettings, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    // ring builds with only a C compiler; a second install (the web server's) is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let read_certs = |path: &std::path::Path| {
        CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("{}: no PEM certificates read ({e})", path.display()))
            .and_then(|certs| {
                if certs.is_empty() {
                    Err(format!("{}: no certificates in the file", path.display()))
                } else {
                    Ok(certs)
                }
            })
    };
    let chain = read_certs(cert_pem)?;
    let key = PrivateKeyDer::from_pem_file(key_pem)
        .map_err(|e| format!("{}: no PEM private key read ({e})", key_pem.display()))?;
    let builder = rustls::ServerConfig::builder();
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in read_certs(path)? {
                roots.add(cert).map_err(|e| {
                    format!("{}: not a usable CA certificate ({e})", path.display())
                })?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
                .build()
                .map_err(|e| format!("{}: {e}", path.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    builder
        .with_single_cert(chain, key)
        .map(Arc::new)
        .map_err(|e| {
            format!(
                "{}: the certificate and key do not go together ({e})",
                cert_pem.display()
            )
        })
}
