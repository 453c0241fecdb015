//! The command line: options every workload shares ([`Global`]), one
//! subcommand per workload with its own options, and [`Setup`], the
//! shared options checked and completed with the workload's defaults.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::error::BenchError;
use crate::keys::{self, KeyOrder};
use crate::pace::Stop;
use crate::report::Report;

/// Load generator for etcd v3 API servers (witan, etcd).
#[derive(Debug, Parser)]
#[command(name = "witan-bench", version, about, long_about = None)]
pub struct Cli {
    /// Options every workload takes.
    #[command(flatten)]
    pub global: Global,
    /// The workload to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every workload takes (before or after the subcommand).
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// Client URLs, comma-separated (`http://` is assumed when missing).
    #[arg(
        long,
        global = true,
        value_delimiter = ',',
        default_value = "http://127.0.0.1:2379",
        env = "WITAN_BENCH_ENDPOINTS"
    )]
    pub endpoints: Vec<String>,
    /// gRPC connections (HTTP/2) to open; connection i goes to endpoint
    /// i mod endpoints.
    #[arg(long, global = true, default_value_t = 1)]
    pub conns: usize,
    /// Concurrent clients, each one operation at a time; client i uses
    /// connection i mod conns.
    #[arg(long, global = true, default_value_t = 1)]
    pub clients: usize,
    /// Stop after this many operations (default depends on the workload).
    #[arg(long, global = true, conflicts_with = "duration")]
    pub total: Option<u64>,
    /// Stop after this long, e.g. `10s` (instead of --total).
    #[arg(long, global = true, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Limit on operations started per second, over all clients
    /// (default: none, except watch: 100 puts/s, failover: 500 writes/s).
    #[arg(long, global = true)]
    pub rate: Option<f64>,
    /// Give up on one request after this long (default 10s; failover 1s).
    #[arg(long, global = true, value_parser = humantime::parse_duration)]
    pub timeout: Option<Duration>,
    /// Prefix of every key the run writes (default: a fresh
    /// `witan-bench/<random>/` per run).
    #[arg(long, global = true)]
    pub prefix: Option<String>,
    /// A name for this run, carried into the report (`compare` pairs
    /// runs by it).
    #[arg(long, global = true)]
    pub label: Option<String>,
    /// Print the report as one JSON object on one line.
    #[arg(long, global = true)]
    pub json: bool,
    /// Also append the report, as one JSON line, to this file.
    #[arg(long, global = true)]
    pub json_file: Option<PathBuf>,
    /// No progress bar (there is none anyway with --json or when stderr
    /// is not a terminal).
    #[arg(long, global = true)]
    pub no_progress: bool,
}

/// What to do: run a workload, or compare saved reports.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// A workload against the endpoints.
    #[command(flatten)]
    Workload(Workload),
    /// Side-by-side table of two sets of JSON reports (see compare.sh).
    Compare(CompareArgs),
}

/// The workloads.
#[derive(Debug, Subcommand)]
pub enum Workload {
    /// Put keys (sequential or random) of a given key and value size.
    Put(PutArgs),
    /// Get single keys out of a preloaded set.
    Range(RangeArgs),
    /// Compare-and-swap: read a key's value and mod_revision, then a Txn
    /// that puts a new value only if mod_revision is unchanged.
    TxnCas(TxnCasArgs),
    /// Keep leases alive over LeaseKeepAlive streams, one per client.
    LeaseKeepalive(LeaseArgs),
    /// One writer, many watchers on its prefix: latency from each put's
    /// acknowledgement to its event at every watcher.
    Watch(WatchArgs),
    /// Lock/unlock cycles through the Lock service (v3lockpb).
    Lock(ContendArgs),
    /// Campaign/resign cycles through the Election service (v3electionpb).
    Election(ContendArgs),
    /// Steady writes over every endpoint while the leader is killed: the
    /// longest time without a successful write.
    Failover(FailoverArgs),
}

/// `put` options.
#[derive(Debug, Clone, Args)]
pub struct PutArgs {
    /// Bytes per key, prefix included.
    #[arg(long, default_value_t = 32)]
    pub key_size: usize,
    /// Bytes per value.
    #[arg(long, default_value_t = 256)]
    pub val_size: usize,
    /// Distinct keys to write (default: as many as the key size allows,
    /// so sequential keys never repeat).
    #[arg(long)]
    pub key_space: Option<u64>,
    /// Key order.
    #[arg(long, value_enum, default_value_t = KeyOrder::Sequential)]
    pub keys: KeyOrder,
}

/// Read consistency, as etcdctl spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Consistency {
    /// Linearizable: through the leader's read barrier.
    #[value(name = "l", alias = "linearizable")]
    Linearizable,
    /// Serializable: the member's local state, maybe stale.
    #[value(name = "s", alias = "serializable")]
    Serializable,
}

/// `range` options.
#[derive(Debug, Clone, Args)]
pub struct RangeArgs {
    /// Read consistency.
    #[arg(long, value_enum, default_value_t = Consistency::Linearizable)]
    pub consistency: Consistency,
    /// Keys written before the run; each read gets one of them at random.
    #[arg(long, default_value_t = 1000)]
    pub keys: u64,
    /// Bytes per key, prefix included.
    #[arg(long, default_value_t = 32)]
    pub key_size: usize,
    /// Bytes per value.
    #[arg(long, default_value_t = 256)]
    pub val_size: usize,
}

/// `txn-cas` options.
#[derive(Debug, Clone, Args)]
pub struct TxnCasArgs {
    /// Keys the clients contend on (written before the run).
    #[arg(long, default_value_t = 1000)]
    pub keys: u64,
    /// Bytes per key, prefix included.
    #[arg(long, default_value_t = 32)]
    pub key_size: usize,
    /// Bytes per value.
    #[arg(long, default_value_t = 64)]
    pub val_size: usize,
}

/// `lease-keepalive` options.
#[derive(Debug, Clone, Args)]
pub struct LeaseArgs {
    /// Leases granted before the run and kept alive in turn.
    #[arg(long, default_value_t = 1000)]
    pub leases: u64,
    /// TTL of each lease, in seconds.
    #[arg(long, default_value_t = 60)]
    pub ttl: i64,
}

/// `watch` options. The watchers use the first endpoint over --conns
/// connections; the writer uses the second endpoint (the first when there
/// is one). --total is the number of puts.
#[derive(Debug, Clone, Args)]
pub struct WatchArgs {
    /// Watchers, each its own watch stream on the run's prefix.
    #[arg(long, default_value_t = 100)]
    pub watchers: usize,
    /// Bytes per value.
    #[arg(long, default_value_t = 64)]
    pub val_size: usize,
    /// How long to wait after the last put for every watcher to see it.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
    pub drain_timeout: Duration,
}

/// `lock` and `election` options. Every client contends with its own
/// connection and lease (--conns does not apply); client i uses endpoint
/// i mod endpoints and name i mod names.
#[derive(Debug, Clone, Args)]
pub struct ContendArgs {
    /// Lock or election names the clients are spread over.
    #[arg(long, default_value_t = 1)]
    pub names: usize,
    /// TTL of each client's lease, in seconds (kept alive during the run).
    #[arg(long, default_value_t = 30)]
    pub ttl: i64,
}

/// `failover` options. Each client writes to its endpoint and moves to
/// the next one when a write fails or times out.
#[derive(Debug, Clone, Args)]
pub struct FailoverArgs {
    /// Shell command (`sh -c`) that kills the leader, run once at
    /// --kill-after with WITAN_BENCH_LEADER_ENDPOINT and
    /// WITAN_BENCH_LEADER_ID (hex) set. Without it, kill it yourself.
    #[arg(long)]
    pub kill_leader_cmd: Option<String>,
    /// When to run --kill-leader-cmd (default: a third into the run).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub kill_after: Option<Duration>,
    /// Bytes per value.
    #[arg(long, default_value_t = 256)]
    pub val_size: usize,
}

/// `compare` options.
#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// The server measured: NAME=FILE of JSON reports (one per line).
    #[arg(long, value_parser = parse_named_file)]
    pub candidate: (String, PathBuf),
    /// The server compared against: NAME=FILE.
    #[arg(long, value_parser = parse_named_file)]
    pub baseline: (String, PathBuf),
    /// A row: `LABEL METRIC [>=RATIO|<=RATIO]`, e.g.
    /// `put-256 put.ops_per_sec >=2.0`. METRIC is OP.FIELD (FIELD one of
    /// count, errors, ops_per_sec, mean_ms, p50_ms, p90_ms, p99_ms,
    /// max_ms) or an extra number's name. Repeatable.
    #[arg(long = "row", required = true)]
    pub rows: Vec<String>,
}

fn parse_named_file(arg: &str) -> Result<(String, PathBuf), &'static str> {
    match arg.split_once('=') {
        Some((name, path)) if !name.is_empty() && !path.is_empty() => {
            Ok((name.to_owned(), PathBuf::from(path)))
        }
        _ => Err("expected NAME=FILE"),
    }
}

/// What a workload assumes when an option is not given.
#[derive(Debug, Clone, Copy)]
pub struct Defaults {
    /// When the run ends.
    pub stop: Stop,
    /// Operations per second, if limited.
    pub rate: Option<f64>,
    /// Per-request timeout.
    pub timeout: Duration,
}

/// The shared options, checked and completed.
#[derive(Debug, Clone)]
pub struct Setup {
    /// Client URLs, each with a scheme.
    pub endpoints: Vec<String>,
    /// Connections to open.
    pub conns: usize,
    /// Concurrent clients.
    pub clients: usize,
    /// When the run ends.
    pub stop: Stop,
    /// Operations per second, if limited.
    pub rate: Option<f64>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Prefix of every key the run writes.
    pub prefix: String,
    /// The run's label.
    pub label: Option<String>,
    /// Whether to draw a progress bar.
    pub progress: bool,
}

impl Global {
    /// Checks the options and completes them with `defaults`.
    pub fn setup(&self, defaults: Defaults) -> Result<Setup, BenchError> {
        let invalid = |option, why| Err(BenchError::InvalidOption { option, why });
        let endpoints: Vec<String> = self
            .endpoints
            .iter()
            .map(|e| e.trim())
            .filter(|e| !e.is_empty())
            .map(with_scheme)
            .collect();
        if endpoints.is_empty() {
            return invalid("endpoints", "give at least one client URL");
        }
        if self.conns == 0 {
            return invalid("conns", "must be at least 1");
        }
        if self.clients == 0 {
            return invalid("clients", "must be at least 1");
        }
        let stop = match (self.total, self.duration) {
            (Some(0), _) => return invalid("total", "must be at least 1"),
            (Some(total), _) => Stop::Total(total),
            (None, Some(d)) if d.is_zero() => return invalid("duration", "must be positive"),
            (None, Some(d)) => Stop::After(d),
            (None, None) => defaults.stop,
        };
        let rate = self.rate.or(defaults.rate);
        if rate.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
            return invalid("rate", "must be a positive number of operations per second");
        }
        let timeout = self.timeout.unwrap_or(defaults.timeout);
        if timeout.is_zero() {
            return invalid("timeout", "must be positive");
        }
        Ok(Setup {
            endpoints,
            conns: self.conns,
            clients: self.clients,
            stop,
            rate,
            timeout,
            prefix: self.prefix.clone().unwrap_or_else(keys::run_prefix),
            label: self.label.clone(),
            progress: !self.json && !self.no_progress,
        })
    }
}

/// `host:port` becomes `http://host:port`, as etcdctl takes it.
fn with_scheme(endpoint: &str) -> String {
    if endpoint.contains("://") {
        endpoint.to_owned()
    } else {
        format!("http://{endpoint}")
    }
}

impl Setup {
    /// A report for `workload` with the shared settings filled in.
    pub fn report(&self, workload: &str) -> Report {
        let mut report = Report::new(workload);
        report.label = self.label.clone();
        report
            .param("endpoints", self.endpoints.join(","))
            .param("conns", self.conns)
            .param("clients", self.clients);
        match self.stop {
            Stop::Total(total) => report.param("total", total),
            Stop::After(d) => report.param("duration", humantime::format_duration(d).to_string()),
        };
        if let Some(rate) = self.rate {
            report.param("rate", rate);
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("witan-bench").chain(args.iter().copied())).unwrap()
    }

    const DEFAULTS: Defaults = Defaults {
        stop: Stop::Total(10_000),
        rate: None,
        timeout: Duration::from_secs(10),
    };

    #[test]
    fn global_options_go_before_or_after_the_workload() {
        let before = parse(&[
            "--endpoints",
            "a:1,b:2",
            "--clients",
            "8",
            "put",
            "--val-size",
            "10",
        ]);
        let after = parse(&[
            "put",
            "--val-size",
            "10",
            "--endpoints",
            "a:1,b:2",
            "--clients",
            "8",
        ]);
        for cli in [before, after] {
            assert_eq!(cli.global.endpoints, vec!["a:1", "b:2"]);
            assert_eq!(cli.global.clients, 8);
            match cli.command {
                Command::Workload(Workload::Put(put)) => {
                    assert_eq!(put.val_size, 10);
                    assert_eq!(put.key_size, 32);
                    assert_eq!(put.keys, KeyOrder::Sequential);
                }
                other => panic!("parsed as {other:?}"),
            }
        }
    }

    #[test]
    fn workload_options_parse() {
        match parse(&["range", "--consistency", "s", "--keys", "5"]).command {
            Command::Workload(Workload::Range(r)) => {
                assert_eq!(r.consistency, Consistency::Serializable);
                assert_eq!(r.keys, 5);
            }
            other => panic!("parsed as {other:?}"),
        }
        match parse(&["range", "--consistency", "linearizable"]).command {
            Command::Workload(Workload::Range(r)) => {
                assert_eq!(r.consistency, Consistency::Linearizable)
            }
            other => panic!("parsed as {other:?}"),
        }
        match parse(&["put", "--keys", "random", "--key-space", "100"]).command {
            Command::Workload(Workload::Put(p)) => {
                assert_eq!(p.keys, KeyOrder::Random);
                assert_eq!(p.key_space, Some(100));
            }
            other => panic!("parsed as {other:?}"),
        }
        match parse(&["lock", "--names", "64", "--clients", "64"]).command {
            Command::Workload(Workload::Lock(c)) => assert_eq!(c.names, 64),
            other => panic!("parsed as {other:?}"),
        }
        match parse(&[
            "failover",
            "--kill-leader-cmd",
            "kill -9 1",
            "--kill-after",
            "3s",
        ])
        .command
        {
            Command::Workload(Workload::Failover(f)) => {
                assert_eq!(f.kill_leader_cmd.as_deref(), Some("kill -9 1"));
                assert_eq!(f.kill_after, Some(Duration::from_secs(3)));
            }
            other => panic!("parsed as {other:?}"),
        }
        match parse(&[
            "compare",
            "--candidate",
            "witan=w.jsonl",
            "--baseline",
            "etcd=e.jsonl",
            "--row",
            "a b",
        ])
        .command
        {
            Command::Compare(c) => {
                assert_eq!(c.candidate, ("witan".into(), PathBuf::from("w.jsonl")));
                assert_eq!(c.rows, vec!["a b"]);
            }
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn bad_command_lines_are_refused() {
        let refused = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("witan-bench").chain(args.iter().copied())).is_err()
        };
        assert!(refused(&["put", "--total", "5", "--duration", "1s"]));
        assert!(refused(&["range", "--consistency", "x"]));
        assert!(refused(&["put", "--duration", "soon"]));
        assert!(refused(&[
            "compare",
            "--candidate",
            "nofile",
            "--baseline",
            "e=f",
            "--row",
            "a b"
        ]));
        assert!(refused(&["frobnicate"]));
    }

    #[test]
    fn setup_fills_in_defaults_and_schemes() {
        let cli = parse(&["put", "--endpoints", "127.0.0.1:1, https://h:2"]);
        let setup = cli.global.setup(DEFAULTS).unwrap();
        assert_eq!(setup.endpoints, vec!["http://127.0.0.1:1", "https://h:2"]);
        assert_eq!(setup.stop, Stop::Total(10_000));
        assert_eq!(setup.timeout, Duration::from_secs(10));
        assert!(setup.prefix.starts_with("witan-bench/"));
        assert!(setup.progress);

        let cli = parse(&[
            "put",
            "--duration",
            "2s",
            "--rate",
            "50",
            "--prefix",
            "p/",
            "--json",
        ]);
        let setup = cli.global.setup(DEFAULTS).unwrap();
        assert_eq!(setup.stop, Stop::After(Duration::from_secs(2)));
        assert_eq!(setup.rate, Some(50.0));
        assert_eq!(setup.prefix, "p/");
        assert!(!setup.progress);
    }

    #[test]
    fn setup_refuses_values_that_cannot_work() {
        for args in [
            &["put", "--conns", "0"][..],
            &["put", "--clients", "0"],
            &["put", "--total", "0"],
            &["put", "--duration", "0s"],
            &["put", "--rate", "0"],
            &["put", "--rate=-3"],
            &["put", "--timeout", "0s"],
            &["put", "--endpoints", ","],
        ] {
            let cli = parse(args);
            assert!(
                matches!(
                    cli.global.setup(DEFAULTS),
                    Err(BenchError::InvalidOption { .. })
                ),
                "{args:?} accepted"
            );
        }
    }

    #[test]
    fn the_report_carries_the_settings() {
        let cli = parse(&["put", "--clients", "4", "--duration", "3s", "--label", "x"]);
        let report = cli.global.setup(DEFAULTS).unwrap().report("put");
        assert_eq!(report.label.as_deref(), Some("x"));
        assert_eq!(report.params["clients"], 4);
        assert_eq!(report.params["duration"], "3s");
        assert_eq!(report.params["endpoints"], "http://127.0.0.1:2379");
    }
}
