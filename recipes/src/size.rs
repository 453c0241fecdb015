//! The agreed size of a semaphore or double barrier: recorded in a
//! `name/size` key (decimal, under no lease) by the first participant, and
//! checked by every later one in the same Txn that puts its key, so nobody
//! joins under a size the others do not share. The record outlives its
//! participants (one small key per name); it may change only while no
//! participant is in: a caller with another size then records its own.

use witan_proto::etcdserverpb::compare::CompareResult;
use witan_proto::etcdserverpb::TxnRequest;

use crate::core::KvCore;
use crate::error::RecipeError;
use crate::keys::Span;
use crate::ops;
use crate::queue::{enqueue_txn, entry_from, Entry, Ticket};

/// How a recipe's size is recorded and checked.
#[derive(Debug, Clone)]
pub(crate) struct Size {
    /// The key holding the recorded size.
    pub key: Vec<u8>,
    /// Where the participants' keys live.
    pub members: Span,
    /// What the size is, for [`RecipeError::SizeMismatch`].
    pub what: &'static str,
    /// The size this caller gives.
    pub size: u32,
}

/// What to do about the recorded size before joining.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SizeCheck {
    /// The record agrees: join.
    Agreed,
    /// Record this caller's size while joining; `when_empty`: only if no
    /// participant is in (it replaces another size).
    Record {
        /// Whether the Txn must also find the members' span empty.
        when_empty: bool,
    },
    /// Participants are in under this other size.
    Mismatch(u32),
}

/// The recorded size, if `value` is one.
pub(crate) fn parse_size(value: &[u8]) -> Option<u32> {
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// Decides from the size record (`None`: absent) and how many
/// participants are in.
pub(crate) fn check_size(recorded: Option<&[u8]>, members: i64, size: u32) -> SizeCheck {
    match recorded.map(parse_size) {
        Some(Some(r)) if r == size => SizeCheck::Agreed,
        Some(Some(r)) if members > 0 => SizeCheck::Mismatch(r),
        Some(Some(_)) => SizeCheck::Record { when_empty: true },
        // No record (or not a number: nobody could have agreed on it):
        // this caller's size becomes the record.
        Some(None) | None => SizeCheck::Record { when_empty: false },
    }
}

/// The Txn that joins under `size`: it holds only while the size record
/// is unchanged since it was read at `size_mod` (and, to replace another
/// size, while nobody is in), records the size if asked, and puts (or
/// resumes) the ticket's key in a nested Txn.
pub(crate) fn join_txn(
    size: &Size,
    check: SizeCheck,
    size_mod: i64,
    ticket: &Ticket<'_>,
) -> TxnRequest {
    let mut compare = vec![ops::compare_mod(&size.key, CompareResult::Equal, size_mod)];
    let mut success = Vec::with_capacity(2);
    if let SizeCheck::Record { when_empty } = check {
        if when_empty {
            compare.push(ops::created_before(&size.members, 1));
        }
        success.push(ops::put_op(&size.key, size.size.to_string().as_bytes(), 0));
    }
    success.push(ops::txn_op(enqueue_txn(ticket)));
    TxnRequest {
        compare,
        success,
        failure: Vec::new(),
    }
}

/// Puts (or resumes) the ticket's key once the size is agreed or
/// recorded; [`RecipeError::SizeMismatch`] if others are in under another
/// size.
pub(crate) async fn join<C: KvCore>(
    core: &C,
    size: &Size,
    ticket: &Ticket<'_>,
) -> Result<Entry, RecipeError> {
    loop {
        let ([record_read, members_read], _) =
            ops::snapshot(core, [ops::get(&size.key), ops::count(&size.members)]).await?;
        let record = record_read.kvs.first();
        let check = check_size(
            record.map(|kv| kv.value.as_slice()),
            members_read.count,
            size.size,
        );
        if let SizeCheck::Mismatch(recorded) = check {
            return Err(RecipeError::SizeMismatch {
                what: size.what,
                recorded,
                requested: size.size,
            });
        }
        let size_mod = record.map_or(0, |kv| kv.mod_revision);
        let resp = core.txn(join_txn(size, check, size_mod, ticket)).await?;
        if !resp.succeeded {
            // The record or the members changed since the read: look again.
            continue;
        }
        let revision = ops::revision(&resp.header)?;
        let nested = ops::txn_at(&resp, resp.responses.len().saturating_sub(1))?;
        return entry_from(ticket, nested, revision);
    }
}

#[cfg(test)]
mod tests {
    use witan_proto::etcdserverpb::compare::{CompareTarget, TargetUnion};
    use witan_proto::etcdserverpb::request_op::Request;

    use super::*;

    #[test]
    fn the_first_caller_records_and_later_ones_must_agree_while_anyone_is_in() {
        assert_eq!(
            check_size(None, 0, 3),
            SizeCheck::Record { when_empty: false }
        );
        assert_eq!(check_size(Some(b"3"), 2, 3), SizeCheck::Agreed);
        assert_eq!(check_size(Some(b"3"), 2, 4), SizeCheck::Mismatch(3));
        assert_eq!(
            check_size(Some(b"3"), 0, 4),
            SizeCheck::Record { when_empty: true }
        );
        assert_eq!(
            check_size(Some(b"junk"), 2, 4),
            SizeCheck::Record { when_empty: false }
        );
        assert_eq!(parse_size(b"12"), Some(12));
        assert_eq!(parse_size(b"-1"), None);
    }

    #[test]
    fn replacing_a_size_requires_an_empty_span_and_an_unchanged_record() {
        let size = Size {
            key: b"s/size".to_vec(),
            members: Span::prefix(b"s/holders/".to_vec()),
            what: "semaphore permits",
            size: 4,
        };
        let ticket = Ticket {
            key: b"s/holders/a",
            value: b"",
            lease: 10,
        };
        let txn = join_txn(&size, SizeCheck::Record { when_empty: true }, 8, &ticket);
        assert_eq!(txn.compare.len(), 2);
        assert_eq!(txn.compare[0].target, CompareTarget::Mod as i32);
        assert_eq!(
            txn.compare[0].target_union,
            Some(TargetUnion::ModRevision(8))
        );
        assert_eq!(txn.compare[1].key, b"s/holders/");
        assert_eq!(txn.compare[1].range_end, b"s/holders0");
        assert_eq!(txn.compare[1].target, CompareTarget::Create as i32);
        assert_eq!(txn.compare[1].result, CompareResult::Less as i32);
        assert_eq!(
            txn.compare[1].target_union,
            Some(TargetUnion::CreateRevision(1))
        );
        match &txn.success[..] {
            [put, nested] => {
                assert!(
                    matches!(&put.request, Some(Request::RequestPut(p)) if p.key == b"s/size" && p.value == b"4" && p.lease == 0)
                );
                assert!(
                    matches!(&nested.request, Some(Request::RequestTxn(t)) if *t == enqueue_txn(&ticket))
                );
            }
            other => panic!("unexpected success branch {other:?}"),
        }

        let agreed = join_txn(&size, SizeCheck::Agreed, 8, &ticket);
        assert_eq!(agreed.compare.len(), 1);
        assert_eq!(agreed.success.len(), 1);
    }
}
