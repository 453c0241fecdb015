//! The command line: etcdctl's global flags ([`Global`]) and one
//! subcommand per etcdctl command, with etcdctl's flag names, so an etcd
//! operator's habits (and scripts) carry over. Each command's own options
//! live beside its code in `commands/`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

use crate::commands;
use crate::conn::tls::TlsFlags;

/// The operator CLI for witan (and any etcd v3 cluster).
#[derive(Debug, Parser)]
#[command(name = "witanctl", version, about, long_about = None)]
pub struct Cli {
    /// Flags every command takes.
    #[command(flatten)]
    pub global: Global,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// etcdctl's global flags. Each also reads `WITANCTL_<FLAG>` from the
/// environment; `ETCDCTL_ENDPOINTS` is honoured when `WITANCTL_ENDPOINTS`
/// is not set (see [`Global::endpoints`]).
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// gRPC endpoints, comma-separated (`http://` is optional).
    #[arg(
        long = "endpoints",
        global = true,
        value_delimiter = ',',
        env = "WITANCTL_ENDPOINTS"
    )]
    pub endpoints_flag: Vec<String>,
    /// Dial timeout for client connections.
    #[arg(long, global = true, default_value = "2s", value_parser = humantime::parse_duration, env = "WITANCTL_DIAL_TIMEOUT")]
    pub dial_timeout: Duration,
    /// Timeout for short-running commands (excluding dial timeout).
    #[arg(long, global = true, default_value = "5s", value_parser = humantime::parse_duration, env = "WITANCTL_COMMAND_TIMEOUT")]
    pub command_timeout: Duration,
    /// The output format.
    #[arg(short = 'w', long = "write-out", global = true, value_enum, default_value_t = Format::Simple, env = "WITANCTL_WRITE_OUT")]
    pub write_out: Format,
    /// Print byte strings as hex encoded strings.
    #[arg(long, global = true, env = "WITANCTL_HEX")]
    pub hex: bool,
    /// username[:password] for authentication.
    #[arg(long, global = true, env = "WITANCTL_USER")]
    pub user: Option<String>,
    /// Password for authentication (then --user holds the name only).
    #[arg(long, global = true, env = "WITANCTL_PASSWORD")]
    pub password: Option<String>,
    /// Verify certificates of TLS-enabled secure servers using this CA bundle.
    #[arg(
        long = "cacert",
        id = "tls_cacert",
        global = true,
        env = "WITANCTL_CACERT"
    )]
    pub cacert: Option<PathBuf>,
    /// Identify secure client using this TLS certificate file.
    #[arg(long = "cert", id = "tls_cert", global = true, env = "WITANCTL_CERT")]
    pub cert: Option<PathBuf>,
    /// Identify secure client using this TLS key file.
    #[arg(long = "key", id = "tls_key", global = true, env = "WITANCTL_KEY")]
    pub key: Option<PathBuf>,
    /// Skip server certificate verification (CAUTION: this option should be
    /// enabled only for testing purposes).
    #[arg(long, global = true, env = "WITANCTL_INSECURE_SKIP_TLS_VERIFY")]
    pub insecure_skip_tls_verify: bool,
    /// Disable transport security for client connections
    /// (`--insecure-transport=false` asks for TLS on endpoints without a scheme).
    #[arg(long, global = true, env = "WITANCTL_INSECURE_TRANSPORT", default_value_t = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = ArgAction::Set)]
    pub insecure_transport: bool,
}

/// The etcd endpoints used when neither a flag nor the environment names one.
pub const DEFAULT_ENDPOINT: &str = "127.0.0.1:2379";

impl Global {
    /// The endpoints to use: `--endpoints` (or `WITANCTL_ENDPOINTS`), else
    /// `ETCDCTL_ENDPOINTS`, else [`DEFAULT_ENDPOINT`].
    pub fn endpoints(&self) -> Vec<String> {
        let given: Vec<String> = self
            .endpoints_flag
            .iter()
            .map(|e| e.trim().to_string())
            .filter(|e| !e.is_empty())
            .collect();
        if !given.is_empty() {
            return given;
        }
        if let Ok(etcd) = std::env::var("ETCDCTL_ENDPOINTS") {
            let from_etcd: Vec<String> = etcd
                .split(',')
                .map(|e| e.trim().to_string())
                .filter(|e| !e.is_empty())
                .collect();
            if !from_etcd.is_empty() {
                return from_etcd;
            }
        }
        vec![DEFAULT_ENDPOINT.to_string()]
    }

    /// The transport security flags.
    pub fn tls(&self) -> TlsFlags {
        TlsFlags {
            cacert: self.cacert.clone(),
            cert: self.cert.clone(),
            key: self.key.clone(),
            skip_verify: self.insecure_skip_tls_verify,
            insecure_transport: self.insecure_transport,
        }
    }

    /// The user name and password, when authentication was asked for:
    /// `--user name:password`, or `--user name --password secret`; the
    /// password is `None` when neither gives one (etcdctl then asks).
    pub fn credentials(&self) -> Option<(String, Option<String>)> {
        let user = self.user.as_ref()?;
        match (&self.password, user.split_once(':')) {
            (Some(password), _) => Some((user.clone(), Some(password.clone()))),
            (None, Some((name, password))) => Some((name.to_string(), Some(password.to_string()))),
            (None, None) => Some((user.clone(), None)),
        }
    }
}

/// Output formats, as etcdctl names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human-readable lines (etcdctl's default).
    Simple,
    /// The response as JSON, with etcd's field names.
    Json,
    /// A text table (member, endpoint and snapshot commands).
    Table,
    /// One `"Field" : value` line per field (KV commands).
    Fields,
}

impl Format {
    /// The name etcdctl gives the format, for error messages.
    pub fn name(self) -> &'static str {
        match self {
            Format::Simple => "simple",
            Format::Json => "json",
            Format::Table => "table",
            Format::Fields => "fields",
        }
    }
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Puts the given key into the store.
    Put(commands::kv::PutArgs),
    /// Gets the key or a range of keys.
    Get(commands::kv::GetArgs),
    /// Removes the specified key or range of keys [key, range_end).
    Del(commands::kv::DelArgs),
    /// Watches events stream on keys or prefixes.
    Watch(commands::watch::WatchArgs),
    /// Txn processes all the requests in one transaction.
    Txn(commands::txn::TxnArgs),
    /// Compacts the event history in etcd.
    Compaction(commands::compaction::CompactionArgs),
    /// Lease related commands.
    #[command(subcommand)]
    Lease(commands::lease::LeaseCommand),
    /// Acquires a named lock.
    Lock(commands::lock::LockArgs),
    /// Observes and participates in leader election.
    Elect(commands::elect::ElectArgs),
    /// Membership related commands.
    #[command(subcommand)]
    Member(commands::member::MemberCommand),
    /// Endpoint related commands.
    #[command(subcommand)]
    Endpoint(commands::endpoint::EndpointCommand),
    /// Manages snapshots.
    #[command(subcommand)]
    Snapshot(commands::snapshot::SnapshotCommand),
    /// Defragments the storage of the members with given endpoints.
    Defrag(commands::maintenance::DefragArgs),
    /// Alarm related commands.
    #[command(subcommand)]
    Alarm(commands::maintenance::AlarmCommand),
    /// Transfers leadership to another member.
    MoveLeader(commands::maintenance::MoveLeaderArgs),
    /// Enable or disable authentication.
    #[command(subcommand)]
    Auth(commands::auth::AuthCommand),
    /// User related commands.
    #[command(subcommand)]
    User(commands::user::UserCommand),
    /// Role related commands.
    #[command(subcommand)]
    Role(commands::role::RoleCommand),
    /// Prints the version of witanctl.
    Version,
    /// witan's barriers: wait until a barrier is lowered, raise, lower.
    #[command(subcommand)]
    Barrier(commands::barrier::BarrierCommand),
    /// witan's counting semaphores.
    #[command(subcommand)]
    Semaphore(commands::semaphore::SemaphoreCommand),
    /// The witan-bench load generator (`witanctl bench --help`).
    #[command(disable_help_flag = true)]
    Bench(commands::bench::BenchArgs),
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn endpoints_split_on_commas_and_keep_their_scheme_or_not() {
        let cli = Cli::parse_from([
            "witanctl",
            "--endpoints",
            "127.0.0.1:1,http://127.0.0.1:2",
            "version",
        ]);
        assert_eq!(
            cli.global.endpoints(),
            vec!["127.0.0.1:1".to_string(), "http://127.0.0.1:2".to_string()]
        );
    }

    #[test]
    fn global_flags_go_after_the_command_too() {
        let cli = Cli::parse_from([
            "witanctl",
            "get",
            "foo",
            "-w",
            "json",
            "--hex",
            "--command-timeout",
            "1s",
        ]);
        assert_eq!(cli.global.write_out, Format::Json);
        assert!(cli.global.hex);
        assert_eq!(cli.global.command_timeout, Duration::from_secs(1));
    }

    #[test]
    fn credentials_take_the_password_from_either_flag() {
        let cli = Cli::parse_from(["witanctl", "--user", "root:secret", "version"]);
        assert_eq!(
            cli.global.credentials(),
            Some(("root".to_string(), Some("secret".to_string())))
        );
        let cli = Cli::parse_from(["witanctl", "--user", "root", "--password", "a:b", "version"]);
        assert_eq!(
            cli.global.credentials(),
            Some(("root".to_string(), Some("a:b".to_string())))
        );
        let cli = Cli::parse_from(["witanctl", "--user", "root", "version"]);
        assert_eq!(cli.global.credentials(), Some(("root".to_string(), None)));
        let cli = Cli::parse_from(["witanctl", "version"]);
        assert_eq!(cli.global.credentials(), None);
    }

    #[test]
    fn a_global_user_is_not_taken_by_a_commands_user_argument() {
        let cli = Cli::parse_from([
            "witanctl",
            "--user",
            "root:pw",
            "user",
            "grant-role",
            "alice",
            "reader",
        ]);
        assert_eq!(cli.global.user.as_deref(), Some("root:pw"));
        let cli = Cli::parse_from(["witanctl", "--user", "root:pw", "user", "add", "alice"]);
        assert_eq!(cli.global.user.as_deref(), Some("root:pw"));
        let Command::User(commands::user::UserCommand::Add(args)) = cli.command else {
            panic!("user add parses as user add");
        };
        assert_eq!(args.name.as_deref(), Some("alice"));
    }

    #[test]
    fn tls_flags_are_etcdctls() {
        let cli = Cli::parse_from(["witanctl", "version"]);
        assert_eq!(
            cli.global.tls(),
            TlsFlags {
                insecure_transport: true,
                ..TlsFlags::default()
            }
        );
        let cli = Cli::parse_from([
            "witanctl",
            "--cacert",
            "ca.pem",
            "--cert=c.pem",
            "--key",
            "k.pem",
            "--insecure-skip-tls-verify",
            "--insecure-transport=false",
            "version",
        ]);
        assert_eq!(
            cli.global.tls(),
            TlsFlags {
                cacert: Some("ca.pem".into()),
                cert: Some("c.pem".into()),
                key: Some("k.pem".into()),
                skip_verify: true,
                insecure_transport: false,
            }
        );
        // A bare flag keeps etcdctl's meaning, and does not swallow the command.
        let cli = Cli::parse_from(["witanctl", "--insecure-transport", "version"]);
        assert!(cli.global.insecure_transport);
    }
}
