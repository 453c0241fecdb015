//! The `witan` binary: one member of a witan cluster.

fn main() -> std::process::ExitCode {
    witan_server::cli::main()
}
