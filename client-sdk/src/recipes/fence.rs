//! Fenced writes: [`FencedTxn`], a transaction that commits only while a
//! hold is current, and its outcome [`Fenced`].
//!
//! Why: a holder cannot know when its hold ends (a pause past its lease's
//! TTL runs no code), so the store checks instead, atomically with the
//! write: `create_revision(holder key) == token` (see docs/RECIPES.md).

use witan_recipes::FencingToken;

use crate::client::Client;
use crate::error::Error;
use crate::kv::{Cmp, Compare, Get, GetResponse, KeyValue, Op, OpResponse, TxnResponse};

/// A transaction guarded by a hold's fencing token: its `then` ops run
/// only while the hold is current, checked by the store atomically with
/// the writes. Made by `fenced()` on a guard
/// ([`LockGuard::fenced`](crate::LockGuard::fenced), ...).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let cluster = witan_client_testkit::Cluster::single().await;
/// # let client = witan_client::Client::connect(cluster.endpoints(), Default::default()).await?;
/// use witan_client::{Cmp, Compare, Fenced, Op, Session};
///
/// let session = Session::new(&client, 10).await?;
/// let guard = client.lock("/locks/report").acquire(&session).await?;
/// let outcome = guard
///     .fenced()
///     .when([Compare::version("/report", Cmp::Equal, 0)])
///     .then([Op::put("/report", "v1")])
///     .or_else([Op::get("/report")])
///     .commit()
///     .await?;
/// assert!(matches!(outcome, Fenced::Applied(_)));
///
/// // The lock is still held but the extra guard fails now.
/// let again = guard
///     .fenced()
///     .when([Compare::version("/report", Cmp::Equal, 0)])
///     .then([Op::put("/report", "v2")])
///     .commit()
///     .await?;
/// assert!(matches!(again, Fenced::Failed(_)));
/// # cluster.stop().await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
#[must_use = "a FencedTxn does nothing until committed"]
pub struct FencedTxn {
    client: Client,
    key: Vec<u8>,
    token: FencingToken,
    holder: Get,
    compares: Vec<Compare>,
    then: Vec<Op>,
    or_else: Vec<Op>,
}

/// What a [`FencedTxn`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fenced {
    /// The hold was current and every guard held: the `then` ops ran (their
    /// responses, in order).
    Applied(TxnResponse),
    /// The hold is no longer current (released, its lease expired, or taken
    /// over): nothing was written.
    Lost {
        /// Who holds now: for a lock or a leadership the oldest key of the
        /// name (the current holder); for other holds the hold's own key
        /// as it is now. `None`: nobody.
        current_holder: Option<KeyValue>,
    },
    /// The hold is current but one of the extra `when` guards failed: the
    /// `or_else` ops ran (their responses, in order).
    Failed(TxnResponse),
}

impl FencedTxn {
    pub(crate) fn new(client: &Client, key: &[u8], token: FencingToken, holder: Get) -> Self {
        FencedTxn {
            client: client.clone(),
            key: key.to_vec(),
            token,
            holder,
            compares: Vec::new(),
            then: Vec::new(),
            or_else: Vec::new(),
        }
    }

    /// Adds guards besides the fence (all must hold for `then`).
    pub fn when(mut self, compares: impl IntoIterator<Item = Compare>) -> Self {
        self.compares.extend(compares);
        self
    }

    /// Adds ops run while the hold is current and every guard holds.
    pub fn then(mut self, ops: impl IntoIterator<Item = Op>) -> Self {
        self.then.extend(ops);
        self
    }

    /// Adds ops run when the hold is current but a `when` guard failed.
    pub fn or_else(mut self, ops: impl IntoIterator<Item = Op>) -> Self {
        self.or_else.extend(ops);
        self
    }

    /// Runs the transaction. Like any write it may fail with
    /// [`Error::OutcomeUnknown`]: then read back before writing again.
    pub async fn commit(self) -> Result<Fenced, Error> {
        let fence = Compare::create_revision(self.key.clone(), Cmp::Equal, self.token.0);
        // On failure, read the holder key and who holds now first, to tell
        // a lost hold from a failed guard.
        let mut or_else = vec![Op::get(self.key.clone()), Op::Get(self.holder)];
        or_else.extend(self.or_else);
        let response = self
            .client
            .txn()
            .when(std::iter::once(fence).chain(self.compares))
            .then(self.then)
            .or_else(or_else)
            .commit()
            .await?;
        outcome(response, self.token)
    }
}

/// Tells apart what a fenced transaction's answer means.
fn outcome(response: TxnResponse, token: FencingToken) -> Result<Fenced, Error> {
    if response.succeeded {
        return Ok(Fenced::Applied(response));
    }
    let mut responses = response.responses.into_iter();
    let own = get_of(responses.next())?;
    let holder = get_of(responses.next())?;
    if own
        .kvs
        .first()
        .is_some_and(|kv| kv.create_revision == token.0)
    {
        return Ok(Fenced::Failed(TxnResponse {
            header: response.header,
            succeeded: false,
            responses: responses.collect(),
        }));
    }
    Ok(Fenced::Lost {
        current_holder: holder.kvs.into_iter().next(),
    })
}

fn get_of(response: Option<OpResponse>) -> Result<GetResponse, Error> {
    match response {
        Some(OpResponse::Get(get)) => Ok(get),
        _ => Err(Error::UnexpectedResponse(
            "a fenced txn's failure branch did not start with its two reads",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::{Header, PutResponse};

    fn read(kvs: Vec<KeyValue>) -> OpResponse {
        OpResponse::Get(GetResponse {
            kvs,
            ..GetResponse::default()
        })
    }

    fn kv(key: &str, create_revision: i64) -> KeyValue {
        KeyValue {
            key: key.into(),
            create_revision,
            ..KeyValue::default()
        }
    }

    fn failed(responses: Vec<OpResponse>) -> TxnResponse {
        TxnResponse {
            header: Header::default(),
            succeeded: false,
            responses,
        }
    }

    #[test]
    fn a_gone_or_replaced_key_is_a_lost_hold() {
        let gone = failed(vec![read(vec![]), read(vec![kv("l/2", 9)])]);
        assert_eq!(
            outcome(gone, FencingToken(5)).unwrap(),
            Fenced::Lost {
                current_holder: Some(kv("l/2", 9))
            }
        );
        let replaced = failed(vec![read(vec![kv("l/1", 7)]), read(vec![])]);
        assert_eq!(
            outcome(replaced, FencingToken(5)).unwrap(),
            Fenced::Lost {
                current_holder: None
            }
        );
    }

    #[test]
    fn a_current_key_means_a_guard_failed() {
        let extra = OpResponse::Put(PutResponse::default());
        let response = failed(vec![
            read(vec![kv("l/1", 5)]),
            read(vec![kv("l/1", 5)]),
            extra.clone(),
        ]);
        assert_eq!(
            outcome(response, FencingToken(5)).unwrap(),
            Fenced::Failed(failed(vec![extra]))
        );
    }

    #[test]
    fn success_is_applied_and_a_malformed_answer_an_error() {
        let ok = TxnResponse {
            succeeded: true,
            ..TxnResponse::default()
        };
        assert_eq!(
            outcome(ok.clone(), FencingToken(1)).unwrap(),
            Fenced::Applied(ok)
        );
        assert!(matches!(
            outcome(failed(vec![]), FencingToken(1)),
            Err(Error::UnexpectedResponse(_))
        ));
    }
}
