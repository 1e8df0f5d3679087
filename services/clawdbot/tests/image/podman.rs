//! podman as the image test drives it: rootful, runc, cgroupfs, host network; images and
//! containers removed on drop so that nothing outlives the test.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

/// The podman command with this machine's settings (`CONTAINERS_CONF`); clones share one
/// settings file, removed with the last.
#[derive(Clone)]
pub struct Podman {
    conf: Arc<ConfFile>,
}

struct ConfFile(PathBuf);

impl Drop for ConfFile {
    fn drop(&mut self) {
        let _removed = std::fs::remove_file(&self.0);
    }
}

impl Podman {
    /// podman, if installed. Where it is not: a notice and `None`, or a failure under CI unless
    /// the test command said why it could not install it.
    pub fn find() -> Option<Self> {
        let installed = std::process::Command::new("podman")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !installed {
            let skip = std::env::var("CLAWDBOT_IMAGE_SKIP").unwrap_or_default();
            assert!(
                std::env::var_os("CI").is_none() || !skip.is_empty(),
                "podman is not installed (scripts/test installs it: apt-get install podman buildah runc)"
            );
            eprintln!(
                "SKIPPED the image test: podman is not installed ({})",
                if skip.is_empty() {
                    "scripts/test installs it"
                } else {
                    &skip
                }
            );
            return None;
        }
        // Containers here run without systemd or ulimit rights: cgroupfs, no default ulimits,
        // runc, events to a file.
        let conf = std::env::temp_dir().join(format!(
            "clawdbot-containers-{}.conf",
            clawdbot_testkit::random_suffix()
        ));
        std::fs::write(
            &conf,
            "[containers]\ndefault_ulimits = []\n[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\nruntime = \"runc\"\n",
        )
        .expect("containers.conf");
        Some(Self {
            conf: Arc::new(ConfFile(conf)),
        })
    }

    pub fn command(&self) -> tokio::process::Command {
        let mut command = tokio::process::Command::new("podman");
        command.env("CONTAINERS_CONF", &self.conf.0);
        command
    }

    /// Runs podman to its end; returns its stdout, panicking with its stderr on failure.
    pub async fn output(&self, args: &[&str]) -> String {
        let output = self.command().args(args).output().await.expect("podman");
        assert!(
            output.status.success(),
            "podman {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Runs podman, ignoring the outcome (clean-up).
    fn quietly(&self, args: &[&str]) {
        let _status = std::process::Command::new("podman")
            .env("CONTAINERS_CONF", &self.conf.0)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The clawdbot image built from deploy/Dockerfile, and the base it was built on.
pub struct Image {
    pub tag: String,
    base: String,
    pub binary_bytes: u64,
    podman: Podman,
}

impl Image {
    /// Strips this build's binary into a context of its own, assembles the base image and
    /// builds the Dockerfile with `BINARY=prebuilt`.
    pub async fn build(podman: &Podman, dir: &Path, repo: &Path) -> Self {
        let suffix = clawdbot_testkit::random_suffix();
        let context = dir.join("image-context");
        let binary = context.join("target/image/clawdbot");
        std::fs::create_dir_all(binary.parent().expect("parent")).expect("context");
        let stripped = std::process::Command::new("objcopy")
            .arg("--strip-debug")
            .arg(env!("CARGO_BIN_EXE_clawdbot"))
            .arg(&binary)
            .status()
            .expect("objcopy (binutils)");
        assert!(stripped.success(), "objcopy --strip-debug failed");
        let binary_bytes = std::fs::metadata(&binary).expect("binary").len();

        let base = format!("localhost/clawdbot-test-base:{suffix}");
        let assembled = std::process::Command::new(repo.join("deploy/tests/local-base-image"))
            .env("CONTAINERS_CONF", &podman.conf.0)
            .arg(&binary)
            .arg(&base)
            .output()
            .expect("deploy/tests/local-base-image");
        assert!(
            assembled.status.success(),
            "local-base-image: {}",
            String::from_utf8_lossy(&assembled.stderr)
        );
        let tag = format!("localhost/clawdbot-test:{suffix}");
        let image = Self {
            tag,
            base,
            binary_bytes,
            podman: podman.clone(),
        };
        let dockerfile = repo.join("deploy/Dockerfile");
        let context = context.to_string_lossy().into_owned();
        podman
            .output(&[
                "build",
                "--quiet",
                "--file",
                &dockerfile.to_string_lossy(),
                "--build-arg",
                "BINARY=prebuilt",
                "--build-arg",
                &format!("RUNTIME_IMAGE={}", image.base),
                "--tag",
                &image.tag,
                &context,
            ])
            .await;
        image
    }

    async fn size(podman: &Podman, tag: &str) -> u64 {
        let size = podman
            .output(&["image", "inspect", "--format", "{{.Size}}", tag])
            .await;
        size.trim().parse().expect("image size")
    }

    pub async fn size_bytes(&self, podman: &Podman) -> u64 {
        Self::size(podman, &self.tag).await
    }

    pub async fn base_size_bytes(&self, podman: &Podman) -> u64 {
        Self::size(podman, &self.base).await
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        self.podman
            .quietly(&["rmi", "--force", &self.tag, &self.base]);
        // The build's intermediate stage (the prebuilt binary's layer) is left untagged.
        self.podman.quietly(&["image", "prune", "--force"]);
    }
}

/// One container of the image, on the host's network, with the test's config (if any) mounted
/// where every command looks for one (`/etc/clawdbot/`); removed on drop (not `--rm`, so that
/// an ended container's logs can still be read).
pub struct Container {
    pub name: String,
    child: tokio::process::Child,
    podman: Podman,
}

impl Container {
    pub async fn run(
        podman: &Podman,
        image: &Image,
        config: Option<&Path>,
        command: &[String],
        extra: &[String],
    ) -> Self {
        let name = format!("clawdbot-test-{}", clawdbot_testkit::random_suffix());
        let mut run = podman.command();
        run.args(["run", "--network", "host", "--name", &name]);
        if let Some(config) = config {
            run.arg("--volume").arg(format!(
                "{}:/etc/clawdbot/clawdbot.yaml:ro",
                config.display()
            ));
        }
        let child = run
            .args(["--env", "CLAWDBOT_LOG=info", &image.tag])
            .args(command)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("podman run");
        Self {
            name,
            child,
            podman: podman.clone(),
        }
    }

    /// What the container printed so far.
    pub async fn logs(&self) -> String {
        let output = (self.podman.command())
            .args(["logs", &self.name])
            .output()
            .await;
        output.map_or_else(
            |error| format!("(no logs: {error})"),
            |o| {
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                )
            },
        )
    }

    /// Waits for the container's process to end; returns its exit code.
    pub async fn wait_exit(&mut self) -> i32 {
        let status = tokio::time::timeout(super::WAIT, self.child.wait())
            .await
            .expect("the container ends")
            .expect("podman run");
        status.code().unwrap_or(-1)
    }

    /// Runs `command` inside the container; true when it exits 0.
    pub async fn exec(&self, command: &[&str]) -> bool {
        let status = (self.podman.command())
            .args(["exec", &self.name])
            .args(command)
            .stdout(Stdio::null())
            .status()
            .await;
        status.is_ok_and(|s| s.success())
    }

    /// The uid the container's main process runs as, read from the host's /proc.
    pub async fn uid(&self) -> u32 {
        let pid = (self.podman)
            .output(&["inspect", "--format", "{{.State.Pid}}", &self.name])
            .await;
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", pid.trim())).expect("proc status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().next())
            .and_then(|uid| uid.parse().ok())
            .expect("Uid line")
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        (self.podman).quietly(&["rm", "--force", "--time", "0", &self.name]);
    }
}
