//! The MLLP listener (HL7 v2 Minimal Lower Layer Protocol, release 2): each message framed as
//! VT (0x0B) … FS CR (0x1C 0x0D), several per connection, each answered before the next is read.
//! Bytes outside a frame are skipped; a frame larger than the limit is read to its end and
//! refused; a silent peer is dropped after the idle or read timeout.

use crate::applier::Appliers;
use crate::inbound::{Interface, Peer};
use crate::trust::PeerCertificate;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

pub const START_BLOCK: u8 = 0x0B;
pub const END_BLOCK: u8 = 0x1C;
pub const CARRIAGE_RETURN: u8 = 0x0D;

/// How the listener treats its peers.
#[derive(Clone)]
pub struct ListenerConfig {
    /// The largest message accepted, in bytes; a larger one is refused (AR) and kept truncated.
    pub max_message_bytes: usize,
    /// A connection with no message started for this long is closed.
    pub idle_timeout: Duration,
    /// A message whose bytes stop arriving for this long is abandoned and the connection closed.
    pub read_timeout: Duration,
    /// Connections served at once; one more is closed as it is accepted.
    pub max_connections: usize,
    /// Connections served at once from one address: one host cannot take every slot.
    pub max_connections_per_address: usize,
    /// A connection that has not yet sent a message from an established sender (listed, from
    /// its address, with its certificate) is closed after this long without one.
    pub first_message_timeout: Duration,
    /// MLLP over TLS (and mutual TLS when the configuration verifies clients).
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl Default for ListenerConfig {
    fn default() -> Self {
        ListenerConfig {
            max_message_bytes: 8 * 1024 * 1024,
            idle_timeout: Duration::from_secs(600),
            read_timeout: Duration::from_secs(30),
            max_connections: 256,
            max_connections_per_address: 32,
            first_message_timeout: Duration::from_secs(10),
            tls: None,
        }
    }
}

/// What reading one frame found.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    Message(Vec<u8>),
    /// Over the limit: the first `max` bytes, and how many there were.
    TooLarge {
        head: Vec<u8>,
        length: usize,
    },
    /// The peer closed the connection between messages.
    Closed,
}

/// Reads the next framed message. Bytes before the start block are skipped (a sender's stray
/// newline); the end is FS followed by CR (an FS alone is taken as the end too, as many senders
/// omit the CR, and the CR if it follows is skipped with the next frame's lead-in).
pub async fn read_frame<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    max: usize,
    idle_timeout: Duration,
    read_timeout: Duration,
) -> std::io::Result<Frame> {
    // Scanned a buffer at a time (not a byte, with its own timer, at a time): the timeouts
    // bound the wait for the next bytes, as before.
    loop {
        let buffered = tokio::time::timeout(idle_timeout, reader.fill_buf())
            .await
            .map_err(|_| timed_out("no message started"))??;
        if buffered.is_empty() {
            return Ok(Frame::Closed);
        }
        match buffered.iter().position(|&b| b == START_BLOCK) {
            Some(at) => {
                reader.consume(at + 1);
                break;
            }
            None => {
                let skipped = buffered.len();
                reader.consume(skipped);
            }
        }
    }
    let mut message = Vec::new();
    let mut length = 0usize;
    loop {
        let buffered = tokio::time::timeout(read_timeout, reader.fill_buf())
            .await
            .map_err(|_| timed_out("the message stopped arriving"))??;
        if buffered.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the connection closed inside a message (no end block)",
            ));
        }
        let stop = buffered
            .iter()
            .position(|&b| b == END_BLOCK || b == START_BLOCK);
        let content = stop.unwrap_or(buffered.len());
        let room = max.saturating_sub(message.len());
        message.extend_from_slice(&buffered[..content.min(room)]);
        length += content;
        match stop {
            Some(at) => {
                let ended = buffered[at] == END_BLOCK;
                reader.consume(at + 1);
                if ended {
                    break;
                }
                // A start block inside a frame: the previous one was never ended; start again.
                message.clear();
                length = 0;
            }
            None => reader.consume(content),
        }
    }
    if length > max {
        Ok(Frame::TooLarge {
            head: message,
            length,
        })
    } else {
        Ok(Frame::Message(message))
    }
}

fn timed_out(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, what.to_string())
}

/// Writes one framed message.
pub async fn write_frame<W: AsyncWrite + Unpin>(
    writer: &mut W,
    payload: &[u8],
) -> std::io::Result<()> {
    let mut framed = Vec::with_capacity(payload.len() + 3);
    framed.push(START_BLOCK);
    framed.extend_from_slice(payload);
    framed.extend_from_slice(&[END_BLOCK, CARRIAGE_RETURN]);
    writer.write_all(&framed).await?;
    writer.flush().await
}

/// Serves connections from `listener` until the task is dropped. A connection from an address
/// no sender lists is closed as it is accepted, as is one over the listener's or its address's
/// limit (a sender connects again later); nothing is read from them.
pub async fn serve(
    listener: TcpListener,
    config: ListenerConfig,
    interface: Arc<Interface>,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let per_address = PerAddress::default();
    let allowed = interface.config().sender_addresses();
    let acceptor = config.tls.clone().map(tokio_rustls::TlsAcceptor::from);
    let config = Arc::new(config);
    let appliers = Appliers::start(interface);
    loop {
        let (socket, address) = listener.accept().await?;
        let ip = address.ip().to_canonical();
        let refused = |reason: &'static str| {
            metrics::counter!("seldinger_hl7_connections_refused_total", "reason" => reason)
                .increment(1);
            tracing::warn!(peer = %address, reason, "MLLP connection closed at accept");
        };
        if allowed.as_ref().is_some_and(|a| !a.contains(&ip)) {
            refused("address");
            continue;
        }
        let Some(held) = per_address.take(ip, config.max_connections_per_address) else {
            refused("per_address_limit");
            continue;
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            refused("listener_limit");
            continue;
        };
        let _ = socket.set_nodelay(true);
        let (appliers, config, acceptor) = (appliers.clone(), config.clone(), acceptor.clone());
        tokio::spawn(async move {
            let open = metrics::gauge!("seldinger_hl7_connections_open");
            open.increment(1.0);
            let handshake = config.first_message_timeout.min(config.read_timeout);
            let result = match acceptor {
                Some(acceptor) => {
                    match tokio::time::timeout(handshake, acceptor.accept(socket)).await {
                        Ok(Ok(stream)) => {
                            let certificate = stream
                                .get_ref()
                                .1
                                .peer_certificates()
                                .and_then(|chain| chain.first())
                                .map(|der| PeerCertificate::read(der.as_ref()));
                            let peer = Peer::connected(address, certificate);
                            connection(stream, peer, &config, &appliers).await
                        }
                        Ok(Err(e)) => Err(e),
                        Err(_) => Err(timed_out("TLS handshake")),
                    }
                }
                None => {
                    connection(socket, Peer::connected(address, None), &config, &appliers).await
                }
            };
            open.decrement(1.0);
            let outcome = match result {
                Ok(()) => "completed",
                Err(error) => {
                    tracing::warn!(peer = %address, %error, "MLLP connection ended with an error");
                    "error"
                }
            };
            metrics::counter!("seldinger_hl7_connections_total", "outcome" => outcome).increment(1);
            drop((permit, held));
        });
    }
}

/// Connections open per address.
#[derive(Clone, Default)]
struct PerAddress(Arc<std::sync::Mutex<std::collections::HashMap<IpAddr, usize>>>);

/// One open connection of an address; given back when dropped.
struct Held {
    counts: PerAddress,
    ip: IpAddr,
}

impl PerAddress {
    fn take(&self, ip: IpAddr, most: usize) -> Option<Held> {
        let mut counts = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let open = counts.entry(ip).or_insert(0);
        if *open >= most.max(1) {
            return None;
        }
        *open += 1;
        Some(Held {
            counts: self.clone(),
            ip,
        })
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut counts = self.counts.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(open) = counts.get_mut(&self.ip) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

async fn connection<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    peer: Peer,
    config: &ListenerConfig,
    appliers: &Appliers,
) -> std::io::Result<()> {
    let (reader, mut writer) = tokio::io::split(stream);
    let mut reader = BufReader::new(reader);
    // Until a message's sender is established, the connection has the short timeout.
    let mut established = false;
    loop {
        let waiting = if established {
            config.idle_timeout
        } else {
            config.first_message_timeout
        };
        let frame = read_frame(
            &mut reader,
            config.max_message_bytes,
            waiting,
            config.read_timeout,
        )
        .await?;
        let answer = match frame {
            Frame::Closed => return Ok(()),
            Frame::Message(bytes) => appliers.receive(bytes, &peer).await,
            Frame::TooLarge { head, length } => {
                appliers
                    .too_large(head, length, config.max_message_bytes, &peer)
                    .await
            }
        };
        established |= answer.established;
        metrics::counter!("seldinger_hl7_messages_total", "ack" => answer.code).increment(1);
        write_frame(&mut writer, &answer.ack).await?;
    }
}
