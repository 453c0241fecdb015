//! `member add|remove|update|list|promote`: etcd's Cluster service. `member
//! add` prints the environment a new member starts with (`WITAN_NAME`,
//! `WITAN_INITIAL_CLUSTER`, `WITAN_INITIAL_ADVERTISE_PEER_URLS`,
//! `WITAN_INITIAL_CLUSTER_STATE=existing`: the variables `witan` reads),
//! as etcdctl prints etcd's `ETCD_*` ones.

use crate::output::json::Json;
use witan_proto::etcdserverpb::{
    Member, MemberAddRequest, MemberListRequest, MemberPromoteRequest, MemberRemoveRequest,
    MemberUpdateRequest, ResponseHeader,
};

use crate::cli::Format;
use crate::conn::Ctx;
use crate::error::{CtlError, UsageError};
use crate::output::{self, json, table::Table};

/// The member commands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum MemberCommand {
    /// Adds a member into the cluster.
    Add {
        /// The new member's name.
        name: String,
        /// Comma-separated peer URLs for the new member.
        #[arg(long, value_delimiter = ',', required = true)]
        peer_urls: Vec<String>,
        /// Add as a learner (a non-voting member that catches up first).
        #[arg(long)]
        learner: bool,
    },
    /// Removes a member from the cluster.
    Remove {
        /// The member's ID, in hex.
        id: String,
    },
    /// Updates a member's peer URLs.
    Update {
        /// The member's ID, in hex.
        id: String,
        /// Comma-separated peer URLs.
        #[arg(long, value_delimiter = ',', required = true)]
        peer_urls: Vec<String>,
    },
    /// Lists all members in the cluster.
    List,
    /// Promotes a learner member to a voting member.
    Promote {
        /// The member's ID, in hex.
        id: String,
    },
}

/// A member ID as etcdctl takes it: hexadecimal.
pub fn parse_member_id(text: &str) -> Result<u64, UsageError> {
    u64::from_str_radix(text, 16).map_err(|_| UsageError::MemberId(text.to_string()))
}

/// Runs a member command.
pub async fn run(ctx: &Ctx, command: &MemberCommand) -> Result<(), CtlError> {
    let conn = ctx.connect().await?;
    let mut cluster = conn.cluster();
    match command {
        MemberCommand::List => {
            let resp = conn
                .call(
                    "MemberList",
                    cluster.member_list(MemberListRequest { linearizable: true }),
                )
                .await?;
            match ctx.format {
                Format::Simple | Format::Fields => output::emit(&list_simple(&resp.members)),
                Format::Table => output::emit(&list_table(&resp.members)),
                Format::Json => {
                    output::emit_json(&members_json(resp.header.as_ref(), None, &resp.members))
                }
            }
        }
        MemberCommand::Add {
            name,
            peer_urls,
            learner,
        } => {
            let request = MemberAddRequest {
                peer_ur_ls: peer_urls.clone(),
                is_learner: *learner,
            };
            let resp = conn.call("MemberAdd", cluster.member_add(request)).await?;
            let added = resp.member.clone().unwrap_or_default();
            match ctx.format {
                Format::Json => output::emit_json(&members_json(
                    resp.header.as_ref(),
                    resp.member.as_ref(),
                    &resp.members,
                )),
                _ => output::emit(&add_simple(
                    name,
                    &added,
                    cluster_id(resp.header.as_ref()),
                    &resp.members,
                )),
            }
        }
        MemberCommand::Remove { id } => {
            let id = parse_member_id(id)?;
            let resp = conn
                .call(
                    "MemberRemove",
                    cluster.member_remove(MemberRemoveRequest { id }),
                )
                .await?;
            emit_change(ctx, id, "removed from", resp.header.as_ref(), &resp.members);
        }
        MemberCommand::Update { id, peer_urls } => {
            let id = parse_member_id(id)?;
            let request = MemberUpdateRequest {
                id,
                peer_ur_ls: peer_urls.clone(),
            };
            let resp = conn
                .call("MemberUpdate", cluster.member_update(request))
                .await?;
            emit_change(ctx, id, "updated in", resp.header.as_ref(), &resp.members);
        }
        MemberCommand::Promote { id } => {
            let id = parse_member_id(id)?;
            let resp = conn
                .call(
                    "MemberPromote",
                    cluster.member_promote(MemberPromoteRequest { id }),
                )
                .await?;
            emit_change(ctx, id, "promoted in", resp.header.as_ref(), &resp.members);
        }
    }
    Ok(())
}

/// What `member remove|update|promote` print: the whole membership as
/// JSON, or etcdctl's one line "Member ID <verb> cluster CLUSTER_ID".
fn emit_change(
    ctx: &Ctx,
    id: u64,
    verb: &str,
    header: Option<&ResponseHeader>,
    members: &[Member],
) {
    match ctx.format {
        Format::Json => output::emit_json(&members_json(header, None, members)),
        _ => output::emit(&format!(
            "Member {id:16x} {verb} cluster {:16x}\n",
            cluster_id(header)
        )),
    }
}

fn cluster_id(header: Option<&ResponseHeader>) -> u64 {
    header.map_or(0, |h| h.cluster_id)
}

/// A member's status as etcdctl shows it: a member that has not started
/// yet has no name.
fn status(member: &Member) -> &'static str {
    if member.name.is_empty() {
        "unstarted"
    } else {
        "started"
    }
}

/// `member list` in the simple format.
pub fn list_simple(members: &[Member]) -> String {
    members
        .iter()
        .map(|m| {
            format!(
                "{:x}, {}, {}, {}, {}, {}\n",
                m.id,
                status(m),
                m.name,
                m.peer_ur_ls.join(","),
                m.client_ur_ls.join(","),
                m.is_learner
            )
        })
        .collect()
}

/// `member list` as a table.
pub fn list_table(members: &[Member]) -> String {
    let mut table = Table::new(&[
        "ID",
        "STATUS",
        "NAME",
        "PEER ADDRS",
        "CLIENT ADDRS",
        "IS LEARNER",
    ]);
    for m in members {
        table.row(vec![
            format!("{:x}", m.id),
            status(m).to_string(),
            m.name.clone(),
            m.peer_ur_ls.join(","),
            m.client_ur_ls.join(","),
            m.is_learner.to_string(),
        ]);
    }
    table.render()
}

/// `member add`'s simple output: the new member's ID and the
/// environment it starts with.
pub fn add_simple(name: &str, added: &Member, cluster_id: u64, members: &[Member]) -> String {
    let mut initial = Vec::new();
    for m in members {
        let member_name = if m.id == added.id {
            name
        } else {
            m.name.as_str()
        };
        // A member that never started has no name: it cannot be listed.
        if member_name.is_empty() {
            continue;
        }
        for url in &m.peer_ur_ls {
            initial.push(format!("{member_name}={url}"));
        }
    }
    format!(
        "Member {:16x} added to cluster {cluster_id:16x}\n\n\
         WITAN_NAME={:?}\n\
         WITAN_INITIAL_CLUSTER={:?}\n\
         WITAN_INITIAL_ADVERTISE_PEER_URLS={:?}\n\
         WITAN_INITIAL_CLUSTER_STATE=\"existing\"\n",
        added.id,
        name,
        initial.join(","),
        added.peer_ur_ls.join(",")
    )
}

fn members_json(
    header: Option<&ResponseHeader>,
    added: Option<&Member>,
    members: &[Member],
) -> Json {
    json::Obj::new()
        .opt("header", json::header(header))
        .opt("member", added.map(json::member))
        .list("members", members.iter().map(json::member).collect())
        .done()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: u64, name: &str, peer: &str, client: &str, learner: bool) -> Member {
        Member {
            id,
            name: name.into(),
            peer_ur_ls: vec![peer.into()],
            client_ur_ls: if client.is_empty() {
                vec![]
            } else {
                vec![client.into()]
            },
            is_learner: learner,
        }
    }

    #[test]
    fn list_reads_like_etcdctl() {
        let members = [
            member(
                0x2e1259d415f2a040,
                "e1",
                "http://127.0.0.1:23800",
                "http://127.0.0.1:23790",
                false,
            ),
            member(0x479d1f654aca3f2c, "", "http://127.0.0.1:23801", "", true),
        ];
        assert_eq!(
            list_simple(&members),
            "2e1259d415f2a040, started, e1, http://127.0.0.1:23800, http://127.0.0.1:23790, false\n\
             479d1f654aca3f2c, unstarted, , http://127.0.0.1:23801, , true\n"
        );
        let table = list_table(&members);
        assert!(table.contains("| 479d1f654aca3f2c | unstarted |      | http://127.0.0.1:23801 |                        |       true |"), "{table}");
    }

    #[test]
    fn add_prints_the_new_members_environment() {
        let added = member(0x479d1f654aca3f2c, "", "http://127.0.0.1:23801", "", false);
        let members = [
            member(
                0x2e1259d415f2a040,
                "e1",
                "http://127.0.0.1:23800",
                "http://127.0.0.1:23790",
                false,
            ),
            added.clone(),
        ];
        assert_eq!(
            add_simple("e2", &added, 0x48276a8f75b6a87, &members),
            "Member 479d1f654aca3f2c added to cluster  48276a8f75b6a87\n\n\
             WITAN_NAME=\"e2\"\n\
             WITAN_INITIAL_CLUSTER=\"e1=http://127.0.0.1:23800,e2=http://127.0.0.1:23801\"\n\
             WITAN_INITIAL_ADVERTISE_PEER_URLS=\"http://127.0.0.1:23801\"\n\
             WITAN_INITIAL_CLUSTER_STATE=\"existing\"\n"
        );
    }

    #[test]
    fn member_ids_are_hex() {
        assert_eq!(
            parse_member_id("2e1259d415f2a040").unwrap(),
            0x2e1259d415f2a040
        );
        assert!(parse_member_id("zz").is_err());
    }
}
