//! What the binary's tests share: a real `seldinger` process on a free port, and the CLI.
#![allow(dead_code)] // each test binary uses its own part

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_seldinger");
pub const DEMO_PASSWORD: &str = "seldinger-demo";

/// A client signed in as a demo user at `base` (…/api/v1), its session in a cookie jar: good
/// for every node on the same host.
pub async fn signed_in(base: &str, user: &str) -> ::reqwest::Client {
    let client = ::reqwest::Client::builder()
        .cookie_store(true)
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    let answer = client
        .post(format!("{base}/session"))
        .json(&serde_json::json!({"username": user, "password": DEMO_PASSWORD}))
        .send()
        .await
        .expect("sign in");
    assert_eq!(answer.status(), 201, "{user} signs in at {base}");
    client
}

/// A `seldinger` command on the tests' clock (`SELDINGER_CLOCK`: the time the test believes it
/// is), so what it answers never depends on the day or hour the suite runs.
pub fn seldinger() -> Command {
    let mut command = Command::new(BIN);
    command.env("SELDINGER_CLOCK", test_now().to_rfc3339());
    command
}

/// The tests' clock now (see `seldinger_store::testing::test_clock`).
pub fn test_now() -> chrono::DateTime<chrono::Utc> {
    seldinger_store::testing::test_now()
}

/// The department's day by the tests' clock (the demo's and the servers' today; UTC).
pub fn test_today() -> chrono::NaiveDate {
    test_now().date_naive()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Kills the process as a power cut or the OOM killer would: no chance to finish anything.
pub fn kill9(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

pub struct Server {
    pub child: Child,
    pub base: String,
}

impl Server {
    pub fn start(args: &[&str], data_dir: &Path) -> Server {
        Server::start_with_database(args, data_dir, None)
    }

    pub fn start_with_database(
        args: &[&str],
        data_dir: &Path,
        database_url: Option<&str>,
    ) -> Server {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut command = seldinger();
        // Each server's DICOM listener on a free port, so tests run side by side.
        command.env("SELDINGER_DICOM_LISTEN", "127.0.0.1:0");
        command.env("SELDINGER_HL7_LISTEN", "127.0.0.1:0");
        match database_url {
            Some(url) => command.env("DATABASE_URL", url),
            None => command.env_remove("DATABASE_URL"),
        };
        let child = command
            .args(args)
            .args(["--listen", &listen, "--data-dir"])
            .arg(data_dir)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start seldinger");
        let base = format!("http://{listen}/api/v1");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if reqwest::blocking_get_ok(&format!("{base}/health")) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "seldinger did not answer on {listen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Server { child, base }
    }

    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill -TERM");
        let status = self.child.wait().expect("wait");
        std::mem::forget(self);
        status
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tiny blocking probe so the helper needs no runtime.
pub mod reqwest {
    pub fn blocking_get_ok(url: &str) -> bool {
        let Some(rest) = url.strip_prefix("http://") else {
            return false;
        };
        let Some((host, path)) = rest.split_once('/') else {
            return false;
        };
        let Ok(mut stream) = std::net::TcpStream::connect(host) else {
            return false;
        };
        use std::io::{Read, Write};
        let request = format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        if stream.write_all(request.as_bytes()).is_err() {
            return false;
        }
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        response.starts_with("HTTP/1.1 200")
    }
}

/// Runs a `seldinger` command against a data directory (or DATABASE_URL) and returns stdout.
pub fn cli(
    args: &[&str],
    data_dir: &Path,
    database_url: Option<&str>,
    env: &[(&str, &str)],
) -> String {
    let mut command = seldinger();
    // Each server's DICOM listener on a free port, so tests run side by side.
    command.env("SELDINGER_DICOM_LISTEN", "127.0.0.1:0");
    command.env("SELDINGER_HL7_LISTEN", "127.0.0.1:0");
    match database_url {
        Some(url) => command.env("DATABASE_URL", url),
        None => command.env_remove("DATABASE_URL"),
    };
    let output = command
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .envs(env.iter().copied())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("run seldinger");
    assert!(
        output.status.success(),
        "seldinger {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Holds the FHIR JSON in `file` (one resource or Bundle per line, `count` in all) to HL7's R4
/// JSON Schema (ajv) and to an independent FHIR library (fhir.resources), when installed; the
/// test suite's install step puts both in place and requires them.
pub fn held_to_fhir_peers(file: &Path, count: usize, engine: &str) {
    let required = std::env::var("SELDINGER_REQUIRE_FHIR_PEERS").is_ok_and(|v| v == "1");
    let schema_dir = std::env::var("SELDINGER_FHIR_SCHEMA_DIR").ok();
    let python = std::env::var("SELDINGER_FHIR_PYTHON").ok();
    let peers = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers");
    match schema_dir {
        Some(dir) => {
            let output = Command::new("node")
                .arg(peers.join("fhir_schema.js"))
                .arg(file)
                .env("NODE_PATH", dir)
                .output()
                .expect("run node");
            let said = String::from_utf8_lossy(&output.stdout);
            assert!(
                output.status.success(),
                "{engine}: HL7's R4 JSON Schema refuses what the server sent:\n{said}{}",
                String::from_utf8_lossy(&output.stderr)
            );
            assert!(
                said.contains(&format!("checked {count}, failed 0")),
                "{said}"
            );
        }
        None => assert!(!required, "SELDINGER_FHIR_SCHEMA_DIR is not set"),
    }
    match python {
        Some(python) => {
            let output = Command::new(python)
                .arg(peers.join("fhir_parse.py"))
                .arg(file)
                .output()
                .expect("run python");
            let said = String::from_utf8_lossy(&output.stdout);
            assert!(
                output.status.success(),
                "{engine}: an independent FHIR library refuses what the server sent:\n{said}{}",
                String::from_utf8_lossy(&output.stderr)
            );
            assert!(
                said.contains(&format!("checked {count}, failed 0")),
                "{said}"
            );
        }
        None => assert!(!required, "SELDINGER_FHIR_PYTHON is not set"),
    }
}

/// python-hl7's asyncio MLLP server (tests/peers/hl7_receiver.py) on `port`: every message it
/// receives, parsed by python-hl7, is a JSON line in `log`; `options` as the script takes them
/// (`--refuse TRIGGER…` answers those with AE; `--tls CERT KEY [--client-ca CA]`).
pub fn receiver(port: u16, log: &Path, options: &[&str]) -> Child {
    let python = match std::env::var("SELDINGER_MLLP_SEND") {
        Ok(path) if !path.is_empty() => Path::new(&path).with_file_name("python"),
        _ => "python3".into(),
    };
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/hl7_receiver.py");
    let mut command = Command::new(python);
    command
        .arg(script)
        .arg(log)
        .args(["--port", &port.to_string()]);
    command.args(options);
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the python-hl7 receiver (scripts/test installs python-hl7)");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.as_mut().expect("stdout")),
        &mut line,
    )
    .expect("the receiver's port");
    assert_eq!(line.trim(), port.to_string(), "the receiver listens");
    child
}

/// What the receiver got, in arrival order.
pub fn received(log: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// A peer process stopped when the test ends, passed or not.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The acknowledgement code (MSA-1) and text of one HL7 message sent over MLLP.
pub async fn send_hl7(address: impl tokio::net::ToSocketAddrs, message: &str) -> (String, String) {
    let stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect to the HL7 listener");
    let mut stream = tokio::io::BufReader::new(stream);
    seldinger_hl7::mllp::write_frame(stream.get_mut(), message.as_bytes())
        .await
        .expect("send");
    let answer = seldinger_hl7::mllp::read_frame(
        &mut stream,
        1 << 20,
        Duration::from_secs(30),
        Duration::from_secs(30),
    )
    .await;
    let Ok(seldinger_hl7::mllp::Frame::Message(ack)) = answer else {
        panic!("no acknowledgement");
    };
    let text = String::from_utf8_lossy(&ack).to_string();
    (ack_code(&text), text)
}

/// MSA-1 of an acknowledgement's text ('' when it has none).
pub fn ack_code(text: &str) -> String {
    text.split("MSA|")
        .nth(1)
        .map(|rest| rest.chars().take(2).collect::<String>())
        .unwrap_or_default()
}

/// Sends one file with DCMTK's storescu (an independent SCU) and returns what it said.
pub fn store_scu(host: &str, port: u16, file: &Path) -> String {
    let sent = Command::new("storescu")
        .args(["-v", "-aet", "ANGIO1", "-aec", "SELDINGER", host])
        .arg(port.to_string())
        .arg(file)
        .output()
        .expect("storescu (dcmtk; scripts/test installs it)");
    format!(
        "{}{}",
        String::from_utf8_lossy(&sent.stdout),
        String::from_utf8_lossy(&sent.stderr)
    )
}
