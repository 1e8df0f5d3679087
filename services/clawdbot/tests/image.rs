//! The container image, built and run as an operator would: `deploy/Dockerfile` with the binary
//! this build made (stripped, `BINARY=prebuilt`, so the workspace is never compiled twice) on a
//! base assembled from this machine's libraries (public base images cannot be pulled here), then
//! docker-compose.yml's clawdbot services — their commands read from the compose file — each a
//! podman container of the image, against the host's Redis and Postgres, answering `/echo`.
//!
//! Needs podman (the test command installs it with runc). Where it is missing the test says so
//! and passes, except under `CI` where a missing podman is a failure unless the test command
//! could not install it (`CLAWDBOT_IMAGE_SKIP` holds why).

mod common;

#[path = "image/podman.rs"]
mod podman;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Backend, Ports, Setup, report_measure};
use podman::{Container, Image, Podman};

const WAIT: Duration = Duration::from_secs(30);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The `command:` of each of docker-compose.yml's services that runs the clawdbot image.
fn compose_commands() -> Vec<(String, Vec<String>)> {
    let text = std::fs::read_to_string(repo_root().join("docker-compose.yml")).expect("compose");
    let compose: serde_json::Value = serde_saphyr::from_str(&text).expect("compose is YAML");
    let services = compose["services"].as_object().expect("services");
    services
        .iter()
        .filter_map(|(name, service)| {
            let command = service["command"].as_array()?;
            let runs_clawdbot = service["image"].as_str() == Some("clawdbot:local");
            runs_clawdbot.then(|| {
                let words = command.iter().filter_map(|w| w.as_str().map(String::from));
                (name.clone(), words.collect())
            })
        })
        .collect()
}

/// Waits until `url` answers 2xx; returns how long it took from `since`.
async fn ready(http: &reqwest::Client, url: &str, since: Instant, container: &Container) -> u128 {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if let Ok(response) = http.get(url).send().await
            && response.status().is_success()
        {
            return since.elapsed().as_millis();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{url} never answered:\n{}", container.logs().await);
}

#[tokio::test]
async fn the_image_runs_the_compose_services_and_answers_echo() {
    let Some(podman) = Podman::find() else {
        return;
    };
    let setup = Setup::new(Backend::Cluster).await;
    let image = Image::build(&podman, &setup.dir, &repo_root()).await;
    let user = podman
        .output(&[
            "image",
            "inspect",
            "--format",
            "{{.Config.User}}",
            &image.tag,
        ])
        .await;
    assert_eq!(user.trim(), "65532:65532", "the image runs as non-root");

    let ingress = Ports::new();
    let config = setup.default_config(&ingress);
    let commands = compose_commands();
    let command_of = |service: &str| -> Vec<String> {
        commands
            .iter()
            .find(|(name, _)| name == service)
            .unwrap_or_else(|| panic!("docker-compose.yml has no `{service}` service"))
            .1
            .clone()
    };

    // migrate runs to its end first, as compose's depends_on has it.
    // With no config at all, the image's `up` runs embedded (its data file in the non-root
    // user's home, the one writable place).
    let http = reqwest::Client::new();
    let bare = Ports::new();
    let since = Instant::now();
    let embedded = Container::run(
        &podman,
        &image,
        None,
        &["up".to_string()],
        &[
            "--listen".to_string(),
            format!("127.0.0.1:{}", bare.ingress),
            "--metrics-listen".to_string(),
            format!("127.0.0.1:{}", bare.metrics),
        ],
    )
    .await;
    let url = format!("http://127.0.0.1:{}/readyz", bare.ingress);
    let embedded_ms = ready(&http, &url, since, &embedded).await;
    drop(embedded);

    let mut migrate =
        Container::run(&podman, &image, Some(&config), &command_of("migrate"), &[]).await;
    assert_eq!(migrate.wait_exit().await, 0, "{}", migrate.logs().await);

    let mut started = Vec::new();
    for (service, listen, readiness) in [
        ("ingress-onebot", Some(ingress.ingress), "readyz"),
        ("worker", None, "metrics"),
        ("egress", Some(ingress.egress), "metrics"),
    ] {
        let metrics = clawdbot_testkit::free_port();
        let mut extra = vec![
            "--metrics-listen".to_string(),
            format!("127.0.0.1:{metrics}"),
        ];
        if let Some(port) = listen {
            extra.extend(["--listen".to_string(), format!("127.0.0.1:{port}")]);
        }
        let since = Instant::now();
        let container =
            Container::run(&podman, &image, Some(&config), &command_of(service), &extra).await;
        let port = if readiness == "readyz" {
            listen.unwrap_or(metrics)
        } else {
            metrics
        };
        let url = format!("http://127.0.0.1:{port}/{readiness}");
        let millis = ready(&http, &url, since, &container).await;
        // The compose healthcheck's own command, inside the container (no shell there).
        let probe = container
            .exec(&["/usr/local/bin/clawdbot", "probe", &url])
            .await;
        assert!(probe, "`clawdbot probe {url}` inside the container fails");
        assert_eq!(container.uid().await, 65532, "{service} runs as uid 65532");
        started.push((service, millis, container));
    }

    assert_eq!(
        setup
            .post_group_message(ingress.ingress, 901, 1, "/echo from a container")
            .await,
        204
    );
    let sent = setup.mock.wait_for(1, WAIT).await;
    let texts: Vec<String> = sent.iter().map(|m| m.text()).collect();
    if texts != ["from a container"] {
        for (service, _, container) in &started {
            eprintln!("--- {service}\n{}", container.logs().await);
        }
    }
    assert_eq!(texts, ["from a container"]);

    report_measure(&format!(
        "image: {:.1} MB (binary {:.1} MB stripped, base {:.1} MB)",
        image.size_bytes(&podman).await as f64 / 1e6,
        image.binary_bytes as f64 / 1e6,
        image.base_size_bytes(&podman).await as f64 / 1e6,
    ));
    report_measure(&format!(
        "image: up with no config (embedded) podman run → ready in {embedded_ms} ms"
    ));
    for (service, millis, _) in &started {
        report_measure(&format!(
            "image: {service} podman run → ready in {millis} ms"
        ));
    }
}
