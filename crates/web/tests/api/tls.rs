//! HTTPS: a real TLS handshake against a certificate made for the test, and cookies marked Secure.

use crate::helpers::{now, PASSWORD};
use seldinger_domain::access::Role;
use seldinger_domain::ProcedureCatalogue;
use seldinger_web::{AppState, AuthPolicy, FixedClock};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn https_request(port: u16, ca_pem: &str, request: &str) -> String {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    let der = rustls_pki_der(ca_pem);
    roots.add(der).expect("trust the test certificate");
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let mut tls = connector.connect(name, tcp).await.expect("TLS handshake");
    tls.write_all(request.as_bytes()).await.expect("write");
    let mut response = Vec::new();
    tls.read_to_end(&mut response).await.ok();
    String::from_utf8_lossy(&response).into_owned()
}

fn rustls_pki_der(pem: &str) -> rustls::pki_types::CertificateDer<'static> {
    use base64::Engine;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("PEM body");
    rustls::pki_types::CertificateDer::from(bytes)
}

#[tokio::test]
async fn serves_https_and_marks_the_session_cookie_secure() {
    let db = seldinger_store::testing::sqlite().await;
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
    let dir = tempfile::tempdir().expect("dir");
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).expect("write cert");
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).expect("write key");

    let catalogue = ProcedureCatalogue::parse(
        include_str!("../../../../catalog/procedures.toml"),
        "procedures.toml",
    )
    .expect("catalogue");
    let policy = AuthPolicy {
        secure_cookies: true,
        ..Default::default()
    };
    let state = AppState::new(
        db.store.clone(),
        catalogue,
        crate::helpers::safety_reference(),
        Arc::new(FixedClock(now())),
        policy,
    );
    let hash = seldinger_web::auth::credentials::hash_password(PASSWORD).expect("hash");
    db.store
        .create_user("ir_nurse", "Nurse", Role::IrNurse, &hash, now(), &[])
        .await
        .expect("user");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        seldinger_web::serve_tls(
            listener,
            state,
            &cert_path,
            &key_path,
            std::future::pending(),
        )
        .await
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    let health = https_request(
        port,
        &cert.cert.pem(),
        "GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.contains("\"status\":\"ok\""));
    // Over TLS, browsers are told to keep to TLS.
    assert!(
        health
            .to_ascii_lowercase()
            .contains("strict-transport-security: max-age=31536000"),
        "{health}"
    );

    let body = format!(r#"{{"username":"ir_nurse","password":"{PASSWORD}"}}"#);
    let login = https_request(
        port,
        &cert.cert.pem(),
        &format!(
            "POST /api/v1/session HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    assert!(login.starts_with("HTTP/1.1 201"), "{login}");
    let cookie = login
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_default();
    assert!(
        cookie.contains("; Secure")
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    drop((db, dir));
}
