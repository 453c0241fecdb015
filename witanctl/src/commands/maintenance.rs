//! `defrag`, `alarm list|disarm` and `move-leader`: etcd's Maintenance
//! service.

use witan_proto::etcdserverpb::alarm_request::AlarmAction;
use witan_proto::etcdserverpb::{
    AlarmMember, AlarmRequest, AlarmResponse, AlarmType, DefragmentRequest, MoveLeaderRequest,
    StatusRequest,
};

use super::endpoint::endpoints;
use super::member::parse_member_id;
use crate::cli::Format;
use crate::conn::Ctx;
use crate::error::CtlError;
use crate::output::{self, json};

/// `defrag` options.
#[derive(Debug, Clone, clap::Args)]
pub struct DefragArgs {
    /// Use all endpoints from the cluster member list.
    #[arg(long)]
    pub cluster: bool,
}

/// The alarm commands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum AlarmCommand {
    /// Lists all alarms.
    List,
    /// Disarms all alarms.
    Disarm,
}

/// `move-leader` options.
#[derive(Debug, Clone, clap::Args)]
pub struct MoveLeaderArgs {
    /// The ID (hex) of the member to hand leadership to.
    pub target: String,
}

/// `defrag`: each endpoint in turn; a failure is reported and the others
/// still done.
pub async fn defrag(ctx: &Ctx, args: &DefragArgs) -> Result<(), CtlError> {
    let targets = endpoints(ctx, args.cluster).await?;
    let mut failed = 0;
    for endpoint in &targets {
        let answer = async {
            let conn = ctx.connect_to(endpoint).await?;
            conn.call(
                "Defragment",
                conn.maintenance().defragment(DefragmentRequest {}),
            )
            .await
        };
        match answer.await {
            Ok(resp) => match ctx.format {
                Format::Json => output::emit_json(
                    &json::Obj::new()
                        .opt("header", json::header(resp.header.as_ref()))
                        .done(),
                ),
                _ => output::emit(&format!("Finished defragmenting etcd member[{endpoint}]\n")),
            },
            Err(error) => {
                failed += 1;
                eprintln!("Failed to defragment etcd member[{endpoint}] ({error})");
            }
        }
    }
    if failed == 0 {
        Ok(())
    } else {
        Err(CtlError::SomeEndpointsFailed {
            failed,
            total: targets.len(),
        })
    }
}

/// `alarm list` and `alarm disarm`.
pub async fn alarm(ctx: &Ctx, command: &AlarmCommand) -> Result<(), CtlError> {
    let conn = ctx.connect().await?;
    let list = AlarmRequest {
        action: AlarmAction::Get as i32,
        member_id: 0,
        alarm: AlarmType::None as i32,
    };
    let listed = conn.call("Alarm", conn.maintenance().alarm(list)).await?;
    let resp = match command {
        AlarmCommand::List => listed,
        AlarmCommand::Disarm => {
            // As clientv3 does: disarm each raised alarm by name.
            let mut disarmed = AlarmResponse {
                header: listed.header,
                alarms: Vec::new(),
            };
            for raised in &listed.alarms {
                let request = AlarmRequest {
                    action: AlarmAction::Deactivate as i32,
                    member_id: raised.member_id,
                    alarm: raised.alarm,
                };
                let resp = conn
                    .call("Alarm", conn.maintenance().alarm(request))
                    .await?;
                disarmed.header = resp.header;
                disarmed.alarms.extend(resp.alarms);
            }
            disarmed
        }
    };
    match ctx.format {
        Format::Json => output::emit_json(&json::alarm(&resp)),
        _ => output::emit(&alarms_simple(&resp.alarms)),
    }
    Ok(())
}

/// Alarms as etcdctl lists them: `memberID:<decimal> alarm:<NAME>`.
pub fn alarms_simple(alarms: &[AlarmMember]) -> String {
    alarms
        .iter()
        .map(|a| {
            let name = AlarmType::try_from(a.alarm).map_or("UNKNOWN", |t| t.as_str_name());
            format!("memberID:{} alarm:{name}\n", a.member_id)
        })
        .collect()
}

/// `move-leader`: finds the leader among the endpoints (MoveLeader must be
/// sent to it) and asks it to hand over to the target.
pub async fn move_leader(ctx: &Ctx, args: &MoveLeaderArgs) -> Result<(), CtlError> {
    let target = parse_member_id(&args.target)?;
    for endpoint in &ctx.endpoints {
        let conn = match ctx.connect_to(endpoint).await {
            Ok(conn) => conn,
            Err(error) => {
                tracing::debug!(%endpoint, %error, "skipping an endpoint");
                continue;
            }
        };
        let status = conn
            .call("Status", conn.maintenance().status(StatusRequest {}))
            .await?;
        let member = status.header.as_ref().map_or(0, |h| h.member_id);
        if member == 0 || status.leader != member {
            continue;
        }
        let request = MoveLeaderRequest { target_id: target };
        let resp = conn
            .call("MoveLeader", conn.maintenance().move_leader(request))
            .await?;
        match ctx.format {
            Format::Json => output::emit_json(
                &json::Obj::new()
                    .opt("header", json::header(resp.header.as_ref()))
                    .done(),
            ),
            _ => output::emit(&format!(
                "Leadership transferred from {member:x} to {target:x}\n"
            )),
        }
        return Ok(());
    }
    Err(CtlError::NoLeaderEndpoint {
        endpoints: ctx.endpoints.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alarms_read_like_etcdctl() {
        let alarms = [AlarmMember {
            member_id: 123,
            alarm: AlarmType::Nospace as i32,
        }];
        assert_eq!(alarms_simple(&alarms), "memberID:123 alarm:NOSPACE\n");
    }
}
