//! Register clients: each runs one operation at a time on a random register
//! key (a linearizable read, a put of a unique value, or a compare-and-swap
//! Txn from the value it last saw) and records each with its invoke and
//! completion time and outcome.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Result;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;
use witan_client::{Client, Cmp, Compare, Op};

use super::history::{Outcome, RegisterOp, RegisterOperation};
use super::workload::Shared;

/// One register client.
pub struct RegisterClient {
    shared: Shared,
    /// The member it talks to first.
    preferred: usize,
    keys: Vec<String>,
    /// Longest pause between two operations (each pause is random below).
    think: Duration,
    rng: StdRng,
    /// The value this client last saw on each key (what its CAS expects).
    seen: HashMap<String, Option<u64>>,
    /// Reads served locally by the member (may be stale).
    serializable: bool,
}

impl RegisterClient {
    /// A client on `keys`, preferring member `preferred`.
    pub fn new(
        shared: Shared,
        preferred: usize,
        keys: Vec<String>,
        think: Duration,
        rng: StdRng,
    ) -> RegisterClient {
        RegisterClient {
            shared,
            preferred,
            keys,
            think,
            rng,
            seen: HashMap::new(),
            serializable: false,
        }
    }

    /// Reads served by the member locally (serializable), which may be
    /// stale: the linearizability check must then catch them. Only for
    /// showing that the suite does.
    pub fn serializable_reads(mut self, serializable: bool) -> Self {
        self.serializable = serializable;
        self
    }

    /// Runs operations until the workload stops; returns them all.
    pub async fn run(mut self) -> Result<Vec<RegisterOperation>> {
        let client = self.shared.connect(self.preferred).await?;
        let mut process = self.shared.new_process();
        let mut history = Vec::new();
        while !self.shared.stopped() {
            let Some(key) = self.keys.choose(&mut self.rng).cloned() else {
                break;
            };
            let op = self.next_op(&key);
            let invoke = self.shared.clock.now();
            let (outcome, op) = self.perform(&client, &key, op).await;
            let complete = self.shared.clock.now();
            history.push(RegisterOperation {
                process,
                key,
                op,
                invoke,
                complete,
                outcome,
            });
            if outcome == Outcome::Unknown {
                process = self.shared.new_process();
            }
            let think = self.rng.gen_range(Duration::ZERO..=self.think);
            self.shared.pace(think).await;
        }
        Ok(history)
    }

    fn next_op(&mut self, key: &str) -> RegisterOp {
        let roll = self.rng.gen_range(0..10);
        if roll < 4 {
            RegisterOp::Read { observed: None }
        } else if roll < 7 {
            RegisterOp::Write {
                value: self.shared.unique(),
            }
        } else {
            RegisterOp::Cas {
                expected: self.seen.get(key).copied().flatten(),
                new: self.shared.unique(),
            }
        }
    }

    /// Runs `op` and returns its outcome and the op as it completed (a
    /// read's observed value filled in).
    async fn perform(
        &mut self,
        client: &Client,
        key: &str,
        op: RegisterOp,
    ) -> (Outcome, RegisterOp) {
        // The client's own deadline should end every call; this one only
        // guards against a call that never returns.
        let deadline = self.shared.op_timeout + Duration::from_secs(1);
        match op {
            RegisterOp::Read { .. } => {
                let mut get = client.get(key.to_string());
                if self.serializable {
                    get = get.serializable();
                }
                match tokio::time::timeout(deadline, get).await {
                    Ok(Ok(found)) => {
                        let observed = found.kvs.first().map(|kv| parse_value(key, &kv.value));
                        self.seen.insert(key.to_string(), observed);
                        (Outcome::Ok, RegisterOp::Read { observed })
                    }
                    // A read that failed changed nothing.
                    Ok(Err(_)) | Err(_) => (Outcome::Fail, RegisterOp::Read { observed: None }),
                }
            }
            RegisterOp::Write { value } => {
                let put = client.put(key.to_string(), value.to_string());
                let outcome = match tokio::time::timeout(deadline, put).await {
                    Ok(Ok(_)) => {
                        self.seen.insert(key.to_string(), Some(value));
                        Outcome::Ok
                    }
                    Ok(Err(err)) => super::workload::write_outcome(&err),
                    Err(_) => Outcome::Unknown,
                };
                (outcome, op)
            }
            RegisterOp::Cas { expected, new } => {
                let guard = match expected {
                    Some(value) => Compare::value(key.to_string(), Cmp::Equal, value.to_string()),
                    None => Compare::absent(key.to_string()),
                };
                let txn = client
                    .txn()
                    .when([guard])
                    .then([Op::put(key.to_string(), new.to_string())])
                    .commit();
                let outcome = match tokio::time::timeout(deadline, txn).await {
                    Ok(Ok(response)) if response.succeeded => {
                        self.seen.insert(key.to_string(), Some(new));
                        Outcome::Ok
                    }
                    // The compare did not hold: nothing was written.
                    Ok(Ok(_)) => Outcome::Fail,
                    Ok(Err(err)) => super::workload::write_outcome(&err),
                    Err(_) => Outcome::Unknown,
                };
                (outcome, op)
            }
        }
    }
}

/// A register value as stored (decimal). A value no client could have
/// written reads as `u64::MAX`, which no client writes either, so the
/// checks report the read instead of the run failing here.
pub fn parse_value(key: &str, raw: &[u8]) -> u64 {
    match std::str::from_utf8(raw).ok().and_then(|s| s.parse().ok()) {
        Some(value) => value,
        None => {
            tracing::error!(key, value = ?String::from_utf8_lossy(raw), "a register holds a value no client wrote");
            u64::MAX
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_and_garbage_is_never_a_written_value() {
        assert_eq!(parse_value("k", b"42"), 42);
        assert_eq!(parse_value("k", b"4x2"), u64::MAX);
        assert_eq!(parse_value("k", &[0xff]), u64::MAX);
    }
}
