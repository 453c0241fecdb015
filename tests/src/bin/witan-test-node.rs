//! The `witan` member binary, built inside this package so integration tests
//! can start real member processes (`CARGO_BIN_EXE_witan-test-node`).

fn main() -> std::process::ExitCode {
    witan_server::cli::main()
}
