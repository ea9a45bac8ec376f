//! A DICOM C-STORE listener (SCP) for radiation dose reports, on dicom-ul.
//!
//! It accepts the RDSR storage class (and Enhanced/Comprehensive SR, which some systems use for
//! the same template) plus Verification (C-ECHO), in explicit or implicit VR little endian. Each
//! report goes through [`Ingest`]; the C-STORE response says success only once the report is
//! committed to the database (PS3.4 B.2.3: a status of 0000 means the SCP has stored it).

use crate::guard::MAX_REPORT_BYTES;
use crate::ingest::{Ingest, Ingested};
use dicom_core::{dicom_value, DataElement, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::InMemDicomObject;
use dicom_ul::association::server::AsyncServerAssociation;
use dicom_ul::pdu::{PDataValue, PDataValueType};
use dicom_ul::Pdu;
use seldinger_domain::safety::SafetyReference;
use seldinger_store::Store;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

/// Abstract syntaxes accepted.
pub const ACCEPTED_SOP_CLASSES: &[&str] = &[
    uids::X_RAY_RADIATION_DOSE_SR_STORAGE,
    uids::ENHANCED_SR_STORAGE,
    uids::COMPREHENSIVE_SR_STORAGE,
    uids::VERIFICATION,
];

/// Transfer syntaxes accepted: the two the header check in `guard` walks.
pub const ACCEPTED_TRANSFER_SYNTAXES: &[&str] = &[
    uids::EXPLICIT_VR_LITTLE_ENDIAN,
    uids::IMPLICIT_VR_LITTLE_ENDIAN,
];

// DIMSE command fields and statuses (PS3.7 §9.3, PS3.4 Annex B.2.3).
const C_STORE_RQ: u16 = 0x0001;
const C_STORE_RSP: u16 = 0x8001;
const C_ECHO_RQ: u16 = 0x0030;
const C_ECHO_RSP: u16 = 0x8030;
const NO_DATA_SET: u16 = 0x0101;
const STATUS_SUCCESS: u16 = 0x0000;
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

/// Serves associations from `listener` until the task is dropped.
pub async fn serve(
    listener: TcpListener,
    config: ScpConfig,
    store: Store,
    reference: Arc<SafetyReference>,
) -> std::io::Result<()> {
    let config = Arc::new(config);
    loop {
        let (socket, peer) = listener.accept().await?;
        let (config, store, reference) = (config.clone(), store.clone(), reference.clone());
        tokio::spawn(async move {
            if let Err(error) = association(socket, &config, &store, &reference).await {
                tracing::warn!(%peer, %error, "DICOM association ended with an error");
            }
        });
    }
}

async fn association(
    socket: TcpStream,
    config: &ScpConfig,
    store: &Store,
    reference: &SafetyReference,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let peer = socket.peer_addr()?;
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
            receive_reports(association, peer, store, reference).await
        }
        None => {
            let association = options.establish_async(socket).await?;
            receive_reports(association, peer, store, reference).await
        }
    }
}

/// Answers echoes and stores reports on an established association, plain or TLS.
async fn receive_reports<S>(
    mut association: AsyncServerAssociation<S>,
    peer: std::net::SocketAddr,
    store: &Store,
    reference: &SafetyReference,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    let calling = dicom_ul::association::Association::peer_ae_title(&association).to_string();
    tracing::info!(%peer, calling_ae = %calling, "DICOM association accepted");
    let source = format!("C-STORE from {calling} at {peer}");
    let ingest = Ingest { store, reference };
    let mut pending: Option<StoreRequest> = None;
    let mut data: Vec<u8> = Vec::new();
    let mut oversize = false;
    loop {
        let pdu = match association.receive().await {
            Ok(pdu) => pdu,
            Err(error) => {
                tracing::info!(%peer, %error, "DICOM association closed");
                return Ok(());
            }
        };
        match pdu {
            Pdu::PData { data: values } => {
                for value in values {
                    match value.value_type {
                        PDataValueType::Command => {
                            if !value.is_last {
                                return Err("command fragments are not supported".into());
                            }
                            let command = read_command(&value.data)?;
                            match command.field {
                                C_ECHO_RQ => {
                                    let rsp = echo_response(command.message_id);
                                    send_command(
                                        &mut association,
                                        value.presentation_context_id,
                                        &rsp,
                                    )
                                    .await?;
                                }
                                C_STORE_RQ => {
                                    pending = Some(command);
                                    data.clear();
                                    oversize = false;
                                }
                                other => {
                                    tracing::warn!(%peer, command = other, "unsupported DIMSE command; aborting");
                                    association.abort().await?;
                                    return Ok(());
                                }
                            }
                        }
                        PDataValueType::Data => {
                            if data.len() + value.data.len() > MAX_REPORT_BYTES {
                                oversize = true;
                                data.clear();
                            } else if !oversize {
                                data.extend_from_slice(&value.data);
                            }
                            if !value.is_last {
                                continue;
                            }
                            let Some(request) = pending.take() else {
                                return Err("a data set arrived without a C-STORE request".into());
                            };
                            let transfer_syntax = association
                                .presentation_contexts()
                                .iter()
                                .find(|pc| pc.id == value.presentation_context_id)
                                .map(|pc| pc.transfer_syntax.clone())
                                .ok_or("data on a presentation context never negotiated")?;
                            let status = if oversize {
                                tracing::warn!(%peer, sop = %request.sop_instance_uid, "refused: larger than any dose report");
                                STATUS_OUT_OF_RESOURCES
                            } else {
                                let outcome = ingest
                                    .dataset(&data, &transfer_syntax, &source, chrono::Utc::now())
                                    .await;
                                status_for(&outcome, &request.sop_instance_uid, &peer)
                            };
                            data.clear();
                            let rsp = store_response(&request, status);
                            send_command(&mut association, value.presentation_context_id, &rsp)
                                .await?;
                        }
                    }
                }
            }
            Pdu::ReleaseRQ => {
                association.send(&Pdu::ReleaseRP).await?;
                tracing::info!(%peer, "DICOM association released");
                return Ok(());
            }
            Pdu::AbortRQ { .. } => {
                tracing::info!(%peer, "DICOM association aborted by the peer");
                return Ok(());
            }
            _ => {}
        }
    }
}

fn status_for(
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

struct StoreRequest {
    field: u16,
    message_id: u16,
    sop_class_uid: String,
    sop_instance_uid: String,
}

fn command_ts() -> dicom_encoding::TransferSyntax {
    // Commands are always implicit VR little endian (PS3.7 §6.3.1).
    dicom_transfer_syntax_registry::entries::IMPLICIT_VR_LITTLE_ENDIAN.erased()
}

fn read_command(bytes: &[u8]) -> Result<StoreRequest, Box<dyn std::error::Error + Send + Sync>> {
    let obj = InMemDicomObject::read_dataset_with_ts(bytes, &command_ts())?;
    let uint = |tag| -> Result<u16, Box<dyn std::error::Error + Send + Sync>> {
        Ok(obj.element(tag)?.uint16()?)
    };
    let text = |tag| {
        obj.element(tag)
            .ok()
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim_end_matches(['\0', ' ']).to_string())
            .unwrap_or_default()
    };
    Ok(StoreRequest {
        field: uint(tags::COMMAND_FIELD)?,
        message_id: uint(tags::MESSAGE_ID)?,
        sop_class_uid: text(tags::AFFECTED_SOP_CLASS_UID),
        sop_instance_uid: text(tags::AFFECTED_SOP_INSTANCE_UID),
    })
}

fn store_response(request: &StoreRequest, status: u16) -> InMemDicomObject {
    InMemDicomObject::command_from_element_iter([
        DataElement::new(
            tags::AFFECTED_SOP_CLASS_UID,
            VR::UI,
            dicom_value!(Str, request.sop_class_uid.as_str()),
        ),
        DataElement::new(
            tags::COMMAND_FIELD,
            VR::US,
            dicom_value!(U16, [C_STORE_RSP]),
        ),
        DataElement::new(
            tags::MESSAGE_ID_BEING_RESPONDED_TO,
            VR::US,
            dicom_value!(U16, [request.message_id]),
        ),
        DataElement::new(
            tags::COMMAND_DATA_SET_TYPE,
            VR::US,
            dicom_value!(U16, [NO_DATA_SET]),
        ),
        DataElement::new(tags::STATUS, VR::US, dicom_value!(U16, [status])),
        DataElement::new(
            tags::AFFECTED_SOP_INSTANCE_UID,
            VR::UI,
            dicom_value!(Str, request.sop_instance_uid.as_str()),
        ),
    ])
}

fn echo_response(message_id: u16) -> InMemDicomObject {
    InMemDicomObject::command_from_element_iter([
        DataElement::new(
            tags::AFFECTED_SOP_CLASS_UID,
            VR::UI,
            dicom_value!(Str, uids::VERIFICATION),
        ),
        DataElement::new(tags::COMMAND_FIELD, VR::US, dicom_value!(U16, [C_ECHO_RSP])),
        DataElement::new(
            tags::MESSAGE_ID_BEING_RESPONDED_TO,
            VR::US,
            dicom_value!(U16, [message_id]),
        ),
        DataElement::new(
            tags::COMMAND_DATA_SET_TYPE,
            VR::US,
            dicom_value!(U16, [NO_DATA_SET]),
        ),
        DataElement::new(tags::STATUS, VR::US, dicom_value!(U16, [STATUS_SUCCESS])),
    ])
}

async fn send_command<S>(
    association: &mut AsyncServerAssociation<S>,
    presentation_context_id: u8,
    command: &InMemDicomObject,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    let mut bytes = Vec::new();
    command.write_dataset_with_ts(&mut bytes, &command_ts())?;
    association
        .send(&Pdu::PData {
            data: vec![PDataValue {
                presentation_context_id,
                value_type: PDataValueType::Command,
                is_last: true,
                data: bytes,
            }],
        })
        .await?;
    Ok(())
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
