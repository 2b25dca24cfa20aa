//! [`signal`]: the future both Urumi processes stop on — SIGINT (Ctrl-C) or SIGTERM (what
//! Kubernetes and `docker stop` send). Pass it to [`crate::Worker::run`] or a server's
//! graceful shutdown.

/// Completes on the first SIGINT or SIGTERM.
pub async fn signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
