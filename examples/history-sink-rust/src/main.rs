//! Serves the in-memory history store: `cargo run -- 127.0.0.1:50061`, then point clawdbot at
//! it with `storage: {type: custom, endpoint: "http://127.0.0.1:50061", control: {...}}`.

mod memory;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listen = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:50061".into());
    let address = listen.parse()?;
    eprintln!("history sink on {listen}");
    tonic::transport::Server::builder()
        .add_service(clawdbot_history_sink::service(memory::MemoryHistory::default()))
        .serve(address)
        .await?;
    Ok(())
}
