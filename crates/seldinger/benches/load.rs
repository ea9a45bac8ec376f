//! The department under load: a real `seldinger serve` on a generated department, 100 signed-in
//! clients requesting the board, its refresh, a case page, patient search, the follow-up queue
//! and dose statistics for a fixed time, each latency measured beside `/api/v1/health`'s in the
//! same run; the server's start time and resident memory, idle and under load.
//!
//! ```text
//! seldinger generate --years 10 --data-dir /var/tmp/ten-years      # once (or DATABASE_URL=…)
//! SELDINGER_BENCH_DATA=/var/tmp/ten-years cargo bench -p seldinger --bench load
//! ```
//!
//! Settings (environment): `SELDINGER_BENCH_DATA` (the generated data directory; without it a
//! one-year department is generated in a temporary one), `DATABASE_URL` (serve a generated
//! PostgreSQL database instead), `SELDINGER_BENCH_SECONDS` (default 30),
//! `SELDINGER_BENCH_CLIENTS` (default 100). Prints a Markdown table.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_seldinger");
const PASSWORD: &str = "seldinger-demo";

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
enum Kind {
    Board,
    BoardRefresh,
    CasePage,
    PatientSearch,
    FollowUpQueue,
    DoseStatistics,
    Health,
}

impl Kind {
    const ALL: [Kind; 7] = [
        Kind::Board,
        Kind::BoardRefresh,
        Kind::CasePage,
        Kind::PatientSearch,
        Kind::FollowUpQueue,
        Kind::DoseStatistics,
        Kind::Health,
    ];

    fn label(self) -> &'static str {
        match self {
            Kind::Board => "board page `/board`",
            Kind::BoardRefresh => "board refresh `/board/lanes` (If-None-Match)",
            Kind::CasePage => "case page `/cases/{id}`",
            Kind::PatientSearch => "patient search `/api/v1/patients?name=`",
            Kind::FollowUpQueue => "follow-up queue `/api/v1/follow-up-tasks?status=due`",
            Kind::DoseStatistics => "dose statistics `/api/v1/dose/statistics`",
            Kind::Health => "`/api/v1/health`",
        }
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// `seldinger SUBCOMMAND…` on the data directory.
fn command(data: &std::path::Path, args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env("RUST_LOG", "error")
        .env("SELDINGER_NO_DICOM", "true")
        .env("SELDINGER_NO_HL7", "true");
    command
}

/// Starts the server and waits until it is ready: the process and the time it took.
fn start(data: &std::path::Path, port: u16) -> (Child, Duration) {
    let started = Instant::now();
    let child = command(data, &["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start seldinger");
    let probe = reqwest::blocking_free_probe(port);
    while !probe() {
        assert!(started.elapsed() < Duration::from_secs(300), "never ready");
        std::thread::sleep(Duration::from_millis(5));
    }
    (child, started.elapsed())
}

/// A readiness probe over a plain socket (no runtime needed).
mod reqwest {
    pub use ::reqwest::*;
    pub fn blocking_free_probe(port: u16) -> impl Fn() -> bool {
        move || {
            use std::io::{Read, Write};
            let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
                return false;
            };
            let request =
                "GET /api/v1/health/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
            if stream.write_all(request.as_bytes()).is_err() {
                return false;
            }
            let mut response = String::new();
            let _ = stream.read_to_string(&mut response);
            response.starts_with("HTTP/1.1 200")
        }
    }
}

async fn sign_in(client: &reqwest::Client, base: &str, username: &str) -> String {
    let answer = client
        .post(format!("{base}/api/v1/session"))
        .json(&serde_json::json!({"username": username, "password": PASSWORD}))
        .send()
        .await
        .expect("sign in");
    assert!(
        answer.status().is_success(),
        "{username}: {}",
        answer.status()
    );
    answer
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("seldinger_session="))
        .and_then(|c| c.split(';').next())
        .expect("session cookie")
        .to_string()
}

struct Sessions {
    physician: String,
    nurse: String,
    physicist: String,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let seconds: u64 = env_or("SELDINGER_BENCH_SECONDS", 30);
    let clients: usize = env_or("SELDINGER_BENCH_CLIENTS", 100);
    let generated;
    let data = match std::env::var("SELDINGER_BENCH_DATA") {
        Ok(dir) => std::path::PathBuf::from(dir),
        Err(_) => {
            generated = tempfile::tempdir().expect("temporary directory");
            eprintln!(
                "SELDINGER_BENCH_DATA unset: generating one year in {}",
                generated.path().display()
            );
            let status = command(generated.path(), &["generate", "--years", "1"])
                .status()
                .expect("generate");
            assert!(status.success());
            generated.path().to_path_buf()
        }
    };
    let engine = if std::env::var("DATABASE_URL").is_ok_and(|u| !u.is_empty()) {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let port = free_port();
    let (mut server, start_time) = start(&data, port);
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .expect("client");
    let sessions = Arc::new(Sessions {
        physician: sign_in(&http, &base, "dr.okafor").await,
        nurse: sign_in(&http, &base, "nurse.lindqvist").await,
        physicist: sign_in(&http, &base, "phys.mendez").await,
    });
    // Today's cases, for the case pages: what a department opens (checklists, drugs and labs),
    // not the first ten-year-old cases a list gives.
    let day = chrono::Utc::now().date_naive();
    let today: serde_json::Value = http
        .get(format!("{base}/api/v1/cases?date={day}&limit=200"))
        .header("cookie", &sessions.physician)
        .send()
        .await
        .expect("cases")
        .json()
        .await
        .expect("json");
    let case_ids: Vec<String> = today
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["id"].as_str().map(str::to_string))
        .collect();
    assert!(!case_ids.is_empty(), "no cases to open: {today}");
    let counts: serde_json::Value = http
        .get(format!("{base}/api/v1/health"))
        .send()
        .await
        .expect("health")
        .json()
        .await
        .expect("json");
    eprintln!("{engine}: ready in {start_time:?}; {counts}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss = rss_kib(server.id());

    let latencies: Arc<Mutex<HashMap<Kind, Vec<Duration>>>> = Default::default();
    let errors: Arc<Mutex<HashMap<(Kind, u16), usize>>> = Default::default();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let names = ["Ng", "Sm", "Pa", "Ok", "Li", "Ta", "Mo", "Br", "Wi", "Ch"];
    let mut tasks = Vec::new();
    for client in 0..clients {
        let (http, base, sessions) = (http.clone(), base.clone(), sessions.clone());
        let (latencies, errors, case_ids) = (latencies.clone(), errors.clone(), case_ids.clone());
        tasks.push(tokio::spawn(async move {
            let mut etag = String::new();
            let mut round = client;
            let mut own = Vec::new();
            while Instant::now() < deadline {
                let kind = Kind::ALL[round % Kind::ALL.len()];
                round += 1;
                let request = match kind {
                    Kind::Board => http
                        .get(format!("{base}/board"))
                        .header("cookie", &sessions.nurse),
                    Kind::BoardRefresh => http
                        .get(format!("{base}/board/lanes"))
                        .header("cookie", &sessions.nurse)
                        .header("x-seldinger-refresh", "background")
                        .header("if-none-match", &etag),
                    Kind::CasePage => http
                        .get(format!("{base}/cases/{}", case_ids[round % case_ids.len()]))
                        .header("cookie", &sessions.physician),
                    Kind::PatientSearch => http
                        .get(format!(
                            "{base}/api/v1/patients?name={}&limit=20",
                            names[round % names.len()]
                        ))
                        .header("cookie", &sessions.physician),
                    Kind::FollowUpQueue => http
                        .get(format!("{base}/api/v1/follow-up-tasks?status=due&limit=50"))
                        .header("cookie", &sessions.nurse),
                    Kind::DoseStatistics => http
                        .get(format!("{base}/api/v1/dose/statistics"))
                        .header("cookie", &sessions.physicist),
                    Kind::Health => http.get(format!("{base}/api/v1/health")),
                };
                let began = Instant::now();
                let Ok(answer) = request.send().await else {
                    *errors.lock().expect("errors").entry((kind, 0)).or_default() += 1;
                    continue;
                };
                let status = answer.status().as_u16();
                if let Some(tag) = answer.headers().get("etag").and_then(|v| v.to_str().ok()) {
                    if kind == Kind::Board || kind == Kind::BoardRefresh {
                        etag = tag.to_string();
                    }
                }
                let _ = answer.bytes().await;
                let took = began.elapsed();
                if status == 200 || status == 304 {
                    own.push((kind, took));
                } else {
                    *errors
                        .lock()
                        .expect("errors")
                        .entry((kind, status))
                        .or_default() += 1;
                }
            }
            let mut latencies = latencies.lock().expect("latencies");
            for (kind, took) in own {
                latencies.entry(kind).or_default().push(took);
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds / 2)).await;
    let loaded_rss = rss_kib(server.id());
    for task in tasks {
        task.await.expect("client");
    }
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    let _ = server.wait();

    let mut latencies = std::mem::take(&mut *latencies.lock().expect("latencies"));
    let percentile = |sorted: &[Duration], p: f64| -> f64 {
        if sorted.is_empty() {
            return f64::NAN;
        }
        let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted[index].as_secs_f64() * 1000.0
    };
    for list in latencies.values_mut() {
        list.sort();
    }
    let health_p99 = percentile(
        latencies.get(&Kind::Health).map_or(&[][..], Vec::as_slice),
        0.99,
    );
    println!(
        "\n{engine}, {clients} clients, {seconds} s, data {}: start {:.0} ms, RSS idle {} MiB, under load {} MiB\n",
        data.display(),
        start_time.as_secs_f64() * 1000.0,
        idle_rss / 1024,
        loaded_rss / 1024
    );
    println!("| request | requests/s | p50 ms | p99 ms | p99 ÷ health p99 |");
    println!("|---|---:|---:|---:|---:|");
    for kind in Kind::ALL {
        let list = latencies.get(&kind).map_or(&[][..], Vec::as_slice);
        let p99 = percentile(list, 0.99);
        println!(
            "| {} | {:.1} | {:.1} | {:.1} | {:.1} |",
            kind.label(),
            list.len() as f64 / seconds as f64,
            percentile(list, 0.5),
            p99,
            p99 / health_p99
        );
    }
    let errors = errors.lock().expect("errors");
    if !errors.is_empty() {
        println!("\nNot answered 200/304: {errors:?}");
    }
}
