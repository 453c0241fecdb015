//! One module per etcdctl command family, each holding its flags (clap
//! `Args`), the requests it makes and how it prints the answers; [`run`]
//! sends a parsed command line to the right one.

pub mod auth;
pub mod barrier;
pub mod bench;
pub mod compaction;
pub mod elect;
pub mod endpoint;
pub mod hold;
pub mod kv;
pub mod lease;
pub mod lock;
pub mod maintenance;
pub mod member;
pub mod role;
pub mod semaphore;
pub mod snapshot;
pub mod snapshot_restore;
pub mod txn;
pub mod user;
pub mod watch;

use std::process::ExitCode;

use crate::cli::{Cli, Command};
use crate::conn::Ctx;
use crate::error::CtlError;
use crate::output;

/// Runs the command `cli` names.
pub async fn run(cli: Cli) -> Result<ExitCode, CtlError> {
    let mut ctx = Ctx::new(&cli.global);
    // Commands that never dial need no password.
    if !matches!(cli.command, Command::Version | Command::Bench(_)) {
        ctx.ask_password(&cli.global)?;
    }
    match cli.command {
        Command::Put(args) => kv::put(&ctx, &args).await?,
        Command::Get(args) => kv::get(&ctx, &args).await?,
        Command::Del(args) => kv::del(&ctx, &args).await?,
        Command::Watch(args) => watch::run(&ctx, &args).await?,
        Command::Txn(args) => txn::run(&ctx, &args).await?,
        Command::Compaction(args) => compaction::run(&ctx, &args).await?,
        Command::Lease(command) => lease::run(&ctx, &command).await?,
        Command::Lock(args) => lock::run(&ctx, &args).await?,
        Command::Elect(args) => elect::run(&ctx, &args).await?,
        Command::Member(command) => member::run(&ctx, &command).await?,
        Command::Endpoint(command) => endpoint::run(&ctx, &command).await?,
        Command::Snapshot(command) => snapshot::run(&ctx, &command).await?,
        Command::Defrag(args) => maintenance::defrag(&ctx, &args).await?,
        Command::Alarm(command) => maintenance::alarm(&ctx, &command).await?,
        Command::MoveLeader(args) => maintenance::move_leader(&ctx, &args).await?,
        Command::Auth(command) => auth::run(&ctx, &command).await?,
        Command::User(command) => user::run(&ctx, &command).await?,
        Command::Role(command) => role::run(&ctx, &command).await?,
        Command::Version => output::emit(&format!(
            "witanctl version: {}\nAPI version: 3.5\n",
            env!("CARGO_PKG_VERSION")
        )),
        Command::Barrier(command) => barrier::run(&ctx, &command).await?,
        Command::Semaphore(command) => semaphore::run(&ctx, &command).await?,
        Command::Bench(args) => return bench::run(&ctx, &args).await,
    }
    Ok(ExitCode::SUCCESS)
}
