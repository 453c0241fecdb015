//! Secrets typed by the operator: passwords for `--user` and for `user
//! add|passwd`, asked as etcdctl asks (the prompt on standard output, the
//! answer read with echo off when standard input is a terminal).

use std::io::{BufRead, IsTerminal};

use crate::error::CtlError;
use crate::output;

/// Asks for a secret as etcdctl does: `text` on standard output, the
/// answer read with echo off (on a terminal), then a line end.
pub fn prompt(text: &str) -> Result<String, CtlError> {
    output::emit(text);
    let answer = read_line(true)?;
    output::emit("\n");
    Ok(answer)
}

/// One line of standard input without its line end; with `hidden`, and
/// standard input a terminal, not echoed while typed.
pub fn read_line(hidden: bool) -> Result<String, CtlError> {
    let stdin = std::io::stdin();
    let hide = hidden && stdin.is_terminal();
    if hide {
        set_echo(false);
    }
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if hide {
        set_echo(true);
    }
    read.map_err(|source| CtlError::Stdio {
        what: "cannot read the password from standard input",
        source,
    })?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// Turns the terminal's echo off or back on, through `stty` (as etcdctl
/// does), so no terminal library is needed; a failure only means the
/// password shows while typed, so it is logged, not fatal.
fn set_echo(on: bool) {
    let setting = if on { "echo" } else { "-echo" };
    match std::process::Command::new("stty").arg(setting).status() {
        Ok(status) if status.success() => {}
        Ok(status) => tracing::warn!(%status, "stty {setting} failed"),
        Err(error) => tracing::warn!(%error, "cannot run stty {setting}"),
    }
}
