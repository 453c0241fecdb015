//! Alarm: GET lists the active alarms behind the read barrier; ACTIVATE
//! and DEACTIVATE go through raft (the alarm table is replicated state, as
//! in etcd, so every member refuses the same writes).

use witan_proto::etcdserverpb::alarm_request::AlarmAction;
use witan_proto::etcdserverpb::{AlarmMember, AlarmRequest, AlarmResponse, AlarmType};
use witan_proto::raftpb::command::Op;
use witan_proto::raftpb::command_response::Result as Applied;

use crate::api::{ApiCore, ApiError};

/// Serves an Alarm request.
pub(super) async fn alarm(
    core: &ApiCore,
    request: AlarmRequest,
) -> Result<AlarmResponse, ApiError> {
    if request.action == AlarmAction::Get as i32 {
        let state = core.readable_state(false).await?;
        return Ok(AlarmResponse {
            header: core.header.at(state.kv.revision()),
            alarms: state.kv.alarms().list(request.alarm),
        });
    }
    match core.write(Op::Alarm(request)).await? {
        Applied::Alarm(mut response) => {
            core.header.fill(&mut response.header);
            Ok(response)
        }
        _ => Err(ApiError::UnexpectedResponse(
            "alarm answered with another kind",
        )),
    }
}

/// An alarm as etcd writes it in Status' `errors` (Go's protobuf text form,
/// trailing space included: tools compare these strings).
pub fn alarm_text(alarm: &AlarmMember) -> String {
    let name = AlarmType::try_from(alarm.alarm)
        .map(|a| a.as_str_name())
        .unwrap_or("UNKNOWN");
    format!("memberID:{} alarm:{} ", alarm.member_id, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alarm_text_is_etcds() {
        let alarm = AlarmMember {
            member_id: 10276657743932975437,
            alarm: AlarmType::Nospace as i32,
        };
        assert_eq!(
            alarm_text(&alarm),
            "memberID:10276657743932975437 alarm:NOSPACE "
        );
    }
}
