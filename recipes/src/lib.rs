//! Coordination recipes (Lock, Election, Barrier, DoubleBarrier, Semaphore, with fencing tokens), written once against a small trait for the KV core; they arrive with the recipes issue.
