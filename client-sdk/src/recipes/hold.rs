//! What every guard shares: the holder key, its fencing token, the session
//! it was taken under, the fenced write, and letting go on drop.

use std::future::Future;

use tracing::debug;
use witan_recipes::FencingToken;

use super::Mode;
use super::fence::FencedTxn;
use crate::client::Client;
use crate::kv::{Cmp, Compare, Get, Op, SortOrder, SortTarget};
use crate::session::{LostSignal, SessionLost};

/// A hold on a recipe: its key exists, under the session's lease, while
/// the hold lasts.
///
/// Dropped without being released, it deletes its key in the background
/// (best effort; the lease's expiry lets go anyway). That delete is fenced
/// on the token, so it never removes a later key of the same name. A hold
/// taken again by the same lease resumes the same key (etcd's contract)
/// and shares its token: letting go of either lets go of both, as etcd's
/// Unlock does.
#[derive(Debug)]
pub(crate) struct Hold {
    pub client: Client,
    pub mode: Mode,
    pub key: Vec<u8>,
    pub token: FencingToken,
    /// The read saying who holds now, for [`Fenced::Lost`](super::Fenced).
    holder: Get,
    session: LostSignal,
    armed: bool,
}

impl Hold {
    pub fn new(
        client: &Client,
        mode: Mode,
        key: Vec<u8>,
        token: FencingToken,
        holder: Get,
        session: LostSignal,
    ) -> Hold {
        Hold {
            client: client.clone(),
            mode,
            key,
            token,
            holder,
            session,
            armed: true,
        }
    }

    pub fn fenced(&self) -> FencedTxn {
        FencedTxn::new(&self.client, &self.key, self.token, self.holder.clone())
    }

    pub fn is_lost(&self) -> bool {
        self.session.is_lost()
    }

    pub fn lost(&self) -> impl Future<Output = SessionLost> + Send + 'static + use<> {
        self.session.lost()
    }

    /// The hold was let go explicitly: nothing to do on drop.
    pub fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let key = std::mem::take(&mut self.key);
        let release = self
            .client
            .txn()
            .when([Compare::create_revision(
                key.clone(),
                Cmp::Equal,
                self.token.0,
            )])
            .then([Op::delete(key.clone())]);
        let token = self.token;
        runtime.spawn(async move {
            match release.commit().await {
                Ok(resp) => debug!(
                    key = %String::from_utf8_lossy(&key),
                    %token,
                    released = resp.succeeded,
                    "dropped hold let go"
                ),
                Err(err) => debug!(
                    key = %String::from_utf8_lossy(&key),
                    %token,
                    %err,
                    "dropped hold not let go; it ends with its lease"
                ),
            }
        });
    }
}

/// Who holds a lock or leads an election now: the oldest key of `name`.
pub(crate) fn oldest_of(name: &[u8]) -> Get {
    Get::new(witan_recipes::keys::prefix(name))
        .prefix()
        .sort(SortTarget::Create, SortOrder::Ascend)
        .limit(1)
}
