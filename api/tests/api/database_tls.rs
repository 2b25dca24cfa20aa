//! TLS to Postgres: with `sslmode=verify-full` the processes' pool (sqlx with rustls) talks
//! TLS to a server whose certificate a given CA signed, and refuses one it did not.

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use sqlx::postgres::PgPoolOptions;

use crate::own_postgres::OwnPostgres;

/// A CA and its PEM.
fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name
        .push(rcgen::DnType::CommonName, name.to_owned());
    CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap()
}

async fn connects(url: &str) -> Result<bool, sqlx::Error> {
    let pool = PgPoolOptions::new().max_connections(1).connect(url).await?;
    let ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&pool)
        .await?;
    pool.close().await;
    Ok(ssl)
}

#[tokio::test]
async fn verify_full_talks_tls_to_a_server_its_ca_signed_and_refuses_another() {
    let right = ca("urumi test CA");
    let wrong = ca("some other CA");
    let pg = OwnPostgres::start_with(|data| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&key, &right)
            .unwrap();
        std::fs::write(data.join("server.crt"), cert.pem()).unwrap();
        std::fs::write(data.join("server.key"), key.serialize_pem()).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            data.join("server.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        vec![
            "ssl=on".into(),
            "ssl_cert_file=server.crt".into(),
            "ssl_key_file=server.key".into(),
        ]
    });
    let dir = tempfile_dir();
    let (right_ca, wrong_ca) = (dir.join("right.pem"), dir.join("wrong.pem"));
    std::fs::write(&right_ca, right.pem()).unwrap();
    std::fs::write(&wrong_ca, wrong.pem()).unwrap();
    // The certificate names localhost; the test server listens on 127.0.0.1.
    let base = pg.url.replace("127.0.0.1", "localhost");
    let with = |mode: &str, ca: &std::path::Path| {
        format!("{base}?sslmode={mode}&sslrootcert={}", ca.display())
    };

    assert!(
        connects(&with("verify-full", &right_ca)).await.unwrap(),
        "verify-full with the server's CA talks TLS"
    );
    let refused = connects(&with("verify-full", &wrong_ca)).await.unwrap_err();
    assert!(
        refused.to_string().to_lowercase().contains("certificate"),
        "a certificate another CA signed is refused: {refused}"
    );
    assert!(
        !connects(&format!("{base}?sslmode=disable")).await.unwrap(),
        "sslmode=disable is plain text (the server allows both)"
    );
    let _ = std::fs::remove_dir_all(dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("urumi-tls-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&d).unwrap();
    d
}
