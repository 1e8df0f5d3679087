//! The sandbox in a real browser: headless Chromium, driven over WebDriver (chromedriver),
//! opens the page `clawdbot up` serves, sends `/echo hi`, and sees `hi` appear — through
//! ingress, the bus, the worker, egress and the live feed, as a person would.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{Backend, Clawdbot, Ports, Setup};
use fantoccini::{ClientBuilder, Locator};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver on a free port, killed on drop.
struct Driver {
    child: tokio::process::Child,
    port: u16,
    profile: std::path::PathBuf,
}

impl Driver {
    async fn start() -> Self {
        for binary in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                std::path::Path::new(binary).exists(),
                "{binary} is missing: install Debian's `chromium` and `chromium-driver` (scripts/test does)"
            );
        }
        let port = clawdbot_testkit::free_port();
        let child = tokio::process::Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "chromedriver did not listen on {port}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = std::env::temp_dir().join(format!(
            "clawdbot-chromium-{}",
            clawdbot_testkit::random_suffix()
        ));
        Self {
            child,
            port,
            profile,
        }
    }

    async fn browser(&self) -> fantoccini::Client {
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_string(),
            serde_json::json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    format!("--user-data-dir={}", self.profile.display()),
                ],
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a Chromium session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _killed = self.child.start_kill();
        let _removed = std::fs::remove_dir_all(&self.profile);
    }
}

#[tokio::test]
async fn a_person_types_echo_in_the_sandbox_and_sees_the_reply() {
    let setup = Setup::new(Backend::Embedded).await;
    let ports = Ports::new();
    let _bot = Clawdbot::start(&["up"], &setup.default_config(&ports), &ports).await;
    let driver = Driver::start().await;
    let browser = driver.browser().await;

    browser
        .goto(&format!("http://127.0.0.1:{}/sandbox", ports.ingress))
        .await
        .expect("page opens");
    // Chat in a group, as an admin, so the identity controls are exercised too.
    browser
        .find(Locator::Css("#kind"))
        .await
        .expect("kind")
        .select_by_value("group")
        .await
        .expect("group");
    let group = browser
        .find(Locator::Css("#group"))
        .await
        .expect("group id");
    group.clear().await.expect("clear");
    group.send_keys("4711").await.expect("type group");
    browser
        .find(Locator::Css("#admin"))
        .await
        .expect("admin")
        .click()
        .await
        .expect("admin on");
    // The page subscribes to the live feed when the conversation changes; wait until it has.
    browser
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("body[data-watching='group:4711']"))
        .await
        .expect("watching the group");

    browser
        .find(Locator::Css("#input"))
        .await
        .expect("input")
        .send_keys("/echo hi")
        .await
        .expect("type");
    browser
        .find(Locator::Css("#send"))
        .await
        .expect("send")
        .click()
        .await
        .expect("send");
    let reply = browser
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(".msg.bot"))
        .await
        .expect("a reply appears");
    let text = reply.text().await.expect("reply text");
    assert!(text.ends_with("hi"), "the bot's reply reads `hi`: {text:?}");
    assert!(
        text.contains("echo"),
        "it names the skill that answered: {text:?}"
    );
    let mine = browser
        .find(Locator::Css(".msg.me"))
        .await
        .expect("own message")
        .text()
        .await
        .expect("text");
    assert!(
        mine.contains("(admin)") && mine.contains("/echo hi"),
        "{mine:?}"
    );
    browser.close().await.expect("close");
}
