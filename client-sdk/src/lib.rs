//! The typed Rust SDK for witan (typed KV and Txn builders, sessions, resumable watches, endpoint failover); it arrives with the recipes and SDK issue.
