//! The `witan-bench` binary: parses the command line, runs one workload
//! (or `compare`) and prints the result on stdout; logs (`RUST_LOG`) and
//! the progress bar go to stderr.
//!
//! Exit status: 0 when the run completed, 1 when it could not be made, 3
//! when it completed but some operations failed (except in `failover`,
//! where failures are what is measured).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use witan_bench::cli::{Cli, Command, CompareArgs, Workload};
use witan_bench::compare::{self, RowSpec};
use witan_bench::error::BenchError;
use witan_bench::workload;

/// Exit status of a run in which some operations failed.
const SOME_FAILED: u8 = 3;

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

async fn run(cli: Cli) -> Result<ExitCode, BenchError> {
    match cli.command {
        Command::Compare(args) => compare_files(&args, cli.global.json),
        Command::Workload(workload) => {
            let report = workload::run(&cli.global, &workload).await?;
            if let Some(path) = &cli.global.json_file {
                append_line(path, &report.to_json_line())?;
            }
            if cli.global.json {
                println!("{}", report.to_json_line());
            } else {
                print!("{}", report.to_table());
            }
            let failures_expected = matches!(workload, Workload::Failover(_));
            if report.errors() > 0 && !failures_expected {
                return Ok(ExitCode::from(SOME_FAILED));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Appends `line` and a newline to the file at `path`, creating it.
fn append_line(path: &Path, line: &str) -> Result<(), BenchError> {
    let write = || -> std::io::Result<()> {
        let mut file = OpenOptions::new().create(true).append(true).open(path)?;
        writeln!(file, "{line}")
    };
    write().map_err(|source| BenchError::Write {
        path: path.to_owned(),
        source,
    })
}

fn compare_files(args: &CompareArgs, json: bool) -> Result<ExitCode, BenchError> {
    let rows: Vec<RowSpec> = args
        .rows
        .iter()
        .map(|spec| RowSpec::parse(spec))
        .collect::<Result<_, _>>()?;
    let (candidate, candidate_file) = &args.candidate;
    let (baseline, baseline_file) = &args.baseline;
    let compared = compare::compare(
        &rows,
        &compare::load(candidate_file)?,
        &compare::load(baseline_file)?,
    );
    if json {
        println!("{}", compare::to_json(candidate, baseline, &compared));
    } else {
        print!("{}", compare::to_table(candidate, baseline, &compared));
    }
    Ok(ExitCode::SUCCESS)
}
