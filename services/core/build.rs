//! Generates the message model and the gRPC services from `proto/clawdbot/v1`.
//! Uses the vendored protoc so that a fresh machine needs nothing installed by hand.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_root = "../../proto";
    let files = [
        "../../proto/clawdbot/v1/envelope.proto",
        "../../proto/clawdbot/v1/egress.proto",
        "../../proto/clawdbot/v1/skill.proto",
    ];
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure().compile_with_config(config, &files, &[proto_root])?;
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    Ok(())
}
