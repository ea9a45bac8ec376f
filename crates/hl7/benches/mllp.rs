//! HL7 throughput over MLLP with durable acknowledgements, beside the two ceilings it cannot beat,
//! all measured in the same run:
//! - the disk's fsync rate (a loop writing 4 KiB and syncing it, in the database's folder);
//! - an independent MLLP server that only acknowledges (python-hl7's asyncio server), for the
//!   network and client ceiling;
//! - each engine's statement rate on one connection (`SELECT 1` after `SELECT 1`): an A08 in a
//!   batch is five statements (the patient read; event, projection, audit row and inbox row
//!   written), and the listener's writers commit all the messages waiting at once (decision 0006).
//!
//! `cargo bench -p seldinger-hl7 --bench mllp [-- SECONDS PATIENTS]` (default 5 s per run, 200
//! patients) sends ADT^A08 updates over 1 and 8 connections, each waiting for its ACK, to the
//! real listener on SQLite (a file in a temporary folder) and, when `SELDINGER_TEST_POSTGRES_URL`
//! names a server, on PostgreSQL; and the same client to the null server when python-hl7 is
//! found (`SELDINGER_MLLP_SEND`, as scripts/test installs it, or `pip install hl7`).

#[path = "../tests/common/mod.rs"]
mod common;

use seldinger_hl7::mllp::{self, ListenerConfig};

use seldinger_store::{testing, Store};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn a08(patient: usize, control: &str, weight: u64) -> Vec<u8> {
    format!(
        "MSH|^~\\&|PAS|GENHOSP|SELDINGER|IR|20261201090000||ADT^A08^ADT_A01|{control}|P|2.5.1\r\
         PID|1||B{patient:05}^^^GENHOSP^MR||Bench^Bea||19700101|F\r\
         PV1|1|O\r\
         OBX|1|NM|29463-7^Body weight^LN||{}.{}|kg|||||F\r",
        50 + weight % 50,
        weight % 10
    )
    .into_bytes()
}

/// Messages per second over `connections`, each sending to its own patients and waiting for
/// every ACK (which must be AA).
async fn drive(port: u16, connections: usize, patients: usize, seconds: f64, run: &str) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for c in 0..connections {
        let (stop, sent, run) = (stop.clone(), sent.clone(), run.to_string());
        tasks.push(tokio::spawn(async move {
            let mut connection = common::connect(port).await;
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let patient = c + connections * (n as usize % (patients / connections).max(1));
                let message = a08(patient, &format!("{run}-{c}-{n}"), n);
                let (code, _, ack) = common::exchange(&mut connection, &message).await;
                assert_eq!(code, "AA", "{}", String::from_utf8_lossy(&ack));
                n += 1;
                sent.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.expect("sender");
    }
    sent.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

/// Syncs per second of 4 KiB writes in `dir`: the most durable commits one writer can make.
fn fsync_rate(dir: &Path, seconds: f64) -> f64 {
    let path = dir.join("fsync-probe");
    let mut file = std::fs::File::create(&path).expect("probe file");
    let block = [0x5au8; 4096];
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < seconds {
        file.write_all(&block).expect("write");
        file.sync_data().expect("fsync");
        n += 1;
    }
    let _ = std::fs::remove_file(&path);
    n as f64 / start.elapsed().as_secs_f64()
}

async fn listener(store: Store, patients: usize) -> u16 {
    let interface = common::interface(store);
    // The patients exist before the clock starts: A08s update them.
    let peer = seldinger_hl7::Peer::file("bench");
    for p in 0..patients {
        let answer = interface
            .receive(&a08(p, &format!("setup-{p}"), 0), &peer)
            .await;
        assert_eq!(answer.code, "AA", "{:?}", answer.reason);
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(mllp::serve(listener, ListenerConfig::default(), interface));
    port
}

/// python-hl7's asyncio MLLP server answering every message with its own ACK, on a free port.
fn null_server() -> Option<(std::process::Child, u16)> {
    let python = match std::env::var("SELDINGER_MLLP_SEND") {
        Ok(path) if !path.is_empty() => Path::new(&path).with_file_name("python"),
        _ => "python3".into(),
    };
    let script = r#"
import asyncio, hl7, sys
from hl7.mllp import start_hl7_server
async def serve(reader, writer):
    try:
        while not writer.is_closing():
            message = await reader.readmessage()
            writer.writemessage(message.create_ack())
            await writer.drain()
    except Exception:
        pass
async def main():
    server = await start_hl7_server(serve, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()
asyncio.run(main())
"#;
    let mut child = std::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.as_mut()?),
        &mut line,
    )
    .ok()?;
    match line.trim().parse() {
        Ok(port) => Some((child, port)),
        Err(_) => {
            let _ = child.kill();
            None
        }
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let seconds: f64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(5.0);
    let patients: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(200);
    let sqlite = testing::sqlite().await;
    let folder = sqlite
        .url
        .trim_start_matches("sqlite://")
        .split('?')
        .next()
        .map(|f| Path::new(f).parent().map(Path::to_path_buf))
        .unwrap_or_default()
        .unwrap_or_else(std::env::temp_dir);
    let fsync = fsync_rate(&folder, seconds.min(3.0));
    println!("disk fsync rate ({}): {fsync:.0}/s", folder.display());
    let mut rows = Vec::new();
    match null_server() {
        Some((mut child, port)) => {
            for connections in [1, 8] {
                let rate = drive(port, connections, patients, seconds, "null").await;
                rows.push(("python-hl7 null ACK server", connections, rate));
            }
            let _ = child.kill();
        }
        None => println!("python-hl7 not found: the null-server ceiling is not measured"),
    }
    let mut engines = vec![("SQLite", sqlite.store.clone())];
    let postgres = testing::postgres().await;
    if let Some(db) = &postgres {
        engines.push(("PostgreSQL", db.store.clone()));
    }
    for (name, store) in engines {
        let statements = store.statement_rate(seconds.min(3.0)).await.expect("probe");
        println!("{name}: {statements:.0} statements/s on one connection (an A08 takes 5)");
        let port = listener(store, patients).await;
        for connections in [1, 8] {
            let rate = drive(
                port,
                connections,
                patients,
                seconds,
                &format!("{name}{connections}"),
            )
            .await;
            rows.push((name, connections, rate));
        }
    }
    println!("\n| server | connections | messages/s | vs fsync rate |");
    println!("|---|---|---|---|");
    for (name, connections, rate) in rows {
        println!(
            "| {name} | {connections} | {rate:.0} | {:.2}× |",
            rate / fsync.max(1.0)
        );
    }
}
