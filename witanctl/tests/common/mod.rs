//! Running the real `witanctl` binary from tests: one-shot runs with a
//! deadline, and long-running children whose output lines are read as
//! they come (each with a deadline), killed when dropped.

#![allow(dead_code)]

pub mod certs;
pub mod etcd;
pub mod witan;

use std::process::{Output, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// Far above what any command here takes; only a hang reaches it.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// A free loopback port (for a server a test starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The command for `witanctl --endpoints <endpoint> <args>`.
fn command(endpoint: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_witanctl"));
    cmd.arg("--endpoints")
        .arg(endpoint)
        .args(args)
        .env_remove("WITANCTL_ENDPOINTS")
        .env_remove("ETCDCTL_ENDPOINTS")
        .kill_on_drop(true);
    cmd
}

/// Runs witanctl to the end with `stdin` as its input.
pub async fn run_with_input(endpoint: &str, args: &[&str], stdin: &str) -> Output {
    let mut child = command(endpoint, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("witanctl starts");
    let mut input = child.stdin.take().expect("a stdin pipe");
    input
        .write_all(stdin.as_bytes())
        .await
        .expect("stdin takes the input");
    drop(input);
    tokio::time::timeout(DEADLINE, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("witanctl {args:?} finishes"))
        .expect("witanctl runs")
}

/// Runs witanctl to the end (empty stdin).
pub async fn run(endpoint: &str, args: &[&str]) -> Output {
    run_with_input(endpoint, args, "").await
}

/// Runs witanctl, asserts it succeeded, and returns its stdout.
pub async fn ok(endpoint: &str, args: &[&str]) -> String {
    let out = run(endpoint, args).await;
    assert!(
        out.status.success(),
        "witanctl {args:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Runs witanctl, asserts it failed with status 1, and returns its stderr.
pub async fn fails(endpoint: &str, args: &[&str]) -> String {
    let out = run(endpoint, args).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "witanctl {args:?} should fail with 1:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stderr).expect("UTF-8 output")
}

/// A witanctl that keeps running (watch, lock, elect, ...).
pub struct Running {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Running {
    /// Starts `witanctl --endpoints <endpoint> <args>`.
    pub fn start(endpoint: &str, args: &[&str]) -> Running {
        let mut child = command(endpoint, args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("witanctl starts");
        let stdout = child.stdout.take().expect("a stdout pipe");
        Running {
            child,
            lines: BufReader::new(stdout).lines(),
        }
    }

    /// The next line of its output.
    pub async fn line(&mut self) -> String {
        tokio::time::timeout(DEADLINE, self.lines.next_line())
            .await
            .expect("a line in time")
            .expect("stdout reads")
            .expect("a line before the end of output")
    }

    /// The next `n` lines.
    pub async fn lines(&mut self, n: usize) -> Vec<String> {
        let mut lines = Vec::new();
        for _ in 0..n {
            lines.push(self.line().await);
        }
        lines
    }

    /// Sends SIGTERM (as a service manager would) and waits for the exit
    /// status.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().expect("still running");
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success());
        tokio::time::timeout(DEADLINE, self.child.wait())
            .await
            .expect("it exits after SIGTERM")
            .expect("its status")
    }

    /// Waits for it to end by itself.
    pub async fn finish(mut self) -> std::process::ExitStatus {
        tokio::time::timeout(DEADLINE, self.child.wait())
            .await
            .expect("it finishes")
            .expect("its status")
    }
}

/// A 16-digit lowercase hex ID (how etcdctl prints lease IDs).
pub fn is_hex16(text: &str) -> bool {
    text.len() == 16
        && text
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
}
