//! The response header every etcd response carries.

use witan_proto::etcdserverpb::ResponseHeader;

use crate::raft::leader::Metrics;
use crate::raft::NodeId;

/// Fills the member-specific fields of response headers.
#[derive(Clone)]
pub struct HeaderSource {
    cluster_id: u64,
    member_id: NodeId,
    metrics: Metrics,
}

impl HeaderSource {
    /// Headers for member `member_id` of cluster `cluster_id`.
    pub fn new(cluster_id: u64, member_id: NodeId, metrics: Metrics) -> Self {
        HeaderSource {
            cluster_id,
            member_id,
            metrics,
        }
    }

    /// Completes a header whose revision the state machine already set.
    pub fn fill(&self, header: &mut Option<ResponseHeader>) {
        let header = header.get_or_insert_with(ResponseHeader::default);
        header.cluster_id = self.cluster_id;
        header.member_id = self.member_id;
        header.raft_term = self.metrics.borrow().current_term;
    }

    /// A complete header for a response at store revision `revision`.
    pub fn at(&self, revision: i64) -> Option<ResponseHeader> {
        let mut header = Some(ResponseHeader {
            revision,
            ..ResponseHeader::default()
        });
        self.fill(&mut header);
        header
    }
}
