//! What the commands that hold something share (`lock`, `elect`,
//! `barrier set`, `semaphore acquire`, `lease keep-alive`): a [`Session`]
//! (a lease kept alive in the background, as etcd's concurrency package
//! keeps one, that says when it is lost), waiting for Ctrl-C or SIGTERM,
//! and running a command while the hold lasts.

use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;
use witan_proto::etcdserverpb::{LeaseGrantRequest, LeaseKeepAliveRequest, LeaseRevokeRequest};

use crate::conn::Conn;
use crate::error::CtlError;

/// A lease kept alive until [`Session::close`] or until it is lost.
pub struct Session {
    id: i64,
    lost: watch::Receiver<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Session {
    /// Grants a lease of `ttl` seconds on `conn` and keeps it alive.
    pub async fn start(conn: &Conn, ttl: i64) -> Result<Session, CtlError> {
        let grant = LeaseGrantRequest { ttl, id: 0 };
        let granted = conn
            .call("LeaseGrant", conn.lease().lease_grant(grant))
            .await?;
        let id = granted.id;
        let (lost_tx, lost) = watch::channel(false);
        let conn = conn.clone();
        let every = Duration::from_millis((granted.ttl.max(1) as u64 * 1000) / 3);
        let task = tokio::spawn(async move {
            if let Err(error) = keep_alive(&conn, id, every).await {
                tracing::warn!(lease = format!("{id:016x}"), %error, "the session's lease is lost");
            }
            let _ = lost_tx.send(true);
        });
        Ok(Session { id, lost, task })
    }

    /// The lease.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// Returns once the lease is lost (expired, revoked, or its keepalive
    /// stream failed).
    pub async fn lost(&mut self) {
        let _ = self.lost.wait_for(|lost| *lost).await;
    }

    /// Stops the keepalive and revokes the lease (whatever it holds is
    /// released with it).
    pub async fn close(self, conn: &Conn) -> Result<(), CtlError> {
        self.task.abort();
        let revoke = LeaseRevokeRequest { id: self.id };
        match conn
            .call("LeaseRevoke", conn.lease().lease_revoke(revoke))
            .await
        {
            Ok(_) => Ok(()),
            // Already gone is what we wanted.
            Err(CtlError::Rpc { status, .. }) if status.code() == tonic::Code::NotFound => Ok(()),
            Err(error) => Err(error),
        }
    }
}

/// Keeps lease `id` alive every `every` until the stream fails or the
/// lease is gone.
async fn keep_alive(conn: &Conn, id: i64, every: Duration) -> Result<(), CtlError> {
    let (tx, rx) = mpsc::channel(1);
    // The first request goes before the call: etcd (grpc-go) sends the
    // response headers only with the first answer, so waiting for the
    // call before sending anything would wait forever.
    if tx.send(LeaseKeepAliveRequest { id }).await.is_err() {
        return Ok(());
    }
    let mut responses = conn
        .lease()
        .lease_keep_alive(ReceiverStream::new(rx))
        .await
        .map_err(|status| conn.rpc("LeaseKeepAlive", status))?
        .into_inner();
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        match responses.next().await {
            Some(Ok(resp)) if resp.ttl > 0 => {}
            Some(Ok(_)) => return Err(CtlError::LeaseLost { id }),
            Some(Err(status)) => return Err(conn.rpc("LeaseKeepAlive", status)),
            None => {
                return Err(CtlError::StreamEnded {
                    endpoint: conn.endpoint.clone(),
                    what: "LeaseKeepAlive",
                })
            }
        }
        tick.tick().await;
        if tx.send(LeaseKeepAliveRequest { id }).await.is_err() {
            return Ok(());
        }
    }
}

/// Returns on Ctrl-C (SIGINT) or SIGTERM, including one that arrived
/// since any earlier call.
///
/// The listener is installed once per process and latches: a signal that
/// lands while a command is between two waits (printing an event, say)
/// would otherwise be taken by tokio's handler with nobody listening, and
/// the command would never stop.
pub async fn until_signal() {
    let mut stopped = stop_latch();
    let _ = stopped.wait_for(|stopped| *stopped).await;
}

fn stop_latch() -> watch::Receiver<bool> {
    static LATCH: std::sync::OnceLock<watch::Receiver<bool>> = std::sync::OnceLock::new();
    LATCH
        .get_or_init(|| {
            let (tx, rx) = watch::channel(false);
            let signalled = signalled();
            tokio::spawn(async move {
                signalled.await;
                let _ = tx.send(true);
            });
            rx
        })
        .clone()
}

/// Registers for SIGINT and SIGTERM now (not at the first poll, so no
/// signal in between is missed) and resolves at the first of them.
#[cfg(unix)]
fn signalled() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let interrupt = signal(SignalKind::interrupt()).ok();
    let term = signal(SignalKind::terminate()).ok();
    async move {
        let wait = |listener: Option<tokio::signal::unix::Signal>| async move {
            match listener {
                Some(mut listener) => {
                    listener.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = wait(interrupt) => {}
            _ = wait(term) => {}
        }
    }
}

#[cfg(not(unix))]
fn signalled() -> impl std::future::Future<Output = ()> {
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs `command` (program and arguments) with `env` added, and waits
/// for it; a command that fails is an error (etcdctl: `exit status N`).
pub async fn run_command(command: &[String], env: &[(String, String)]) -> Result<(), CtlError> {
    let Some((program, args)) = command.split_first() else {
        return Ok(());
    };
    let mut child = tokio::process::Command::new(program);
    child.args(args);
    for (name, value) in env {
        child.env(name, value);
    }
    let status = child.status().await.map_err(|source| CtlError::Spawn {
        program: program.clone(),
        source,
    })?;
    if status.success() {
        Ok(())
    } else {
        Err(CtlError::Exec(status))
    }
}
