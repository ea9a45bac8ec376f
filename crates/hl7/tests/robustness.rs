//! Malformed input: arbitrary bytes and mangled real messages never panic the reader, the
//! mappers or the whole receive path, and each gets an answer (AR or AE, never silence); broken
//! frames and slow senders do not hang the listener.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
mod common;

use common::{app, config};
use seldinger_domain::DepartmentTime;
use seldinger_hl7::message::Received;
use seldinger_hl7::mllp::{self, Frame, ListenerConfig};
use seldinger_hl7::{adt, oru, Interface, Peer};
use seldinger_store::testing;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const GOOD: &[&str] = &[
    "MSH|^~\\&|PAS|GENHOSP|SELDINGER|IR|20261130090000||ADT^A01^ADT_A01|P2|P|2.5.1\rEVN|A01|20261130090000\rPID|1||M7001^^^GENHOSP^MR||Quill^Rowan^^^^^L||19580214|M\rPV1|1|I|WARD7||||||||||||||||V1|||||||||||||||||||||||||20261130084500\rOBX|1|NM|29463-7^Body weight^LN||81.4|kg|||||F\rAL1|1|DA|C-IOD^Iodinated contrast^L|SV|Anaphylaxis\r",
    "MSH|^~\\&|LAB|GENHOSP|SELDINGER|IR|20261130100000||ORU^R01^ORU_R01|L1|P|2.5.1\rPID|1||M7001^^^GENHOSP^MR\rOBR|1|PL|FL|COAG|||202611300915\rOBX|1|NM|6301-6^INR^LN||1.6|{INR}|||||F\rOBX|2|SN|777-3^PLT^LN||=^150|10*9/L|||||C\r",
];

/// A real message with some bytes replaced by delimiters, escapes, quotes or noise.
fn mangled() -> impl Strategy<Value = Vec<u8>> {
    let noise = prop::sample::select(vec![
        b'|', b'^', b'~', b'\\', b'&', b'\r', b'\n', b'"', 0x0B, 0x1C, 0xE9, 0xFF, b'X', b'0',
    ]);
    (
        prop::sample::select(GOOD.to_vec()),
        prop::collection::vec((any::<prop::sample::Index>(), noise), 1..12),
    )
        .prop_map(|(good, edits)| {
            let mut bytes = good.as_bytes().to_vec();
            for (at, byte) in edits {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
            bytes
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn the_reader_and_mappers_take_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        read_and_map(&bytes);
    }

    #[test]
    fn the_reader_and_mappers_take_mangled_messages(bytes in mangled()) {
        read_and_map(&bytes);
    }
}

fn read_and_map(bytes: &[u8]) {
    let time = DepartmentTime::parse("Europe/London").expect("zone");
    if let Ok(received) = Received::read(bytes) {
        let config = config();
        let _ = adt::read(&received, "A08", &config, &time);
        let _ = oru::read(
            &received,
            &config,
            &time,
            seldinger_store::testing::test_now(),
        );
    }
    let _ = seldinger_hl7::batch::split(bytes);
}

/// Every mangled message through the whole path gets an acknowledgement, and is kept (or, with
/// no sender to establish, counted).
#[tokio::test]
async fn every_mangled_message_is_answered_and_kept() {
    let db = testing::sqlite().await;
    let interface = Interface::new(app(db.store.clone()), config());
    let peer = Peer::connected(([127, 0, 0, 1], 9).into(), None);
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = mangled();
    let mut unestablished = 0i64;
    for _ in 0..300 {
        let bytes = strategy.new_tree(&mut runner).expect("a case").current();
        let answer = interface.receive(&bytes, &peer).await;
        assert!(
            matches!(answer.code, "AA" | "AE" | "AR"),
            "{:?}",
            String::from_utf8_lossy(&bytes)
        );
        let ack = hl7kit::Message::parse_lossy(&answer.ack).expect("an ACK that parses");
        assert_eq!(ack.get("MSA-1"), Some(answer.code));
        // Kept in the inbox; or, when no sender could be established from it, counted among
        // the refused arrivals with its head (it claims nothing in the inbox).
        assert!(
            answer.message_id.is_some() || !answer.established,
            "kept: {:?}",
            answer.reason
        );
        if !answer.established {
            unestablished += 1;
        }
    }
    let counted: i64 = db
        .store
        .refused_arrivals(100)
        .await
        .expect("refused arrivals")
        .iter()
        .map(|r| r.arrivals)
        .sum();
    assert_eq!(counted, unestablished);
}

#[tokio::test]
async fn frames_are_found_among_noise_and_oversized_ones_are_refused() {
    let mut input: &[u8] = b"\r\n\x0bMSH|a\x1c\r\x0bMSH|b\x1c\x0bMSH|0123456789\x1c\r";
    let second = Duration::from_secs(1);
    let mut frames = Vec::new();
    for _ in 0..4 {
        frames.push(
            mllp::read_frame(&mut input, 8, second, second)
                .await
                .expect("a frame"),
        );
    }
    assert_eq!(
        frames,
        [
            Frame::Message(b"MSH|a".to_vec()),
            Frame::Message(b"MSH|b".to_vec()),
            Frame::TooLarge {
                head: b"MSH|0123".to_vec(),
                length: 14
            },
            Frame::Closed
        ]
    );
}

/// A sender that stops halfway through a message is dropped after the read timeout; a broken
/// connection does not stop the listener serving the next sender.
#[tokio::test]
async fn a_slow_or_broken_sender_is_dropped_and_the_next_is_served() {
    let db = testing::sqlite().await;
    let interface = Arc::new(Interface::new(app(db.store.clone()), config()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let settings = ListenerConfig {
        read_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_secs(5),
        max_message_bytes: 64 * 1024,
        ..ListenerConfig::default()
    };
    tokio::spawn(mllp::serve(listener, settings, interface));

    let mut slow = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    slow.write_all(b"\x0bMSH|^~\\&|PAS|GENHOSP|")
        .await
        .expect("write");
    let mut buffer = [0u8; 16];
    let closed = tokio::time::timeout(Duration::from_secs(5), slow.read(&mut buffer))
        .await
        .expect("dropped before the test gives up");
    assert!(
        matches!(closed, Ok(0) | Err(_)),
        "the half message got no answer"
    );

    let mut broken = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    broken
        .write_all(b"\x0bnot hl7 at all\x1c\r")
        .await
        .expect("write");
    let mut answer = vec![0u8; 4096];
    let n = broken.read(&mut answer).await.expect("an answer");
    let text = String::from_utf8_lossy(&answer[..n]);
    assert!(text.contains("MSA|AR"), "{text}");

    let mut good = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    mllp::write_frame(&mut good, GOOD[0].as_bytes())
        .await
        .expect("send");
    let n = good.read(&mut answer).await.expect("an answer");
    assert!(String::from_utf8_lossy(&answer[..n]).contains("MSA|AA"));
}

/// Many connections at once, each several messages: all answered, in order per connection.
#[tokio::test]
async fn many_connections_at_once_are_each_answered_in_order() {
    let db = testing::sqlite().await;
    let interface = Arc::new(Interface::new(app(db.store.clone()), config()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(mllp::serve(listener, ListenerConfig::default(), interface));
    let mut senders = Vec::new();
    for connection in 0..24 {
        senders.push(tokio::spawn(async move {
            let mut stream = common::connect(address.port()).await;
            let mut acks = Vec::new();
            for n in 0..5 {
                let message = format!(
                    "MSH|^~\\&|PAS|GENHOSP|SELDINGER|IR|20261130090000||ADT^A08|C{connection}-{n}|P|2.5.1\rPID|1||M8{connection:03}^^^GENHOSP^MR||Many^Conn||19700101|U\r"
                );
                let (code, control, _) = common::exchange(&mut stream, message.as_bytes()).await;
                acks.push((code, control));
            }
            (connection, acks)
        }));
    }
    for sender in senders {
        let (connection, acks) = sender.await.expect("sender");
        for (n, (code, control)) in acks.iter().enumerate() {
            assert_eq!(code, "AA");
            assert_eq!(control, &format!("C{connection}-{n}"));
        }
    }
}
