//! Compiles the .proto files with protox (a pure-Rust protobuf compiler), so
//! building witan needs no system `protoc`, and generates serde (JSON)
//! implementations of etcd's messages with pbjson for the HTTP/JSON gateway:
//! proto field names, 64-bit integers as strings, bytes as base64, enums by
//! name, default values omitted (the encoding etcd's grpc-gateway uses).

use prost::Message;

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
    let encoded = descriptors.encode_to_vec();
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    // etcd's gateway ignores fields it does not know, so JSON requests
    // written for a newer etcd still work.
    pbjson_build::Builder::new()
        .register_descriptors(&encoded)?
        .preserve_proto_field_names()
        .ignore_unknown_fields()
        .build(&[
            ".mvccpb",
            ".authpb",
            ".etcdserverpb",
            ".v3lockpb",
            ".v3electionpb",
        ])?;
    Ok(())
}
