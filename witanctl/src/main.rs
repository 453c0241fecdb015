//! The `witanctl` binary: parses the command line, runs the command and
//! exits with 0, or prints `Error: ...` on stderr and exits with 1 (as
//! etcdctl does).

use std::process::ExitCode;

use clap::Parser;
use witanctl::cli::Cli;

fn main() -> ExitCode {
    witanctl::run(Cli::parse())
}
