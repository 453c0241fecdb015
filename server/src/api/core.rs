//! What every client service shares: proposing a command through raft,
//! reading the applied state behind the linearizable read barrier, and the
//! response header.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use witan_proto::raftpb::{command::Op, command_response::Result as Applied, Command};

use super::{ApiError, HeaderSource};
use crate::auth::{AuthGate, Caller};
use crate::mvcc::MvccError;
use crate::raft::proposer::{ProposeError, Proposer};
use crate::raft::read_index::ReadIndex;
use crate::storage::{AppliedState, StateReader};

/// The member's write path, read barrier and state, as the services use
/// them. Cheap to clone.
#[derive(Clone)]
pub struct ApiCore {
    /// Proposes commands (forwarding to the leader as needed).
    pub proposer: Proposer,
    /// The linearizable read barrier.
    pub read_index: ReadIndex,
    /// The applied state and its history.
    pub state: StateReader,
    /// Fills response headers.
    pub header: HeaderSource,
    /// How long a request may wait for raft.
    pub request_timeout: Duration,
    /// Authenticates requests against the applied auth store.
    pub gate: AuthGate,
}

impl ApiCore {
    /// The deadline of a request starting now.
    pub fn deadline(&self) -> Instant {
        Instant::now() + self.request_timeout
    }

    /// Proposes a write and returns what applying it produced; a
    /// deterministic rejection becomes its error.
    pub async fn write(&self, op: Op) -> Result<Applied, ApiError> {
        self.write_as(op, &Caller::member()).await
    }

    /// Proposes a client's write, stamped with the auth revision its
    /// permissions were checked at (apply refuses it if auth changed since).
    pub async fn write_as(&self, op: Op, caller: &Caller) -> Result<Applied, ApiError> {
        let command = Command {
            op: Some(op),
            auth_revision: caller.revision,
            auth_user: caller.user.clone().unwrap_or_default(),
        };
        let response = self.proposer.propose(command, self.deadline()).await?;
        match response.result {
            Some(Applied::Error(e)) => Err(rejection(e.kind())),
            Some(applied) => Ok(applied),
            None => Err(ApiError::UnexpectedResponse("empty command response")),
        }
    }

    /// The applied state a read may use: after the read barrier unless the
    /// request asked for a serializable read.
    pub async fn readable_state(&self, serializable: bool) -> Result<Arc<AppliedState>, ApiError> {
        if serializable {
            return Ok(self.state.current());
        }
        let deadline = self.deadline();
        let index = self.read_index.read_index(deadline).await?;
        tokio::time::timeout_at(deadline, self.state.wait_applied(index))
            .await
            .map_err(|_| ApiError::ApplyTimeout)?
            .map_err(|_| ApiError::Propose(ProposeError::Stopped))
    }
}

impl ApiCore {
    /// Who `request` comes from, and the applied state that was judged on.
    pub async fn caller<T>(
        &self,
        request: &tonic::Request<T>,
    ) -> Result<(Caller, Arc<AppliedState>), ApiError> {
        Ok(self.gate.caller(request).await?)
    }

    /// The caller of `request`, who must hold the root role while auth is
    /// on (cluster administration).
    pub async fn admin<T>(&self, request: &tonic::Request<T>) -> Result<Caller, ApiError> {
        let (caller, state) = self.caller(request).await?;
        caller.check_admin(state.kv.auth())?;
        Ok(caller)
    }
}

/// The error a replicated rejection stands for.
pub fn rejection(kind: witan_proto::raftpb::apply_error::Kind) -> ApiError {
    match MvccError::from_apply_error(kind) {
        Some(err) => ApiError::Mvcc(err),
        None => ApiError::UnexpectedResponse("unknown apply error"),
    }
}
