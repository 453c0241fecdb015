//! Real witan clusters for tests: every member is its own OS process with its
//! own data dir and free loopback ports, so faults are real (SIGKILL,
//! SIGSTOP, restart from the data dir). Every process a cluster starts is
//! killed when it is dropped, even when the test fails; a failing test also
//! prints the tail of each member's log.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use etcd_client::{Client, ConnectOptions, GetOptions};
use tokio::time::Instant;
use tonic::transport::Endpoint;
use witan_proto::raftpb::fault_injection_client::FaultInjectionClient;
use witan_proto::raftpb::{
    LinkDelay, SetFsyncDelayRequest, SetLinkDelaysRequest, SetPartitionRequest,
};

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

/// A member as MemberList reports it: id, name, peer URLs, client URLs,
/// whether it is a learner.
pub type MemberSummary = (u64, String, Vec<String>, Vec<String>, bool);

/// One member process.
struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    data_dir: PathBuf,
    log_path: PathBuf,
    child: Option<Child>,
    /// Stopped with SIGSTOP and not continued yet.
    paused: bool,
    /// For a member added to the running cluster: the `--initial-cluster`
    /// it starts with (and `--initial-cluster-state existing`).
    join: Option<String>,
    /// Flags for this member only (after the cluster's `extra_args`).
    own_args: Vec<String>,
    /// With [`Cluster::use_https`]: a second client port, served with TLS.
    https_client_port: Option<u16>,
}

/// A running cluster of member processes.
pub struct Cluster {
    binary: PathBuf,
    options: ClusterOptions,
    initial_cluster: String,
    members: Vec<Member>,
    /// Each member's raft id, learned once every member is up (ids do not
    /// change across restarts), so faults can be set while some are down.
    ids: Vec<u64>,
    /// With [`Cluster::set_credentials`]: the user and password the
    /// harness's own clients log in with (readiness, status, ...), for a
    /// cluster with authentication enabled.
    credentials: Option<(String, String)>,
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
        let mut cluster = Cluster::prepare(binary, options)?;
        cluster.launch().await?;
        Ok(cluster)
    }

    /// Switches a [`Cluster::prepare`]d cluster to TLS before
    /// [`Cluster::launch`]: peer URLs become `https://`, and every member
    /// also serves clients on an `https://` URL ([`Cluster::https_endpoint`])
    /// beside its plain one, which the harness keeps using for readiness
    /// and status. The members need the TLS flags: give them with
    /// [`Cluster::set_member_args`] or `extra_args`. Fault injection
    /// ([`Cluster::isolate`] and the like) is not available on such a
    /// cluster: it speaks plain HTTP to the peer port.
    pub fn use_https(&mut self) -> Result<()> {
        let ports = free_ports(self.members.len())?;
        for (m, port) in self.members.iter_mut().zip(ports) {
            m.https_client_port = Some(port);
        }
        self.initial_cluster = self
            .members
            .iter()
            .map(|m| format!("{}=https://127.0.0.1:{}", m.name, m.peer_port))
            .collect::<Vec<_>>()
            .join(",");
        Ok(())
    }

    /// Flags for member `i` only, used from its next start on.
    pub fn set_member_args(&mut self, i: usize, args: Vec<String>) {
        self.members[i].own_args = args;
    }

    /// Member `i`'s `https://` client URL (after [`Cluster::use_https`]).
    pub fn https_endpoint(&self, i: usize) -> Option<String> {
        self.members[i]
            .https_client_port
            .map(|port| format!("https://127.0.0.1:{port}"))
    }

    /// Lays a cluster out like [`Cluster::start`] (names, free ports, data
    /// dirs) without starting it, so a test can fill the data dirs first
    /// (a restore from a snapshot); [`Cluster::launch`] then starts it.
    pub fn prepare(binary: &str, options: ClusterOptions) -> Result<Cluster> {
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
                    paused: false,
                    join: None,
                    own_args: Vec::new(),
                    https_client_port: None,
                }
            })
            .collect();
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer_port))
            .collect::<Vec<_>>()
            .join(",");
        Ok(Cluster {
            binary: PathBuf::from(binary),
            options,
            initial_cluster,
            members,
            ids: Vec::new(),
            credentials: None,
            _dir: dir,
        })
    }

    /// Starts every member of a [`Cluster::prepare`]d cluster and waits
    /// until each serves linearizable reads.
    pub async fn launch(&mut self) -> Result<()> {
        for i in 0..self.members.len() {
            self.start_member(i)?;
        }
        self.wait_all_ready(Duration::from_secs(30)).await?;
        for i in 0..self.size() {
            let id = self.member_id(i).await?;
            self.ids.push(id);
        }
        Ok(())
    }

    /// The `--initial-cluster` flag every member gets.
    pub fn initial_cluster(&self) -> &str {
        &self.initial_cluster
    }

    /// Member `i`'s name.
    pub fn name(&self, i: usize) -> &str {
        &self.members[i].name
    }

    /// Member `i`'s peer URL.
    pub fn peer_url(&self, i: usize) -> String {
        let scheme = if self.members[i].https_client_port.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://127.0.0.1:{}", self.members[i].peer_port)
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
        let listen_client_urls = match m.https_client_port {
            Some(port) => format!("{client_url},https://127.0.0.1:{port}"),
            None => client_url.clone(),
        };
        let peer_scheme = if m.https_client_port.is_some() {
            "https"
        } else {
            "http"
        };
        let peer_url = format!("{peer_scheme}://127.0.0.1:{}", m.peer_port);
        let (initial_cluster, state) = match &m.join {
            Some(initial) => (initial, "existing"),
            None => (&self.initial_cluster, "new"),
        };
        let child = Command::new(&self.binary)
            .args(["--name", &m.name])
            .arg("--data-dir")
            .arg(&m.data_dir)
            .args(["--listen-client-urls", &listen_client_urls])
            .args(["--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", initial_cluster])
            .args(["--initial-cluster-state", state])
            .args([
                "--heartbeat-interval",
                &self.options.heartbeat_ms.to_string(),
            ])
            .args(["--election-timeout", &self.options.election_ms.to_string()])
            .arg("--unsafe-fault-injection")
            .args(&self.options.extra_args)
            .args(&m.own_args)
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
            // SIGKILL ends a stopped process too.
            self.members[i].paused = false;
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// Stops member `i` with SIGSTOP: it keeps its connections but runs no
    /// code (a long GC pause, a frozen VM) until [`Cluster::resume`].
    pub fn pause(&mut self, i: usize) -> Result<()> {
        self.signal(i, "-STOP")?;
        self.members[i].paused = true;
        Ok(())
    }

    /// Continues member `i` after [`Cluster::pause`] (SIGCONT).
    pub fn resume(&mut self, i: usize) -> Result<()> {
        self.signal(i, "-CONT")?;
        self.members[i].paused = false;
        Ok(())
    }

    /// Whether member `i` is stopped by [`Cluster::pause`].
    pub fn is_paused(&self, i: usize) -> bool {
        self.members[i].paused
    }

    fn signal(&self, i: usize, signal: &str) -> Result<()> {
        let Some(child) = &self.members[i].child else {
            bail!("member {} is not running", self.members[i].name);
        };
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()?;
        if !status.success() {
            bail!("kill {signal} {} failed: {status}", self.members[i].name);
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

    /// A client talking to member `i` only (logged in as the user of
    /// [`Cluster::set_credentials`], if any).
    pub async fn client(&self, i: usize) -> Result<Client> {
        match &self.credentials {
            Some((user, password)) => self.client_as(i, user, password).await,
            None => Ok(Client::connect([self.endpoint(i)], Some(Self::connect_options())).await?),
        }
    }

    /// A client talking to member `i` only, logged in as `user` (etcd's
    /// Authenticate on connect; the token is not refreshed when it expires).
    pub async fn client_as(&self, i: usize, user: &str, password: &str) -> Result<Client> {
        let options = Self::connect_options().with_user(user, password);
        Ok(Client::connect([self.endpoint(i)], Some(options)).await?)
    }

    /// Makes every client the harness opens itself ([`Cluster::client`],
    /// readiness, leader and member-id queries) log in as `user`: for a
    /// cluster with authentication enabled, whose members refuse requests
    /// without a token. `None` goes back to anonymous clients.
    pub fn set_credentials(&mut self, credentials: Option<(&str, &str)>) {
        self.credentials = credentials.map(|(u, p)| (u.to_string(), p.to_string()));
    }

    fn connect_options() -> ConnectOptions {
        ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(2))
            .with_timeout(Duration::from_secs(10))
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

    /// Member `i`'s raft id, as learned when the cluster started.
    pub fn id(&self, i: usize) -> u64 {
        self.ids[i]
    }

    /// Cuts member `i` off from every other member, both ways, through the
    /// members' fault-injecting transport.
    pub async fn isolate(&self, i: usize) -> Result<()> {
        let links = (0..self.size()).filter(|j| *j != i).map(|j| (i, j));
        self.cut_links(&links.collect()).await
    }

    /// Cuts exactly the links given (pairs of member indexes, both ways)
    /// and restores every other link, on every running member. A partition
    /// into sides cuts every link between sides; a bridge leaves one member
    /// linked to both.
    pub async fn cut_links(&self, links: &BTreeSet<(usize, usize)>) -> Result<()> {
        for j in 0..self.size() {
            if !self.is_running(j) {
                continue;
            }
            let blocked = links
                .iter()
                .filter_map(|&(a, b)| match (a == j, b == j) {
                    (true, false) => Some(self.ids[b]),
                    (false, true) => Some(self.ids[a]),
                    _ => None,
                })
                .collect();
            self.fault_client(j)
                .await?
                .set_partition(SetPartitionRequest { blocked })
                .await
                .with_context(|| format!("cutting links of {}", self.members[j].name))?;
        }
        Ok(())
    }

    /// Slows links: `delays[(from, to)]` is how long member `to` holds every
    /// request from member `from` before serving it (one direction; give
    /// both for a slow link). Links not given are not delayed.
    pub async fn set_link_delays(&self, delays: &BTreeMap<(usize, usize), Duration>) -> Result<()> {
        for j in 0..self.size() {
            if !self.is_running(j) {
                continue;
            }
            let delays = delays
                .iter()
                .filter(|((_, to), _)| *to == j)
                .map(|(&(from, _), delay)| LinkDelay {
                    member: self.ids[from],
                    delay_ms: u32::try_from(delay.as_millis()).unwrap_or(u32::MAX),
                })
                .collect();
            self.fault_client(j)
                .await?
                .set_link_delays(SetLinkDelaysRequest { delays })
                .await
                .with_context(|| format!("delaying links of {}", self.members[j].name))?;
        }
        Ok(())
    }

    /// Stalls member `i`'s disk: every raft log commit waits `delay` first
    /// (zero heals).
    pub async fn set_fsync_delay(&self, i: usize, delay: Duration) -> Result<()> {
        let delay_ms = u32::try_from(delay.as_millis()).unwrap_or(u32::MAX);
        self.fault_client(i)
            .await?
            .set_fsync_delay(SetFsyncDelayRequest { delay_ms })
            .await
            .with_context(|| format!("stalling the disk of {}", self.members[i].name))?;
        Ok(())
    }

    /// Restores every link and disk on every running member: undoes
    /// [`Cluster::isolate`], [`Cluster::cut_links`],
    /// [`Cluster::set_link_delays`] and [`Cluster::set_fsync_delay`].
    pub async fn heal(&self) -> Result<()> {
        self.cut_links(&BTreeSet::new()).await?;
        self.set_link_delays(&BTreeMap::new()).await?;
        for j in 0..self.size() {
            if self.is_running(j) {
                self.set_fsync_delay(j, Duration::ZERO).await?;
            }
        }
        Ok(())
    }

    /// A fault-injection client for member `i`, with short deadlines: a
    /// member that does not answer is an error, not a hang.
    async fn fault_client(
        &self,
        i: usize,
    ) -> Result<FaultInjectionClient<tonic::transport::Channel>> {
        if self.is_paused(i) {
            bail!("member {} is paused", self.members[i].name);
        }
        let url = format!("http://127.0.0.1:{}", self.members[i].peer_port);
        let channel = Endpoint::from_shared(url)?
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(5))
            .connect()
            .await
            .with_context(|| format!("connecting to {}'s peer port", self.members[i].name))?;
        Ok(FaultInjectionClient::new(channel))
    }

    /// Reads `key`'s value from member `i` with a serializable (local) read.
    pub async fn local_get(&self, i: usize, key: &str) -> Result<Option<Vec<u8>>> {
        let mut client = self.client(i).await?;
        let response = client
            .get(key, Some(GetOptions::new().with_serializable()))
            .await?;
        Ok(response.kvs().first().map(|kv| kv.value().to_vec()))
    }

    /// Adds a member through member `via` (etcd's MemberAdd; a learner if
    /// `learner`), without starting it: [`Cluster::start_member`] starts it
    /// with `--initial-cluster-state existing` and an empty data dir.
    /// Returns its index; its id is [`Cluster::id`].
    pub async fn add_member(&mut self, via: usize, learner: bool) -> Result<usize> {
        let ports = free_ports(3)?;
        let i = self.members.len();
        let name = format!("m{}", i + 1);
        // A member added to a [`Cluster::use_https`] cluster uses TLS too.
        let https = self.members.iter().any(|m| m.https_client_port.is_some());
        let scheme = if https { "https" } else { "http" };
        let peer_url = format!("{scheme}://127.0.0.1:{}", ports[1]);
        let options = learner.then(|| etcd_client::MemberAddOptions::new().with_is_learner());
        let response = self
            .client(via)
            .await?
            .member_add([peer_url.as_str()], options)
            .await
            .with_context(|| format!("adding {name} through member {via}"))?;
        let id = response
            .member()
            .context("MemberAdd without the member")?
            .id();
        // What etcdctl prints as ETCD_INITIAL_CLUSTER, without members that
        // have not started (and so have no name) yet.
        let initial = response
            .member_list()
            .iter()
            .flat_map(|m| {
                let member_name = if m.id() == id {
                    name.clone()
                } else {
                    m.name().to_string()
                };
                m.peer_urls()
                    .iter()
                    .map(move |u| (member_name.clone(), u.clone()))
            })
            .filter(|(n, _)| !n.is_empty())
            .map(|(n, u)| format!("{n}={u}"))
            .collect::<Vec<_>>()
            .join(",");
        let dir = self._dir.path();
        self.members.push(Member {
            data_dir: dir.join(format!("{name}.data")),
            log_path: dir.join(format!("{name}.log")),
            name,
            client_port: ports[0],
            peer_port: ports[1],
            child: None,
            paused: false,
            join: Some(initial),
            own_args: Vec::new(),
            https_client_port: https.then_some(ports[2]),
        });
        self.ids.push(id);
        Ok(i)
    }

    /// Removes member `i` through member `via` (etcd's MemberRemove). The
    /// removed member's process stops serving by itself; it stays counted
    /// as running until [`Cluster::kill`].
    pub async fn remove_member(&self, via: usize, i: usize) -> Result<()> {
        self.client(via)
            .await?
            .member_remove(self.ids[i])
            .await
            .with_context(|| format!("removing {} through member {via}", self.members[i].name))?;
        Ok(())
    }

    /// Member `i`'s MemberList: (id, name, peer URLs, client URLs,
    /// learner), by id.
    pub async fn member_list(&self, i: usize) -> Result<Vec<MemberSummary>> {
        let response = self.client(i).await?.member_list().await?;
        let mut members: Vec<MemberSummary> = response
            .members()
            .iter()
            .map(|m| {
                (
                    m.id(),
                    m.name().to_string(),
                    m.peer_urls().to_vec(),
                    m.client_urls().to_vec(),
                    m.is_learner(),
                )
            })
            .collect();
        members.sort();
        Ok(members)
    }

    /// Waits until member `i` reports itself a voter (Status `isLearner`
    /// false): started, caught up and promoted.
    pub async fn wait_voter(&self, i: usize, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        let mut last = anyhow!("never asked");
        while Instant::now() < deadline {
            match self.client(i).await {
                Ok(mut client) => match client.status().await {
                    Ok(status) if !status.is_learner() => return Ok(()),
                    Ok(_) => last = anyhow!("still a learner"),
                    Err(e) => last = e.into(),
                },
                Err(e) => last = e,
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(last.context(format!(
            "{} did not become a voter within {within:?}",
            self.members[i].name
        )))
    }

    /// Whether member `i`'s log (every run of it) contains `needle`.
    pub fn log_contains(&self, i: usize, needle: &str) -> Result<bool> {
        let text = std::fs::read_to_string(&self.members[i].log_path)?;
        Ok(text.contains(needle))
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
