//! One run of the tool, as a library call: the `witan-bench` binary and
//! `witanctl bench` both parse a [`Cli`] and hand it to [`run`], which
//! prints the report on stdout and says which exit status fits.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use crate::cli::{Cli, Command, CompareArgs, Workload};
use crate::compare::{self, RowSpec};
use crate::error::BenchError;
use crate::workload;

/// Exit status of a run in which some operations failed.
const SOME_FAILED: u8 = 3;

/// Runs the workload (or comparison) `cli` names and prints its report:
/// exit status 0 when the run completed, 3 when it completed but some
/// operations failed (except in `failover`, where failures are what is
/// measured); an error when it could not be made.
pub async fn run(cli: Cli) -> Result<ExitCode, BenchError> {
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
