//! Who leads the cluster, as this member currently sees it, and waiting for
//! that view to change.

use tokio::sync::watch;
use tokio::time::Instant;

use super::{Member, NodeId};

/// Raft metrics, published by openraft on every state change.
pub type Metrics = watch::Receiver<openraft::RaftMetrics<NodeId, Member>>;

/// The leader as this member sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum LeaderView {
    /// This member is the leader.
    Me,
    /// Another member leads; its id and addresses.
    Other(NodeId, Member),
    /// No leader is known (an election is under way, or the member is cut off).
    Unknown,
}

/// Reads the current leader view from the metrics.
pub fn leader_view(metrics: &Metrics, me: NodeId) -> LeaderView {
    let m = metrics.borrow();
    match m.current_leader {
        Some(id) if id == me && m.state == openraft::ServerState::Leader => LeaderView::Me,
        Some(id) if id == me => LeaderView::Unknown,
        Some(id) => match m.membership_config.membership().get_node(&id) {
            Some(member) => LeaderView::Other(id, member.clone()),
            None => LeaderView::Unknown,
        },
        None => LeaderView::Unknown,
    }
}

/// Waits until the metrics change, a short pause passes, or the deadline
/// comes, whichever is first; used between attempts so a retry sees a newer
/// view of the cluster without spinning.
pub async fn wait_for_change(metrics: &Metrics, deadline: Instant) {
    let mut metrics = metrics.clone();
    let pause = Instant::now() + std::time::Duration::from_millis(50);
    let until = pause.min(deadline);
    let _ = tokio::time::timeout_at(until, metrics.changed()).await;
}
