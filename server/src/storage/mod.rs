//! Durable storage over sqlite: the raft log and vote, and the state machine (history of every key, applied index, snapshots).
