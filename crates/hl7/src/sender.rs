//! Sends one destination's outbox over MLLP: oldest first (so each patient's messages arrive in
//! the order their changes were made), each rendered once and kept before its first try (every
//! retry carries the same MSH-10, which the receiver's duplicate check knows), and marked sent
//! only when the receiver's ACK for that control id says AA or CA. No answer — the receiver
//! down, the connection lost, no ACK in time — and the destination waits, twice as long each
//! time up to a limit, then goes on from the same message; a restart goes on from the table.
//! An AE or AR is the receiver's refusal: the message is kept as rejected, with the answer, for
//! the administrator to send again, and the queue goes on.
//!
//! With several nodes on one database each runs a sender per destination, and only the one
//! holding the destination's lease (a row in the database, renewed before each message and
//! given up when the queue is empty) sends: each message goes out from one node, in order. A
//! node that dies mid-send hands on when its lease lapses (`SenderConfig::lease`); were it
//! only stalled past that, the other node would send the same rendering, whose control id the
//! receiver's duplicate check knows.

use crate::config::{Destination, InterfaceConfig};
use crate::message::Received;
use crate::mllp::{read_frame, write_frame, Frame};
use crate::outbound::{render, Context, Rendered};
use seldinger_app::{App, CaseNotice};
use seldinger_store::{OutboundMessage, OutboxStatus};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::BufReader;
use tokio::net::TcpStream;
use tokio::sync::Notify;

/// How patient the sender is.
#[derive(Debug, Clone)]
pub struct SenderConfig {
    pub connect_timeout: Duration,
    /// How long to wait for the ACK of a message sent.
    pub ack_timeout: Duration,
    /// The first wait after a try with no answer; doubled each time, up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// How often to look at the table when nothing wakes the sender (a message owed by
    /// another node, or sent again while this one was busy).
    pub poll: Duration,
    /// The largest ACK read.
    pub max_ack_bytes: usize,
    /// How long a sender's hold on its destination lasts unless renewed (before each message
    /// and each wait). Longer than one exchange can take (connecting plus waiting for the ACK),
    /// so a holder's lease cannot lapse mid-send; a node that dies hands on after at most this.
    pub lease: Duration,
    /// Who holds the lease: the node's name, the same after its restart, so a node killed while
    /// sending takes its destinations back at once instead of waiting out its own lease.
    pub node: String,
}

impl Default for SenderConfig {
    fn default() -> Self {
        SenderConfig {
            connect_timeout: Duration::from_secs(10),
            ack_timeout: Duration::from_secs(30),
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            poll: Duration::from_secs(5),
            max_ack_bytes: 1 << 20,
            lease: Duration::from_secs(80),
            node: format!("pid {}", std::process::id()),
        }
    }
}

/// How one try ended.
enum Tried {
    /// The receiver answered this message: AA/CA, or a refusal with its reason.
    Answered {
        accepted: bool,
        ack: String,
        reason: Option<String>,
    },
    /// No usable answer: try again later.
    NoAnswer(String),
}

/// A byte stream to a destination: TCP, or TLS over it.
trait Link: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Link for T {}

/// The open connection to a destination, if any.
type Connection = BufReader<Box<dyn Link>>;

/// The TLS client settings for a destination that names a CA (and, for mutual TLS, this end's
/// certificate); none for plain MLLP. Read at start, so a bad file stops the server with why.
pub fn tls_client(
    destination: &Destination,
) -> Result<Option<Arc<tokio_rustls::rustls::ClientConfig>>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let Some(ca) = &destination.tls_ca else {
        return Ok(None);
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let at = |path: &std::path::Path, e: &dyn std::fmt::Display| {
        format!("destination {}: {}: {e}", destination.name, path.display())
    };
    let certs = |path: &std::path::Path| {
        CertificateDer::pem_file_iter(path)
            .and_then(|c| c.collect::<Result<Vec<_>, _>>())
            .map_err(|e| at(path, &e))
            .and_then(|c| {
                if c.is_empty() {
                    Err(at(path, &"no PEM certificates in the file"))
                } else {
                    Ok(c)
                }
            })
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs(ca)? {
        roots.add(cert).map_err(|e| at(ca, &e))?;
    }
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
    let config = match &destination.tls_client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder
            .with_client_auth_cert(
                certs(cert)?,
                PrivateKeyDer::from_pem_file(key).map_err(|e| at(key, &e))?,
            )
            .map_err(|e| at(key, &e))?,
    };
    Ok(Some(Arc::new(config)))
}

/// Sends `destination`'s outbox until the task is dropped. `wake` is notified when a commit owes
/// messages.
pub async fn run(
    app: App,
    config: Arc<InterfaceConfig>,
    destination: Destination,
    tls: Option<Arc<tokio_rustls::rustls::ClientConfig>>,
    wake: Arc<Notify>,
    settings: SenderConfig,
) {
    let Some(address) = destination.address.clone() else {
        tracing::error!(destination = %destination.name, "no address: nothing is sent");
        return;
    };
    let mut backoff = settings.min_backoff;
    let mut connection: Option<Connection> = None;
    // With two nodes on one database, only the holder of the destination's lease sends.
    let holder = settings.node.clone();
    let lease = Lease {
        app: &app,
        destination: &destination.name,
        holder: &holder,
        length: settings.lease,
    };
    loop {
        match lease.hold(Duration::ZERO).await {
            Ok(true) => {}
            Ok(false) => {
                // Another sender has the destination; it finds what this node's changes owe.
                connection = None;
                let _ = tokio::time::timeout(settings.poll, wake.notified()).await;
                continue;
            }
            Err(e) => {
                tracing::warn!(destination = %destination.name, error = %e, "holding the destination");
                tokio::time::sleep(backoff).await;
                continue;
            }
        }
        let owed = match app.owed_messages(&destination.name, 100).await {
            Ok(owed) => owed,
            Err(e) => {
                tracing::warn!(destination = %destination.name, error = %e, "reading the outbox");
                tokio::time::sleep(backoff).await;
                continue;
            }
        };
        if owed.is_empty() {
            // Drop an idle connection rather than hold it open for the next change, and the
            // lease, so the node whose change owes the next message sends it at once.
            connection = None;
            if let Err(e) = app.release_sending_lease(&destination.name, &holder).await {
                tracing::warn!(destination = %destination.name, error = %e, "releasing the destination");
            }
            let _ = tokio::time::timeout(settings.poll, wake.notified()).await;
            continue;
        }
        let mut stalled = None;
        for (index, message) in owed.iter().enumerate() {
            // Held through the previous message: renewed, or given up if another sender took it.
            if index > 0 && !matches!(lease.hold(Duration::ZERO).await, Ok(true)) {
                connection = None;
                break;
            }
            match send_one(
                &app,
                &config,
                &destination,
                (&address, tls.as_ref()),
                message,
                &mut connection,
                &settings,
            )
            .await
            {
                Ok(()) => backoff = settings.min_backoff,
                Err(error) => {
                    stalled = Some((message.owed.id.clone(), error));
                    break;
                }
            }
        }
        if let Some((id, error)) = stalled {
            connection = None;
            let next = app.clock.now()
                + chrono::Duration::from_std(backoff).unwrap_or(chrono::Duration::seconds(1));
            tracing::warn!(destination = %destination.name, %error, wait = ?backoff, "no answer");
            if let Err(e) = app.retry_outbound(&id, &error, next).await {
                tracing::warn!(destination = %destination.name, error = %e, "recording a retry");
            }
            // Kept through the wait, so another node does not try at once and undo the backoff.
            let _ = lease.hold(backoff).await;
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(settings.max_backoff);
        }
    }
}

/// A sender's hold on its destination.
struct Lease<'a> {
    app: &'a App,
    destination: &'a str,
    holder: &'a str,
    length: Duration,
}

impl Lease<'_> {
    /// Takes or renews the lease for its length beyond `extra`; false while another holds it.
    async fn hold(&self, extra: Duration) -> Result<bool, seldinger_app::AppError> {
        let now = self.app.clock.now();
        let until = now
            + chrono::Duration::from_std(self.length + extra)
                .unwrap_or(chrono::Duration::seconds(80));
        self.app
            .hold_sending_lease(self.destination, self.holder, now, until)
            .await
    }
}

/// Renders (once), sends and records one message. Err: no answer, to be tried again.
async fn send_one(
    app: &App,
    config: &InterfaceConfig,
    destination: &Destination,
    to: (&str, Option<&Arc<tokio_rustls::rustls::ClientConfig>>),
    message: &OutboundMessage,
    connection: &mut Option<Connection>,
    settings: &SenderConfig,
) -> Result<(), String> {
    let store_error = |e: seldinger_app::AppError| e.to_string();
    let (control_id, text) = match (&message.control_id, &message.message) {
        (Some(control_id), Some(text)) => (control_id.clone(), text.clone()),
        _ => {
            let notice: CaseNotice = match serde_json::from_str(&message.owed.payload) {
                Ok(notice) => notice,
                Err(e) => {
                    let reason = format!("the stored notice could not be read: {e}");
                    return app
                        .finish_outbound(
                            &message.owed.id,
                            OutboxStatus::Rejected,
                            None,
                            Some(&reason),
                        )
                        .await
                        .map_err(store_error);
                }
            };
            // Unique per rendering (a message sent again is a new message to the receiver's
            // duplicate check) and at most 20 characters (MSH-10 is ST 20 in v2.3.1).
            let control_id = format!(
                "SD{}-{:08X}",
                message.seq,
                uuid::Uuid::new_v4().as_u128() as u32
            );
            let cx = Context {
                config,
                destination,
                control_id: &control_id,
                now: app.clock.now(),
                time: &app.time,
            };
            match render(&notice, &cx) {
                Rendered::Skip(reason) => {
                    return app
                        .finish_outbound(
                            &message.owed.id,
                            OutboxStatus::Skipped,
                            None,
                            Some(&reason),
                        )
                        .await
                        .map_err(store_error);
                }
                Rendered::Message { text, .. } => app
                    .keep_rendered(&message.owed.id, &control_id, &text)
                    .await
                    .map_err(store_error)?,
            }
        }
    };
    match exchange(to, &text, &control_id, connection, settings).await {
        Tried::Answered {
            accepted: true,
            ack,
            ..
        } => app
            .finish_outbound(&message.owed.id, OutboxStatus::Sent, Some(&ack), None)
            .await
            .map_err(store_error),
        Tried::Answered { ack, reason, .. } => {
            tracing::warn!(destination = %destination.name, id = %message.owed.id, "refused");
            app.finish_outbound(
                &message.owed.id,
                OutboxStatus::Rejected,
                Some(&ack),
                reason.as_deref(),
            )
            .await
            .map_err(store_error)
        }
        Tried::NoAnswer(error) => {
            *connection = None;
            Err(error)
        }
    }
}

/// Sends `text` on the open connection (opening one if none) and reads the answer to it.
async fn exchange(
    (address, tls): (&str, Option<&Arc<tokio_rustls::rustls::ClientConfig>>),
    text: &str,
    control_id: &str,
    connection: &mut Option<Connection>,
    settings: &SenderConfig,
) -> Tried {
    if connection.is_none() {
        match tokio::time::timeout(settings.connect_timeout, connect(address, tls)).await {
            Ok(Ok(stream)) => *connection = Some(BufReader::new(stream)),
            Ok(Err(e)) => return Tried::NoAnswer(format!("connecting to {address}: {e}")),
            Err(_) => return Tried::NoAnswer(format!("connecting to {address}: timed out")),
        }
    }
    let Some(stream) = connection.as_mut() else {
        return Tried::NoAnswer("no connection".into());
    };
    if let Err(e) = write_frame(stream.get_mut(), text.as_bytes()).await {
        return Tried::NoAnswer(format!("sending: {e}"));
    }
    // An answer to an earlier message (one whose ACK came late) is read past.
    loop {
        let frame = read_frame(
            stream,
            settings.max_ack_bytes,
            settings.ack_timeout,
            settings.ack_timeout,
        )
        .await;
        let bytes = match frame {
            Ok(Frame::Message(bytes)) => bytes,
            Ok(Frame::Closed) => {
                return Tried::NoAnswer(
                    "the receiver closed the connection without an answer".into(),
                )
            }
            Ok(Frame::TooLarge { length, .. }) => {
                return Tried::NoAnswer(format!("the answer was {length} bytes, over the limit"))
            }
            Err(e) => return Tried::NoAnswer(format!("waiting for the ACK: {e}")),
        };
        match read_ack(&bytes) {
            Some((code, answered, reason)) if answered == control_id => {
                let ack = String::from_utf8_lossy(&bytes).into_owned();
                let accepted = matches!(code.as_str(), "AA" | "CA");
                return Tried::Answered {
                    accepted,
                    ack,
                    reason: (!accepted).then(|| {
                        format!(
                            "{code}{}",
                            reason.map(|r| format!(": {r}")).unwrap_or_default()
                        )
                    }),
                };
            }
            Some(_) => continue,
            None => {
                return Tried::NoAnswer(format!(
                    "the answer is not an acknowledgement: {}",
                    String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
                ))
            }
        }
    }
}

/// A connection to `address`, over TLS when the destination has it (the server's certificate
/// checked against its CA and the address's host name or IP).
async fn connect(
    address: &str,
    tls: Option<&Arc<tokio_rustls::rustls::ClientConfig>>,
) -> std::io::Result<Box<dyn Link>> {
    let stream = TcpStream::connect(address).await?;
    let _ = stream.set_nodelay(true);
    let Some(tls) = tls else {
        return Ok(Box::new(stream));
    };
    let host = address
        .rsplit_once(':')
        .map_or(address, |(host, _)| host)
        .trim_start_matches('[')
        .trim_end_matches(']');
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let stream = tokio_rustls::TlsConnector::from(tls.clone())
        .connect(name, stream)
        .await?;
    Ok(Box::new(stream))
}

/// MSA-1, MSA-2 and the refusal's words (ERR-8, else MSA-3, else ERR-3's text).
fn read_ack(bytes: &[u8]) -> Option<(String, String, Option<String>)> {
    let received = Received::read(bytes).ok()?;
    let msa = received.segment("MSA")?;
    let code = msa.get(1, 1).text()?.trim().to_ascii_uppercase();
    let answered = msa.get(2, 1).text().unwrap_or_default().trim().to_string();
    let err = received.segment("ERR");
    let reason = err
        .as_ref()
        .and_then(|e| e.get(8, 1).text().map(str::to_string))
        .or_else(|| msa.get(3, 1).text().map(str::to_string))
        .or_else(|| {
            err.as_ref()
                .and_then(|e| e.get(3, 2).text().map(str::to_string))
        })
        .filter(|r| !r.trim().is_empty());
    Some((code, answered, reason))
}
