//! Feature flags: an app that reconfigures live when a flag under
//! `/flags/` changes, and a command that flips flags.
//!
//! ```text
//! feature-flags watch                 # the app: current flags, then every change
//! feature-flags set checkout-v2 true  # any JSON value: true, 42, "blue", {"pct": 10}
//! feature-flags unset checkout-v2
//! ```
//!
//! The app reads every flag at one revision, then watches from the next
//! one: no change falls between the read and the watch. The SDK's watch
//! resumes on another member from the last revision it delivered when its
//! member goes away, so a member restart under the app loses no change and
//! shows none twice.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use futures::StreamExt;
use serde_json::Value;
use witan_client::{Error, KeySpaceEvent};
use witan_examples::Endpoints;

/// Where the flags live.
const PREFIX: &str = "/flags/";

#[derive(Parser)]
#[command(about = "Feature flags kept in witan, applied live")]
struct Args {
    #[command(flatten)]
    endpoints: Endpoints,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the app: print the flags, then apply every change as it happens.
    Watch,
    /// Set a flag to a JSON value (a bare word is taken as a string).
    Set {
        /// The flag's name.
        name: String,
        /// Its value.
        value: String,
    },
    /// Remove a flag.
    Unset {
        /// The flag's name.
        name: String,
    },
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let client = args.endpoints.connect().await.context("connecting")?;
    let flags = client.keyspace::<Value>(PREFIX);
    match args.command {
        Command::Set { name, value } => {
            let value = serde_json::from_str(&value).unwrap_or(Value::String(value));
            let revision = idempotent(|| flags.put(&name, &value)).await?;
            println!("{name} = {value} (revision {revision})");
        }
        Command::Unset { name } => {
            idempotent(|| flags.delete(&name)).await?;
            println!("{name} unset");
        }
        Command::Watch => {
            let listing = flags.list().await?;
            let mut current: BTreeMap<String, Value> = listing
                .entries
                .into_iter()
                .map(|(name, v)| (name, v.value))
                .collect();
            println!("flags at revision {}: {}", listing.revision, show(&current));
            let mut changes = flags.watch(listing.revision + 1).await?;
            while let Some(change) = changes.next().await {
                match change? {
                    KeySpaceEvent::Put { name, value } => {
                        let before = current.insert(name.clone(), value.value.clone());
                        let was = before.map_or("unset".to_string(), |v| v.to_string());
                        println!(
                            "revision {}: {name}: {was} -> {}; now {}",
                            value.mod_revision,
                            value.value,
                            show(&current)
                        );
                    }
                    KeySpaceEvent::Delete { name, revision } => {
                        current.remove(&name);
                        println!("revision {revision}: {name} unset; now {}", show(&current));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Runs a write that may safely be repeated (setting a flag to a value,
/// removing it) until it is known to have taken effect. The SDK repeats a
/// write on its own only when it certainly never took effect; when a
/// leader dies under it the outcome is unknown, and for these writes a
/// second attempt is harmless.
async fn idempotent<T, F, Fut>(mut write: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Error>>,
{
    let mut attempts = 0;
    loop {
        match write().await {
            Err(Error::OutcomeUnknown { .. } | Error::Unavailable { .. } | Error::Timeout)
                if attempts < 5 =>
            {
                attempts += 1;
            }
            result => return Ok(result?),
        }
    }
}

/// The flags in one line, as the app would apply them.
fn show(flags: &BTreeMap<String, Value>) -> String {
    if flags.is_empty() {
        return "{}".to_string();
    }
    let parts: Vec<String> = flags.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{{{}}}", parts.join(", "))
}
