//! The `witan` command: parse the configuration, set up logging, run a
//! member until SIGINT / SIGTERM, shut it down cleanly.

use std::process::ExitCode;

use clap::Parser;
use tracing::{error, info};
use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogFormat};
use crate::node::Node;

/// Runs the `witan` command line; returns the process exit code.
pub fn main() -> ExitCode {
    let config = Config::parse();
    init_logging(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            error!(%err, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(config))
}

async fn run(config: Config) -> ExitCode {
    let node = match Node::start(config).await {
        Ok(node) => node,
        Err(err) => {
            error!(%err, "member failed to start");
            return ExitCode::FAILURE;
        }
    };
    tokio::select! {
        () = wait_for_signal() => info!("shutting down"),
        // A member removed from the cluster stops serving by itself; the
        // process exits as etcd's does, instead of idling.
        () = node.wait_stopped() => info!("removed from the cluster: shutting down"),
    }
    node.shutdown().await;
    ExitCode::SUCCESS
}

fn init_logging(config: &Config) {
    let filter = EnvFilter::try_new(&config.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(err) => {
                error!(%err, "cannot watch SIGTERM; only ctrl-c stops the member");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
