//! Database leader election: "database" processes campaign to be primary;
//! the primary proclaims its address and writes through its leadership's
//! fence, the replicas observe who leads and follow it.
//!
//! ```text
//! db-election node --name db1 --addr 10.0.0.1:5432   # one database process
//! db-election demo                                    # 3 nodes, kill the primary, check
//! ```
//!
//! Leadership is a key under the node's session lease; its create revision
//! is the leadership's fencing token. The primary's every write (here a
//! heartbeat record) is a Txn that succeeds only while its leadership key
//! still has that create revision, so a primary that lost its lease (killed,
//! paused, cut off) can no longer write, even before it notices. The demo
//! kills the primary with SIGKILL, measures how long until another node
//! leads (about the session TTL), and checks in the heartbeat's history
//! that no write of an older leadership ever follows one of a newer: at no
//! moment did two nodes act as primary with a valid token.

use std::process::{Child, Command as Process};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use futures::StreamExt;
use tokio::time::Instant;
use witan_client::{Client, Error, Fenced, Op, Session, WatchEvent};
use witan_examples::Endpoints;

/// The election's name.
const ELECTION: &[u8] = b"/examples/db-primary";
/// The record the primary keeps writing through its fence.
const HEARTBEAT: &str = "/examples/db-heartbeat";

#[derive(Parser)]
#[command(about = "Primary election for a replicated database, with fencing")]
struct Args {
    #[command(flatten)]
    endpoints: Endpoints,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// One database process: campaign, follow the primary until elected,
    /// then act as primary while the leadership holds.
    Node {
        /// The node's name.
        #[arg(long)]
        name: String,
        /// The address it serves clients at (what it proclaims).
        #[arg(long)]
        addr: String,
        /// Session TTL in seconds: how long a dead primary keeps the role.
        #[arg(long, default_value_t = 3)]
        ttl: i64,
    },
    /// Start three nodes, kill the primary, and check the hand-over.
    Demo {
        /// Session TTL of every node, in seconds.
        #[arg(long, default_value_t = 3)]
        ttl: i64,
    },
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let client = args.endpoints.connect().await?;
    match args.command {
        Command::Node { name, addr, ttl } => node(&client, &name, &addr, ttl).await,
        Command::Demo { ttl } => demo(&client, &args.endpoints, ttl).await,
    }
}

// ---- a database node -------------------------------------------------------

async fn node(client: &Client, name: &str, addr: &str, ttl: i64) -> Result<()> {
    let election = client.election(ELECTION);
    loop {
        let session = Session::new(client, ttl).await?;
        // Follow whoever leads while campaigning.
        let follower = tokio::spawn(follow(client.clone(), name.to_string()));
        let campaign = election.campaign(&session, addr).await;
        follower.abort();
        let leadership = match campaign {
            Ok(won) => won,
            Err(e) => {
                println!("{name}: campaign failed ({e}); campaigning again");
                continue;
            }
        };
        let token = leadership.token();
        println!("{name}: PRIMARY with token {token}, serving at {addr}");
        let lost = session.lost();
        tokio::pin!(lost);
        loop {
            tokio::select! {
                why = &mut lost => {
                    println!("{name}: session lost ({why:?}): no longer primary");
                    break;
                }
                () = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
            // A write as primary, through the leadership's fence.
            let fenced = leadership
                .fenced()
                .then([Op::put(HEARTBEAT, format!("{name} {token}"))])
                .commit()
                .await;
            match fenced {
                Ok(Fenced::Applied(_)) => {}
                Ok(Fenced::Lost { .. } | Fenced::Failed(_)) => {
                    println!("{name}: fenced write refused: no longer primary");
                    break;
                }
                Err(e) => println!("{name}: write failed ({e}); retrying"),
            }
        }
    }
}

/// Prints every change of primary until aborted.
async fn follow(client: Client, name: String) {
    let mut updates = client.election(ELECTION).observe();
    while let Some(update) = updates.next().await {
        match update {
            Ok(leader) => println!(
                "{name}: replica, following the primary at {}",
                String::from_utf8_lossy(&leader.value)
            ),
            Err(e) => {
                println!("{name}: observing failed: {e}");
                return;
            }
        }
    }
}

// ---- the demo ---------------------------------------------------------------

/// The leader's key and proclaimed address, if anyone leads.
async fn current_leader(client: &Client) -> Result<Option<(Vec<u8>, String)>> {
    match client.election(ELECTION).leader().await {
        Ok(leader) => Ok(Some((
            leader.key,
            String::from_utf8_lossy(&leader.value).into_owned(),
        ))),
        Err(Error::NoLeader) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

async fn wait_for_leader(client: &Client, other_than: Option<&[u8]>) -> Result<(Vec<u8>, String)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some((key, addr)) = current_leader(client).await? {
            if other_than != Some(key.as_slice()) {
                return Ok((key, addr));
            }
        }
        if Instant::now() > deadline {
            bail!("no new primary within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn demo(client: &Client, endpoints: &Endpoints, ttl: i64) -> Result<()> {
    let exe = std::env::current_exe()?;
    let start = client.get(HEARTBEAT).await?.header.revision;
    let nodes: Vec<(String, String)> = (1..=3)
        .map(|i| (format!("db{i}"), format!("127.0.0.1:{}", 5431 + i)))
        .collect();
    let mut children: Vec<Child> = Vec::new();
    for (name, addr) in &nodes {
        children.push(
            Process::new(&exe)
                .arg("--endpoints")
                .arg(endpoints.endpoints.join(","))
                .args([
                    "node",
                    "--name",
                    name,
                    "--addr",
                    addr,
                    "--ttl",
                    &ttl.to_string(),
                ])
                .spawn()?,
        );
    }
    let outcome = run_demo(client, &nodes, &mut children, start).await;
    for child in &mut children {
        let _ = child.kill();
        let _ = child.wait();
    }
    outcome
}

async fn run_demo(
    client: &Client,
    nodes: &[(String, String)],
    children: &mut [Child],
    start: i64,
) -> Result<()> {
    let (first_key, first_addr) = wait_for_leader(client, None).await?;
    let primary = nodes
        .iter()
        .position(|(_, addr)| *addr == first_addr)
        .context("the leader proclaimed an unknown address")?;
    // Let the primary write for a while, then kill it without warning.
    tokio::time::sleep(Duration::from_secs(1)).await;
    println!("demo: killing the primary {} (SIGKILL)", nodes[primary].0);
    children[primary].kill()?;
    children[primary].wait()?;
    let killed = Instant::now();
    let (_, next_addr) = wait_for_leader(client, Some(&first_key)).await?;
    let took = killed.elapsed();
    let next = nodes
        .iter()
        .find(|(_, addr)| *addr == next_addr)
        .context("the new leader proclaimed an unknown address")?;
    println!("demo: {} took over {took:.1?} after the kill", next.0);
    tokio::time::sleep(Duration::from_secs(1)).await;
    check_heartbeats(client, start).await
}

/// Reads the heartbeat's history since `start` and checks that leadership
/// tokens never went back: once a newer primary wrote, no older one did.
async fn check_heartbeats(client: &Client, start: i64) -> Result<()> {
    let last = client.get(HEARTBEAT).await?;
    let now = last
        .kvs
        .first()
        .context("no heartbeat written")?
        .mod_revision;
    let mut events = client.watch(HEARTBEAT).start_revision(start + 1).await?;
    let (mut writes, mut newest, mut writers) = (0, 0i64, Vec::new());
    while let Some(event) = events.next().await {
        let event = event?;
        let revision = event.kv().mod_revision;
        if let WatchEvent::Put { kv, .. } = &event {
            let text = String::from_utf8_lossy(&kv.value).into_owned();
            let (who, token) = text.split_once(' ').context("malformed heartbeat")?;
            let token: i64 = token.parse()?;
            if token < newest {
                bail!("{who} wrote with token {token} after token {newest} had written: two primaries");
            }
            if token > newest {
                writers.push(format!("{who} (token {token})"));
            }
            newest = token;
            writes += 1;
        }
        if revision >= now {
            break;
        }
    }
    println!(
        "demo: {writes} fenced primary writes, by {} in turn; no write of an older leadership after a newer one",
        writers.join(", then ")
    );
    Ok(())
}
