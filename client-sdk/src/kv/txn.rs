//! Transactions: the [`Txn`] builder (`when` compares, `then` ops,
//! `or_else` ops), the [`Op`]s it runs and its [`TxnResponse`].

use witan_proto::etcdserverpb::request_op::Request as RawRequest;
use witan_proto::etcdserverpb::response_op::Response as RawResponse;
use witan_proto::etcdserverpb::{RequestOp, ResponseOp, TxnRequest, TxnResponse as RawTxnResponse};

use super::Detached;
use super::compare::Compare;
use super::delete::{Delete, DeleteResponse};
use super::get::{Get, GetResponse};
use super::key_value::Header;
use super::put::{Put, PutResponse};
use crate::client::Client;
use crate::error::Error;
use crate::grpc;
use crate::retry::Idempotence;

/// One operation of a transaction branch.
#[derive(Debug, Clone)]
pub enum Op {
    /// A read.
    Get(Get),
    /// A write.
    Put(Put),
    /// A delete.
    Delete(Delete),
    /// A nested transaction.
    Txn(Txn),
}

impl Op {
    /// Reads one key (use [`Op::from`] with a [`Get`] for more options).
    pub fn get(key: impl Into<Vec<u8>>) -> Op {
        Op::Get(Get::new(key))
    }

    /// Writes one key (use [`Op::from`] with a [`Put`] for more options).
    pub fn put(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Op {
        Op::Put(Put::new(key, value))
    }

    /// Deletes one key (use [`Op::from`] with a [`Delete`] for more
    /// options).
    pub fn delete(key: impl Into<Vec<u8>>) -> Op {
        Op::Delete(Delete::new(key))
    }

    /// Runs a nested transaction.
    pub fn txn(txn: Txn) -> Op {
        Op::Txn(txn)
    }

    pub(crate) fn into_raw(self) -> RequestOp {
        let request = match self {
            Op::Get(get) => RawRequest::RequestRange(get.request),
            Op::Put(put) => RawRequest::RequestPut(put.request),
            Op::Delete(delete) => RawRequest::RequestDeleteRange(delete.request),
            Op::Txn(txn) => RawRequest::RequestTxn(txn.request),
        };
        RequestOp {
            request: Some(request),
        }
    }
}

impl From<Get> for Op {
    fn from(get: Get) -> Op {
        Op::Get(get)
    }
}

impl From<Put> for Op {
    fn from(put: Put) -> Op {
        Op::Put(put)
    }
}

impl From<Delete> for Op {
    fn from(delete: Delete) -> Op {
        Op::Delete(delete)
    }
}

impl From<Txn> for Op {
    fn from(txn: Txn) -> Op {
        Op::Txn(txn)
    }
}

/// An atomic transaction: if every `when` compare holds, the `then` ops
/// run, otherwise the `or_else` ops; all at one revision.
///
/// Made by [`Client::txn`] (run it with [`Txn::commit`]) or [`Txn::new`]
/// (to nest it with [`Op::txn`]).
#[derive(Debug, Clone, Default)]
#[must_use = "a Txn does nothing until committed"]
pub struct Txn<C = Detached> {
    pub(crate) target: C,
    pub(crate) request: TxnRequest,
}

impl Txn<Detached> {
    /// An empty transaction, to nest in another one.
    ///
    /// ```
    /// use witan_client::{Compare, Op, Txn};
    /// let inner = Txn::new()
    ///     .when([Compare::absent("/b")])
    ///     .then([Op::put("/b", "1")]);
    /// let op = Op::txn(inner);
    /// # let _ = op;
    /// ```
    pub fn new() -> Self {
        Txn::default()
    }
}

impl<C> Txn<C> {
    /// Adds guards (all must hold for the `then` branch).
    pub fn when(mut self, compares: impl IntoIterator<Item = Compare>) -> Self {
        self.request
            .compare
            .extend(compares.into_iter().map(|c| c.0));
        self
    }

    /// Adds ops run when every guard holds.
    pub fn then(mut self, ops: impl IntoIterator<Item = Op>) -> Self {
        self.request
            .success
            .extend(ops.into_iter().map(Op::into_raw));
        self
    }

    /// Adds ops run when a guard fails.
    pub fn or_else(mut self, ops: impl IntoIterator<Item = Op>) -> Self {
        self.request
            .failure
            .extend(ops.into_iter().map(Op::into_raw));
        self
    }
}

impl Txn<Client> {
    /// Runs the transaction.
    ///
    /// A transaction that only reads is repeated on another member when
    /// one fails; one that writes only when it certainly was not applied.
    pub async fn commit(self) -> Result<TxnResponse, Error> {
        let response = self.target.txn_raw(self.request).await?;
        TxnResponse::from_raw(response)
    }
}

impl Client {
    /// Starts a transaction.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = witan_client_testkit::Cluster::single().await;
    /// # let client = witan_client::Client::connect(cluster.endpoints(), Default::default()).await?;
    /// use witan_client::{Cmp, Compare, Op};
    ///
    /// client.put("/config/mode", "blue").await?;
    /// let response = client
    ///     .txn()
    ///     .when([Compare::value("/config/mode", Cmp::Equal, "blue")])
    ///     .then([Op::put("/config/mode", "green")])
    ///     .or_else([Op::get("/config/mode")])
    ///     .commit()
    ///     .await?;
    /// assert!(response.succeeded);
    /// # cluster.stop().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn txn(&self) -> Txn<Client> {
        Txn {
            target: self.clone(),
            request: TxnRequest::default(),
        }
    }

    /// An etcd Txn: repeated on another member when it only reads, or when
    /// it certainly was not applied.
    pub(crate) async fn txn_raw(&self, request: TxnRequest) -> Result<RawTxnResponse, Error> {
        let kind = if read_only(&request) {
            Idempotence::Safe
        } else {
            Idempotence::Write
        };
        self.execute(kind, |channel| {
            let request = request.clone();
            async move { Ok(grpc::kv(channel).txn(request).await?.into_inner()) }
        })
        .await
    }
}

/// Whether no branch of the transaction (nested ones included) writes.
fn read_only(request: &TxnRequest) -> bool {
    request
        .success
        .iter()
        .chain(&request.failure)
        .all(|op| match &op.request {
            Some(RawRequest::RequestRange(_)) | None => true,
            Some(RawRequest::RequestTxn(nested)) => read_only(nested),
            Some(RawRequest::RequestPut(_)) | Some(RawRequest::RequestDeleteRange(_)) => false,
        })
}

/// What a [`Txn`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TxnResponse {
    /// `header.revision` is the revision the transaction created, if it
    /// wrote.
    pub header: Header,
    /// Whether every guard held (the `then` branch ran).
    pub succeeded: bool,
    /// One response per op of the branch that ran, in order.
    pub responses: Vec<OpResponse>,
}

impl TxnResponse {
    pub(crate) fn from_raw(response: RawTxnResponse) -> Result<TxnResponse, Error> {
        let responses = response
            .responses
            .into_iter()
            .map(OpResponse::from_raw)
            .collect::<Result<_, _>>()?;
        Ok(TxnResponse {
            header: Header::from(response.header),
            succeeded: response.succeeded,
            responses,
        })
    }
}

/// The response of one [`Op`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpResponse {
    /// Of a [`Op::Get`].
    Get(GetResponse),
    /// Of a [`Op::Put`].
    Put(PutResponse),
    /// Of a [`Op::Delete`].
    Delete(DeleteResponse),
    /// Of a [`Op::Txn`].
    Txn(TxnResponse),
}

impl OpResponse {
    fn from_raw(response: ResponseOp) -> Result<OpResponse, Error> {
        Ok(match response.response {
            Some(RawResponse::ResponseRange(r)) => OpResponse::Get(r.into()),
            Some(RawResponse::ResponsePut(r)) => OpResponse::Put(r.into()),
            Some(RawResponse::ResponseDeleteRange(r)) => OpResponse::Delete(r.into()),
            Some(RawResponse::ResponseTxn(r)) => OpResponse::Txn(TxnResponse::from_raw(r)?),
            None => {
                return Err(Error::UnexpectedResponse(
                    "a txn op response without a body",
                ));
            }
        })
    }

    /// The response of a get, if this is one.
    pub fn as_get(&self) -> Option<&GetResponse> {
        match self {
            OpResponse::Get(r) => Some(r),
            _ => None,
        }
    }

    /// The response of a put, if this is one.
    pub fn as_put(&self) -> Option<&PutResponse> {
        match self {
            OpResponse::Put(r) => Some(r),
            _ => None,
        }
    }

    /// The response of a delete, if this is one.
    pub fn as_delete(&self) -> Option<&DeleteResponse> {
        match self {
            OpResponse::Delete(r) => Some(r),
            _ => None,
        }
    }

    /// The response of a nested transaction, if this is one.
    pub fn as_txn(&self) -> Option<&TxnResponse> {
        match self {
            OpResponse::Txn(r) => Some(r),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use witan_proto::etcdserverpb::{PutRequest, RangeRequest, RangeResponse};

    use super::*;
    use crate::kv::compare::Cmp;

    #[test]
    fn the_builder_fills_the_three_parts_in_order() {
        let txn = Txn::new()
            .when([Compare::absent("a")])
            .when([Compare::value("b", Cmp::Equal, "x")])
            .then([Op::put("a", "1"), Op::get("b")])
            .or_else([Op::delete("a")]);
        let request = txn.request;
        assert_eq!(request.compare.len(), 2);
        assert_eq!(request.compare[1].key, b"b");
        assert_eq!(
            request.success[0].request,
            Some(RawRequest::RequestPut(PutRequest {
                key: b"a".to_vec(),
                value: b"1".to_vec(),
                ..Default::default()
            }))
        );
        assert_eq!(
            request.success[1].request,
            Some(RawRequest::RequestRange(RangeRequest {
                key: b"b".to_vec(),
                ..Default::default()
            }))
        );
        assert!(matches!(
            request.failure[0].request,
            Some(RawRequest::RequestDeleteRange(_))
        ));
    }

    #[test]
    fn only_transactions_without_writes_are_safe_to_repeat() {
        let reads = Txn::new()
            .when([Compare::absent("a")])
            .then([Op::get("a"), Op::txn(Txn::new().then([Op::get("b")]))])
            .or_else([Op::get("c")]);
        assert!(read_only(&reads.request));
        let nested_write = Txn::new().then([Op::txn(Txn::new().or_else([Op::delete("b")]))]);
        assert!(!read_only(&nested_write.request));
        let write_on_failure = Txn::new().or_else([Op::put("a", "1")]);
        assert!(!read_only(&write_on_failure.request));
    }

    #[test]
    fn responses_convert_op_by_op() {
        let raw = RawTxnResponse {
            header: None,
            succeeded: false,
            responses: vec![ResponseOp {
                response: Some(RawResponse::ResponseRange(RangeResponse {
                    count: 1,
                    ..Default::default()
                })),
            }],
        };
        let response = TxnResponse::from_raw(raw).unwrap();
        assert!(!response.succeeded);
        assert_eq!(response.responses[0].as_get().unwrap().count, 1);
        assert!(response.responses[0].as_put().is_none());

        let broken = RawTxnResponse {
            responses: vec![ResponseOp { response: None }],
            ..Default::default()
        };
        assert!(matches!(
            TxnResponse::from_raw(broken),
            Err(Error::UnexpectedResponse(_))
        ));
    }
}
