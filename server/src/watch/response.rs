//! What a watch stream sends and receives, independent of the wire: the
//! API layer turns client messages into [`Request`]s and [`Response`]s
//! into etcd's `WatchResponse` (adding the member's header fields).

use witan_proto::etcdserverpb::WatchCreateRequest;
use witan_proto::mvccpb::Event;

use super::spec::CreateError;

/// etcd's watch id for answers that concern no single watch (a refused
/// create, a progress answer for the whole stream).
pub const NO_WATCH_ID: i64 = -1;

/// One client request on a watch stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Start a watch.
    Create(WatchCreateRequest),
    /// Stop the watch with this id (an unknown id is ignored, as etcd).
    Cancel(i64),
    /// Report the revision the stream's watches have all reached.
    Progress,
}

/// One answer on a watch stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// The watch it concerns, or [`NO_WATCH_ID`].
    pub watch_id: i64,
    /// The header revision (what it means depends on the kind, as in etcd).
    pub revision: i64,
    /// What happened.
    pub kind: ResponseKind,
}

/// The kinds of answers, each mirroring an etcd `WatchResponse` shape.
#[derive(Debug, Clone, PartialEq)]
pub enum ResponseKind {
    /// The watch exists (`created`); revision: the current revision.
    Created,
    /// The create request was refused (`created` and `canceled`, watch id
    /// -1, the reason as `cancel_reason`).
    Refused(CreateError),
    /// The watch was cancelled on request (`canceled`).
    Canceled,
    /// The watch needs revisions that compaction removed: it is cancelled
    /// (`canceled` with `compact_revision`; revision 0, as etcd).
    Compacted {
        /// The compaction revision.
        compact_revision: i64,
    },
    /// Events of the watch. Live events come one revision per response
    /// (revision: theirs); catch-up responses hold several whole revisions
    /// (revision: the store's revision when read).
    Events {
        /// The events, in revision and sub-revision order.
        events: Vec<Event>,
        /// The watch asked for large responses to be split.
        fragment: bool,
    },
    /// A progress notification: the watch (or, with watch id -1, every
    /// watch of the stream) has received every event up to `revision`.
    Progress,
}
