//! What the HL7 crate's tests and benchmark share: the application on a test store with the
//! shipped catalogue and thresholds, and the interface with the demo interface file.
#![allow(dead_code)] // each test binary uses its own part

use seldinger_app::{App, StartedClock};
use seldinger_domain::safety::SafetyReference;
use seldinger_domain::DepartmentTime;
use seldinger_hl7::{Interface, InterfaceConfig, DEMO_INTERFACE};
use seldinger_store::{testing, Store};
use std::sync::Arc;

/// The department's application on `store`, its wall clock in Europe/London.
pub fn app(store: Store) -> App {
    let safety = SafetyReference::parse(
        include_str!("../../../../catalog/safety-thresholds.toml"),
        "safety-thresholds.toml",
    )
    .expect("shipped thresholds");
    let mut app = App::new(
        store,
        testing::records::catalogue(),
        safety,
        Arc::new(StartedClock::new(testing::test_now())),
    );
    app.time = DepartmentTime::parse("Europe/London").expect("zone");
    app
}

pub fn config() -> InterfaceConfig {
    InterfaceConfig::parse(DEMO_INTERFACE, "demo").expect("demo interface file")
}

/// The HL7 interface on `store` with the demo interface file.
pub fn interface(store: Store) -> Arc<Interface> {
    Arc::new(Interface::new(app(store), config()))
}

/// A client's MLLP connection to a listener on this machine.
pub type Connection = tokio::io::BufReader<tokio::net::TcpStream>;

pub async fn connect(port: u16) -> Connection {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    tokio::io::BufReader::new(stream)
}

/// Sends one message and waits for its answer: `(MSA-1, MSA-2, the answer as sent)`.
pub async fn exchange(connection: &mut Connection, message: &[u8]) -> (String, String, Vec<u8>) {
    use seldinger_hl7::mllp::{self, Frame};
    use std::time::Duration;
    mllp::write_frame(connection.get_mut(), message)
        .await
        .expect("send");
    let frame = mllp::read_frame(
        connection,
        1 << 20,
        Duration::from_secs(60),
        Duration::from_secs(60),
    )
    .await
    .expect("an answer");
    let Frame::Message(ack) = frame else {
        panic!("no answer")
    };
    let parsed = hl7kit::Message::parse_lossy(&ack).expect("ACK");
    let field = |path: &str| parsed.get(path).unwrap_or("").to_string();
    (field("MSA-1"), field("MSA-2"), ack)
}
