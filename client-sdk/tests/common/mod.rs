//! What the SDK's integration tests share: a client on chosen members,
//! short deadlines, and waiting on a condition with a deadline.

#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;
use witan_client::{Client, ClientOptions};
use witan_client_testkit::Cluster;

/// Options for tests: quick to notice a stopped member.
pub fn options() -> ClientOptions {
    ClientOptions::default()
        .connect_timeout(Duration::from_millis(500))
        .request_timeout(Duration::from_secs(10))
        .keep_alive(Duration::from_millis(500), Duration::from_millis(500))
}

/// A client given members `order` of `cluster`, in that order.
pub async fn client_on(cluster: &Cluster, order: &[usize]) -> Client {
    let endpoints: Vec<String> = order.iter().map(|i| cluster.endpoint(*i)).collect();
    Client::connect(endpoints, options())
        .await
        .expect("the client connects")
}

/// Polls `condition` until it holds; panics after `within`.
pub async fn wait_until<F, Fut>(within: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !condition().await {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Awaits `future`, at most `within`.
pub async fn within<T>(within: Duration, what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(within, future).await {
        Ok(value) => value,
        Err(_) => panic!("{what}: not within {within:?}"),
    }
}
