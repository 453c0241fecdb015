//! `bench ...`: the witan-bench load generator, nested. Its arguments are
//! handed to witan-bench's own parser untouched (its flags, help and
//! messages are its own); witanctl's `--endpoints` are passed on unless
//! the bench arguments name their own.

use std::process::ExitCode;

use clap::Parser;
use witan_bench::cli::Cli;

use crate::conn::{url_of, Ctx};
use crate::error::CtlError;

/// `bench` arguments: everything after `bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// witan-bench's workload and options (`witanctl bench --help`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// The witan-bench command line for `args` under `ctx`.
pub fn bench_cli(ctx: &Ctx, args: &BenchArgs) -> Result<Cli, clap::Error> {
    let mut argv = vec!["witanctl bench".to_string()];
    argv.extend(args.args.iter().cloned());
    let names_endpoints = args
        .args
        .iter()
        .any(|a| a == "--endpoints" || a.starts_with("--endpoints="));
    if !names_endpoints {
        let urls: Vec<String> = ctx.endpoints.iter().map(|e| url_of(e)).collect();
        argv.push(format!("--endpoints={}", urls.join(",")));
    }
    Cli::try_parse_from(argv)
}

/// `bench`.
pub async fn run(ctx: &Ctx, args: &BenchArgs) -> Result<ExitCode, CtlError> {
    let cli = bench_cli(ctx, args)?;
    Ok(witan_bench::run::run(cli).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn witanctl_endpoints_reach_the_bench_unless_it_names_its_own() {
        let ctx = Ctx {
            endpoints: vec!["127.0.0.1:1".into(), "http://127.0.0.1:2".into()],
            dial_timeout: std::time::Duration::from_secs(1),
            command_timeout: std::time::Duration::from_secs(1),
            format: crate::cli::Format::Simple,
            hex: false,
            credentials: None,
            tls: Default::default(),
        };
        let args = BenchArgs {
            args: vec!["put".into(), "--total".into(), "5".into()],
        };
        let cli = bench_cli(&ctx, &args).unwrap();
        assert_eq!(
            cli.global.endpoints,
            vec![
                "http://127.0.0.1:1".to_string(),
                "http://127.0.0.1:2".to_string()
            ]
        );
        let args = BenchArgs {
            args: vec!["put".into(), "--endpoints".into(), "http://x:3".into()],
        };
        let cli = bench_cli(&ctx, &args).unwrap();
        assert_eq!(cli.global.endpoints, vec!["http://x:3".to_string()]);
    }
}
