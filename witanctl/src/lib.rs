//! witanctl: the operator CLI for witan, and for any etcd v3 cluster. It
//! mirrors etcdctl (v3): the same commands, flags, output formats and
//! error texts, so an etcd operator's habits and scripts carry over; it
//! adds witan's own recipes (`barrier`, `semaphore`), fencing tokens on
//! `lock` and `elect`, and the load generator (`bench`).
//!
//! The map: `cli` (global flags, the command enum), `conn` (endpoints,
//! dialing, timeouts, authentication: the generated clients of
//! `witan_proto` over one channel), `commands` (one file per command
//! family, each with its own flags, requests and output), `output`
//! (etcdctl's simple, json, fields and table formats), `error` (every
//! failure, saying which endpoint, what failed and what to do).

pub mod cli;
pub mod commands;
pub mod conn;
pub mod error;
pub mod output;

use std::process::ExitCode;

use crate::cli::Cli;
use crate::error::CtlError;

/// Runs the command `cli` names to the end and gives the exit status:
/// 0 on success, 1 on error (printed as etcdctl prints it, `Error: ...`),
/// or the status `bench` chose.
pub fn run(cli: Cli) -> ExitCode {
    init_tracing();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build();
    let result = match runtime {
        Ok(runtime) => runtime.block_on(commands::run(cli)),
        Err(error) => Err(CtlError::Runtime(error)),
    };
    match result {
        Ok(code) => code,
        Err(CtlError::BenchUsage(error)) => {
            // clap formats its own usage errors (and --help) and picks the status.
            let _ = error.print();
            ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(1))
        }
        Err(error) => {
            eprintln!("Error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr at `RUST_LOG`'s level (warnings by default).
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
