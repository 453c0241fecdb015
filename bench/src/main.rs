//! The `witan-bench` binary: parses the command line, runs one workload
//! (or `compare`) and prints the result on stdout; logs (`RUST_LOG`) and
//! the progress bar go to stderr.
//!
//! Exit status: 0 when the run completed, 1 when it could not be made, 3
//! when it completed but some operations failed (except in `failover`,
//! where failures are what is measured).

use std::process::ExitCode;

use clap::Parser;
use witan_bench::cli::Cli;
use witan_bench::run::run;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("witan-bench: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("witan-bench: {error}");
            ExitCode::FAILURE
        }
    }
}
