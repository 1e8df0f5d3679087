//! `clawdbot-mock`: a chat platform's API on a port, for trying clawdbot with no platform
//! account and for pointing independent SDKs at the mock the tests use. See
//! `clawdbot_testkit::standalone` for the control API.

use clap::Parser;
use clawdbot_testkit::standalone::{self, Account, Options, PlatformName};

/// Serves one chat platform's API as a mock: it checks credentials and signatures the way the
/// platform documents them and records every message clawdbot sends. A control API injects
/// events into clawdbot and programs faults:
///   GET  /received?count=N&timeout_ms=T     what the mock accepted
///   POST /inject  {"text":"/echo hi","user":"20002","group":"30003"}
///   POST /faults  {"count":1,"delay_ms":0,"status":503,"body":{}}
///   GET  /                                   the clawdbot config section for this mock
#[derive(Parser, Debug)]
#[command(name = "clawdbot-mock", version)]
struct Args {
    /// onebot | wecom | dingtalk | qq
    platform: String,
    /// Address of the platform API (what clawdbot's api_root / api_base points at).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// Address of the control API.
    #[arg(long, default_value = "127.0.0.1:0")]
    control: String,
    /// clawdbot's ingress (http://host:port): injected events are posted to its callback path.
    #[arg(long)]
    callback: Option<String>,
    /// OneBot: keep a reverse WebSocket open to clawdbot at this URL
    /// (ws://host:port/clawdbot/onebot/ws).
    #[arg(long)]
    reverse_ws: Option<String>,
    /// OneBot self_id [10001]; WeCom corp id [wwmockcorp0000001]; DingTalk AppKey
    /// [dingmockkey]; QQ AppID [102000001].
    #[arg(long)]
    id: Option<String>,
    /// OneBot secret (X-Signature) [none]; WeCom corp secret [mock-secret]; DingTalk AppSecret
    /// [mock-app-secret]; QQ bot secret [mockqqbotsecret00].
    #[arg(long)]
    secret: Option<String>,
    /// OneBot access_token [none]; WeCom callback Token [mocktoken].
    #[arg(long)]
    token: Option<String>,
    /// WeCom EncodingAESKey [the official sample's key].
    #[arg(long)]
    aes_key: Option<String>,
    /// WeCom AgentId [1000002].
    #[arg(long)]
    agent_id: Option<i64>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let platform: PlatformName = match args.platform.parse() {
        Ok(platform) => platform,
        Err(reason) => {
            eprintln!("clawdbot-mock: {reason}");
            return std::process::ExitCode::from(64);
        }
    };
    let options = Options {
        platform,
        listen: args.listen,
        control: args.control,
        callback: args.callback,
        reverse_ws: args.reverse_ws,
        account: Account {
            id: args.id,
            secret: args.secret,
            token: args.token,
            aes_key: args.aes_key,
            agent_id: args.agent_id,
        },
    };
    let (served, serving) = match standalone::start(options).await {
        Ok(started) => started,
        Err(reason) => {
            eprintln!("clawdbot-mock: {reason}");
            return std::process::ExitCode::from(1);
        }
    };
    println!(
        "clawdbot-mock: {} API on http://{}, control API on http://{}",
        args.platform, served.api, served.control
    );
    println!(
        "clawdbot-mock: the clawdbot config for it: GET http://{}/",
        served.control
    );
    serving.await;
    std::process::ExitCode::SUCCESS
}
