//! Generates the HistorySink service from `proto/clawdbot/v1/history_sink.proto` (vendored
//! protoc: nothing to install).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let file = "../../proto/clawdbot/v1/history_sink.proto";
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure().compile_with_config(config, &[file], &["../../proto"])?;
    println!("cargo:rerun-if-changed={file}");
    Ok(())
}
