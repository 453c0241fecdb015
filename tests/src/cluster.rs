//! Real witan clusters for tests: every member is its own OS process with its
//! own data dir and free loopback ports, so faults are real (SIGKILL,
//! SIGSTOP, restart from the data dir). Every process a cluster starts is
//! killed when it is dropped, even when the test fails; a failing test also
//! prints the tail of each member's log.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use etcd_client::{Client, ConnectOptions, GetOptions};
use tokio::time::Instant;

/// Settings for a test cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Number of members.
    pub size: usize,
    /// `--heartbeat-interval` in ms.
    pub heartbeat_ms: u64,
    /// `--election-timeout` in ms.
    pub election_ms: u64,
    /// More flags for every member.
    pub extra_args: Vec<String>,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            size: 3,
            heartbeat_ms: 50,
            election_ms: 500,
            extra_args: Vec::new(),
        }
    }
}

/// One member process.
struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    data_dir: PathBuf,
    log_path: PathBuf,
    child: Option<Child>,
}

/// A running cluster of member processes.
pub struct Cluster {
    binary: PathBuf,
    options: ClusterOptions,
    initial_cluster: String,
    members: Vec<Member>,
    // Kept last so the directories outlive the processes using them.
    _dir: tempfile::TempDir,
}

/// Free loopback ports, reserved all at once so none repeats.
fn free_ports(count: usize) -> Result<Vec<u16>> {
    let listeners: Vec<TcpListener> = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<_>>()?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

impl Cluster {
    /// Starts a cluster of `options.size` members of `binary` and waits until
    /// every member serves linearizable reads.
    pub async fn start(binary: &str, options: ClusterOptions) -> Result<Cluster> {
        let dir = tempfile::tempdir()?;
        let ports = free_ports(options.size * 2)?;
        let members: Vec<Member> = (0..options.size)
            .map(|i| {
                let name = format!("m{}", i + 1);
                Member {
                    data_dir: dir.path().join(format!("{name}.data")),
                    log_path: dir.path().join(format!("{name}.log")),
                    name,
                    client_port: ports[2 * i],
                    peer_port: ports[2 * i + 1],
                    child: None,
                }
            })
            .collect();
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer_port))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = Cluster {
            binary: PathBuf::from(binary),
            options,
            initial_cluster,
            members,
            _dir: dir,
        };
        for i in 0..cluster.members.len() {
            cluster.start_member(i)?;
        }
        cluster.wait_all_ready(Duration::from_secs(30)).await?;
        Ok(cluster)
    }

    /// Number of members.
    pub fn size(&self) -> usize {
        self.members.len()
    }

    /// The client URL of member `i`.
    pub fn endpoint(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.members[i].client_port)
    }

    /// Every client URL.
    pub fn endpoints(&self) -> Vec<String> {
        (0..self.size()).map(|i| self.endpoint(i)).collect()
    }

    /// The data dir of member `i`.
    pub fn data_dir(&self, i: usize) -> &Path {
        &self.members[i].data_dir
    }

    /// Starts (or restarts, from its data dir) member `i`'s process.
    pub fn start_member(&mut self, i: usize) -> Result<()> {
        let m = &self.members[i];
        if m.child.is_some() {
            bail!("member {} is already running", m.name);
        }
        let log = File::options()
            .create(true)
            .append(true)
            .open(&m.log_path)?;
        let client_url = format!("http://127.0.0.1:{}", m.client_port);
        let peer_url = format!("http://127.0.0.1:{}", m.peer_port);
        let child = Command::new(&self.binary)
            .args(["--name", &m.name])
            .arg("--data-dir")
            .arg(&m.data_dir)
            .args(["--listen-client-urls", &client_url])
            .args(["--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &self.initial_cluster])
            .args([
                "--heartbeat-interval",
                &self.options.heartbeat_ms.to_string(),
            ])
            .args(["--election-timeout", &self.options.election_ms.to_string()])
            .arg("--unsafe-fault-injection")
            .args(&self.options.extra_args)
            .env("WITAN_LOG_LEVEL", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("spawning {}", self.binary.display()))?;
        self.members[i].child = Some(child);
        Ok(())
    }

    /// Kills member `i` with SIGKILL (no clean shutdown) and reaps it.
    pub fn kill(&mut self, i: usize) -> Result<()> {
        if let Some(mut child) = self.members[i].child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// Stops member `i` with SIGTERM and waits for it to exit, at most
    /// `within`; returns whether it exited successfully (a clean shutdown).
    pub async fn terminate(&mut self, i: usize, within: Duration) -> Result<bool> {
        let Some(mut child) = self.members[i].child.take() else {
            bail!("member {} is not running", self.members[i].name);
        };
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()?;
        if !status.success() {
            bail!("kill -TERM failed: {status}");
        }
        let deadline = Instant::now() + within;
        loop {
            if let Some(exit) = child.try_wait()? {
                return Ok(exit.success());
            }
            if Instant::now() >= deadline {
                child.kill()?;
                child.wait()?;
                bail!(
                    "member {} ignored SIGTERM for {within:?}",
                    self.members[i].name
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Whether member `i`'s process is running.
    pub fn is_running(&self, i: usize) -> bool {
        self.members[i].child.is_some()
    }

    /// A client talking to member `i` only.
    pub async fn client(&self, i: usize) -> Result<Client> {
        let options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(2))
            .with_timeout(Duration::from_secs(10));
        Ok(Client::connect([self.endpoint(i)], Some(options)).await?)
    }

    /// Waits until member `i` answers a linearizable read.
    pub async fn wait_ready(&self, i: usize, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        let mut last_err = anyhow!("never tried");
        while Instant::now() < deadline {
            match self.client(i).await {
                Ok(mut client) => match client.get("witan-test/ready", None).await {
                    Ok(_) => return Ok(()),
                    Err(e) => last_err = e.into(),
                },
                Err(e) => last_err = e,
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(last_err.context(format!(
            "member {} not ready within {within:?}",
            self.members[i].name
        )))
    }

    /// Waits until every running member answers a linearizable read.
    pub async fn wait_all_ready(&self, within: Duration) -> Result<()> {
        for i in 0..self.size() {
            if self.is_running(i) {
                self.wait_ready(i, within).await?;
            }
        }
        Ok(())
    }

    /// The index of the leader, once the running members agree on one.
    pub async fn leader(&self, within: Duration) -> Result<usize> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(leader) = self.agreed_leader().await {
                return Ok(leader);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("running members did not agree on a leader within {within:?}")
    }

    async fn agreed_leader(&self) -> Option<usize> {
        let mut ids = Vec::new();
        let mut leaders = Vec::new();
        for i in 0..self.size() {
            if !self.is_running(i) {
                ids.push(None);
                continue;
            }
            let mut client = self.client(i).await.ok()?;
            let status = client.status().await.ok()?;
            ids.push(status.header().map(|h| h.member_id()));
            leaders.push(status.leader());
        }
        let first = *leaders.first()?;
        if first == 0 || leaders.iter().any(|l| *l != first) {
            return None;
        }
        ids.iter().position(|id| *id == Some(first))
    }

    /// Member `i`'s raft id, as it reports it.
    pub async fn member_id(&self, i: usize) -> Result<u64> {
        let mut client = self.client(i).await?;
        let status = client.status().await?;
        status
            .header()
            .map(|h| h.member_id())
            .context("status without header")
    }

    /// Cuts member `i` off from every other member, both ways, through the
    /// members' fault-injecting transport.
    pub async fn isolate(&self, i: usize) -> Result<()> {
        let mut ids = Vec::new();
        for j in 0..self.size() {
            ids.push(self.member_id(j).await?);
        }
        for j in 0..self.size() {
            let blocked = if j == i {
                ids.iter()
                    .enumerate()
                    .filter(|(k, _)| *k != i)
                    .map(|(_, id)| *id)
                    .collect()
            } else {
                vec![ids[i]]
            };
            self.set_partition(j, blocked).await?;
        }
        Ok(())
    }

    /// Restores every link cut by [`Cluster::isolate`].
    pub async fn heal(&self) -> Result<()> {
        for j in 0..self.size() {
            if self.is_running(j) {
                self.set_partition(j, Vec::new()).await?;
            }
        }
        Ok(())
    }

    async fn set_partition(&self, i: usize, blocked: Vec<u64>) -> Result<()> {
        use witan_proto::raftpb::fault_injection_client::FaultInjectionClient;
        let url = format!("http://127.0.0.1:{}", self.members[i].peer_port);
        let mut client = FaultInjectionClient::connect(url).await?;
        client
            .set_partition(witan_proto::raftpb::SetPartitionRequest { blocked })
            .await?;
        Ok(())
    }

    /// Reads `key`'s value from member `i` with a serializable (local) read.
    pub async fn local_get(&self, i: usize, key: &str) -> Result<Option<Vec<u8>>> {
        let mut client = self.client(i).await?;
        let response = client
            .get(key, Some(GetOptions::new().with_serializable()))
            .await?;
        Ok(response.kvs().first().map(|kv| kv.value().to_vec()))
    }

    fn print_logs(&self) {
        for m in &self.members {
            eprintln!(
                "----- last lines of {} ({}) -----",
                m.name,
                m.log_path.display()
            );
            if let Ok(file) = File::open(&m.log_path) {
                let lines: Vec<String> =
                    BufReader::new(file).lines().map_while(Result::ok).collect();
                for line in lines.iter().skip(lines.len().saturating_sub(40)) {
                    eprintln!("{line}");
                }
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.print_logs();
        }
        for i in 0..self.members.len() {
            let _ = self.kill(i);
        }
    }
}
