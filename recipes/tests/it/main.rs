//! The recipes against a real in-process witan member (through
//! `LocalCore`, the same `KvCore` the server serves them with).

mod barrier;
mod common;
mod double_barrier;
mod election;
mod lock;
mod rwlock;
mod semaphore;
