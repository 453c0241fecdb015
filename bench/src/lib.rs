//! witan-bench: a load generator for servers of the etcd v3 API. It speaks
//! only that API (through `witan_proto`'s generated clients), so the same
//! workload runs against witan and against etcd, which is how
//! `bench/compare.sh` puts them side by side.
//!
//! The map: `cli` (options, [`cli::Setup`]), `workload` (one file per
//! workload, run by [`workload::run`]), `pace` and `rate` (how long and
//! how fast), `stats` (HDR histograms per operation), `report` (a run's
//! results, as a table or a JSON line), `compare` (two servers' reports
//! side by side), `run` (one run, as the binary and `witanctl bench`
//! make it), `conn` (connections and timed calls), `keys` (key layout),
//! `progress` (the bar on stderr), `table` (text tables).
//! A failed operation during a run is counted, never fatal; only setup
//! failures end a run ([`error::BenchError`]).

pub mod cli;
pub mod compare;
pub mod conn;
pub mod error;
pub mod keys;
pub mod pace;
pub mod progress;
pub mod rate;
pub mod report;
pub mod run;
pub mod stats;
pub mod table;
pub mod workload;
