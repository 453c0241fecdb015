//! Compiles the .proto files with protox (a pure-Rust protobuf compiler), so
//! building witan needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/etcd/kv.proto",
        "proto/etcd/auth.proto",
        "proto/etcd/rpc.proto",
        "proto/etcd/v3lock.proto",
        "proto/etcd/v3election.proto",
        "proto/witan/raft.proto",
        "proto/witan/recipes.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
