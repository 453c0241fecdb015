//! A member's identity (its member id and the cluster id): derived from the
//! flags for a member of a new cluster, asked from the running members for a
//! member joining with `--initial-cluster-state existing` (it looks itself
//! up by its peer URLs, as `etcdctl member add` registered it), and kept in
//! the data dir so that a restart needs neither the flags nor the others.
//!
//! The data dir also records that a member was removed from its cluster: a
//! removed member must not come back under its old id.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::time::Instant;
use tonic::transport::{ClientTlsConfig, Endpoint};
use tracing::{debug, info};
use witan_proto::raftpb::raft_transport_client::RaftTransportClient;
use witan_proto::raftpb::{MembersRequest, MembersResponse};

use super::NodeId;
use crate::config::{ClusterState, Config, ConfigError};

/// The file in the data dir holding the member's identity.
pub const IDENTITY_FILE: &str = "member-identity";
/// The file in the data dir saying the member was removed from its cluster.
pub const REMOVED_FILE: &str = "member-removed";

const IDENTITY_HEADER: &str = "witan member identity v1";
/// Pause between two rounds of asking the members for the membership.
const ASK_PAUSE: Duration = Duration::from_millis(200);
/// The least time a joining member keeps asking.
const MIN_JOIN_TIME: Duration = Duration::from_secs(5);

/// Who a member is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    /// This member's raft id (etcd's member ID).
    pub member_id: NodeId,
    /// The cluster's id.
    pub cluster_id: u64,
}

/// Why a member could not establish who it is.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// The data dir could not be read or written.
    #[error("cannot access {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
    /// The identity file is not in the expected format.
    #[error("{0} is corrupt: expected `member-id <hex>` and `cluster-id <hex>` lines")]
    Corrupt(PathBuf),
    /// The member was removed from its cluster.
    #[error("this member was removed from its cluster ({0} exists): add it again with `etcdctl member add` and start it with an empty data dir")]
    Removed(PathBuf),
    /// The members reached do not know a member with these peer URLs.
    #[error("member not added to the cluster: run `etcdctl member add` first (no member lists the peer URLs {0:?})")]
    NotAdded(Vec<String>),
    /// No other member of `--initial-cluster` answered.
    #[error("cannot reach any other member of --initial-cluster ({0:?}) to join the cluster")]
    Unreachable(Vec<String>),
    /// The flags are invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The peer TLS files cannot be used.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

/// This member's identity: from the data dir if it holds one; else from the
/// flags for a new cluster (or a data dir written before identities were
/// kept); else asked from the members of `--initial-cluster`. A new
/// identity is written to the data dir (which must exist) before returning.
pub async fn resolve(config: &Config) -> Result<Identity, JoinError> {
    let dir = &config.data_dir;
    let removed = dir.join(REMOVED_FILE);
    if removed.exists() {
        return Err(JoinError::Removed(removed));
    }
    let path = dir.join(IDENTITY_FILE);
    if let Some(identity) = read_identity(&path)? {
        return Ok(identity);
    }
    let identity = if config.initial_cluster_state == ClusterState::New || has_data(dir, &path)? {
        Identity {
            member_id: config.member_id(),
            cluster_id: config.cluster_id(),
        }
    } else {
        let identity = ask_members(config).await?;
        info!(
            id = format_args!("{:x}", identity.member_id),
            "found this member in the cluster's membership"
        );
        identity
    };
    write_identity(&path, identity)?;
    Ok(identity)
}

/// Records in `data_dir` that this member was removed from its cluster.
pub fn mark_removed(data_dir: &Path) -> Result<(), JoinError> {
    let path = data_dir.join(REMOVED_FILE);
    write_synced(&path, b"removed from the cluster by a membership change\n")
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> JoinError + '_ {
    move |source| JoinError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn read_identity(path: &Path) -> Result<Option<Identity>, JoinError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(io_error(path)(err)),
    };
    parse_identity(&text)
        .map(Some)
        .ok_or_else(|| JoinError::Corrupt(path.to_path_buf()))
}

fn format_identity(identity: Identity) -> String {
    format!(
        "{IDENTITY_HEADER}\nmember-id {:x}\ncluster-id {:x}\n",
        identity.member_id, identity.cluster_id
    )
}

fn parse_identity(text: &str) -> Option<Identity> {
    let mut lines = text.lines();
    if lines.next()? != IDENTITY_HEADER {
        return None;
    }
    let mut field = |name: &str| {
        let line = lines.next()?;
        let value = line.strip_prefix(name)?.strip_prefix(' ')?;
        u64::from_str_radix(value, 16).ok()
    };
    let member_id = field("member-id")?;
    let cluster_id = field("cluster-id")?;
    Some(Identity {
        member_id,
        cluster_id,
    })
}

fn write_identity(path: &Path, identity: Identity) -> Result<(), JoinError> {
    write_synced(path, format_identity(identity).as_bytes())
}

/// Writes `bytes` to `path` through a temporary file and a rename, synced,
/// so a crash leaves the old file or the new one, never half of one.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), JoinError> {
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp).map_err(io_error(&tmp))?;
    file.write_all(bytes).map_err(io_error(&tmp))?;
    file.sync_all().map_err(io_error(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_error(path))?;
    if let Some(dir) = path.parent() {
        // The rename is durable once the directory is.
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_error(dir))?;
    }
    Ok(())
}

/// Whether the data dir holds anything besides the identity file (a member
/// that ran before identities were kept).
fn has_data(dir: &Path, identity: &Path) -> Result<bool, JoinError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(err) => return Err(io_error(dir)(err)),
    };
    for entry in entries {
        let entry = entry.map_err(io_error(dir))?;
        if entry.path() != identity {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Asks the other members of `--initial-cluster` for the membership until
/// one lists a member with exactly this member's peer URLs.
async fn ask_members(config: &Config) -> Result<Identity, JoinError> {
    let mine: BTreeSet<&str> = config
        .initial_advertise_peer_urls
        .iter()
        .map(String::as_str)
        .collect();
    let others: Vec<String> = config
        .initial_members()?
        .into_values()
        .filter(|m| m.name != config.name)
        .flat_map(|m| m.peer_urls)
        .filter(|url| !mine.contains(url.as_str()))
        .collect();
    if others.is_empty() {
        return Err(JoinError::Unreachable(others));
    }
    let tls = crate::tls::peer_client_tls(config)?;
    let deadline = Instant::now() + config.request_timeout.max(MIN_JOIN_TIME);
    loop {
        let mut reached = false;
        for url in &others {
            match members_at(url, tls.as_ref()).await {
                Ok(response) => {
                    reached = true;
                    if let Some(identity) = find_self(&response, &mine) {
                        return Ok(identity);
                    }
                }
                Err(status) => debug!(url, %status, "member did not answer"),
            }
        }
        if Instant::now() >= deadline {
            let urls = config.initial_advertise_peer_urls.clone();
            return Err(if reached {
                JoinError::NotAdded(urls)
            } else {
                JoinError::Unreachable(others)
            });
        }
        // Polling a remote member: nothing local to wait on.
        tokio::time::sleep(ASK_PAUSE).await;
    }
}

/// The member whose peer URLs are exactly `mine`.
fn find_self(response: &MembersResponse, mine: &BTreeSet<&str>) -> Option<Identity> {
    response.members.iter().find_map(|m| {
        let urls: BTreeSet<&str> = m
            .node
            .as_ref()?
            .peer_urls
            .iter()
            .map(String::as_str)
            .collect();
        (urls == *mine).then_some(Identity {
            member_id: m.id,
            cluster_id: response.cluster_id,
        })
    })
}

async fn members_at(
    url: &str,
    tls: Option<&ClientTlsConfig>,
) -> Result<MembersResponse, tonic::Status> {
    let mut endpoint = Endpoint::from_shared(url.to_string())
        .map_err(|e| tonic::Status::invalid_argument(e.to_string()))?;
    if let (true, Some(tls)) = (crate::config::is_https(url), tls) {
        endpoint = endpoint
            .tls_config(tls.clone())
            .map_err(|e| tonic::Status::invalid_argument(e.to_string()))?;
    }
    let endpoint = endpoint
        .connect_timeout(Duration::from_secs(1))
        .timeout(Duration::from_secs(2));
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let response = RaftTransportClient::new(channel)
        .members(MembersRequest {})
        .await?;
    Ok(response.into_inner())
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use witan_proto::raftpb::{MemberInfo, Node};

    use super::*;

    #[test]
    fn identities_round_trip_and_corruption_is_caught() {
        let identity = Identity {
            member_id: 0xdead_beef,
            cluster_id: u64::MAX,
        };
        assert_eq!(parse_identity(&format_identity(identity)), Some(identity));
        assert_eq!(parse_identity(""), None);
        assert_eq!(
            parse_identity("witan member identity v1\nmember-id zz\n"),
            None
        );
        assert_eq!(
            parse_identity("something else\nmember-id 1\ncluster-id 2\n"),
            None
        );
    }

    #[test]
    fn a_joining_member_finds_itself_by_its_exact_peer_urls() {
        let member = |id, urls: &[&str]| MemberInfo {
            id,
            node: Some(Node {
                peer_urls: urls.iter().map(|u| u.to_string()).collect(),
                ..Node::default()
            }),
            is_learner: false,
        };
        let response = MembersResponse {
            cluster_id: 77,
            members: vec![
                member(1, &["http://127.0.0.1:1"]),
                member(2, &["http://127.0.0.1:2", "http://127.0.0.1:3"]),
            ],
            leader_id: 1,
        };
        let mine = BTreeSet::from(["http://127.0.0.1:3", "http://127.0.0.1:2"]);
        assert_eq!(
            find_self(&response, &mine),
            Some(Identity {
                member_id: 2,
                cluster_id: 77
            })
        );
        assert_eq!(
            find_self(&response, &BTreeSet::from(["http://127.0.0.1:2"])),
            None
        );
    }

    fn config(dir: &Path, state: &str) -> Config {
        Config::parse_from([
            "witan",
            "--name",
            "n2",
            "--data-dir",
            dir.to_str().unwrap(),
            "--initial-cluster",
            "n1=http://127.0.0.1:1,n2=http://127.0.0.1:2",
            "--initial-advertise-peer-urls",
            "http://127.0.0.1:2",
            "--initial-cluster-state",
            state,
        ])
    }

    #[tokio::test]
    async fn identities_persist_and_removed_members_cannot_start() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(dir.path(), "new");
        let first = resolve(&c).await.unwrap();
        assert_eq!(first.member_id, c.member_id());
        assert_eq!(first.cluster_id, c.cluster_id());
        // A restart with other flags keeps the identity it started with.
        let other = config(dir.path(), "existing");
        assert_eq!(resolve(&other).await.unwrap(), first);

        mark_removed(dir.path()).unwrap();
        assert!(matches!(resolve(&c).await, Err(JoinError::Removed(_))));
    }

    #[tokio::test]
    async fn a_data_dir_from_before_identities_keeps_its_flag_identity() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("raft-log.db"), b"").unwrap();
        let c = config(dir.path(), "existing");
        let identity = resolve(&c).await.unwrap();
        assert_eq!(identity.member_id, c.member_id());
    }
}
