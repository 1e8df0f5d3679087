//! The binary's answers to bad input: a bad config and a taken port are named, before serving.

use std::process::Command;

fn clawdbot() -> Command {
    Command::new(env!("CARGO_BIN_EXE_clawdbot"))
}

/// A fresh directory under the system's temp dir, named `tag-<random>`.
fn temp_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("{tag}-{}", clawdbot_testkit::random_suffix()));
    std::fs::create_dir_all(&dir).expect("dir");
    dir
}

fn temp_config(text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!(
        "clawdbot-cli-{}.yaml",
        clawdbot_testkit::random_suffix()
    ));
    std::fs::write(&path, text).expect("write config");
    path
}

#[test]
fn an_invalid_config_exits_64_naming_every_key() {
    let config = temp_config(
        "onebot: { self_id: 1, api_root: \"ftp://x\" }\nworker: { batch_size: 0 }\ningress: { listen: nowhere }\n",
    );
    for args in [vec!["config", "check"], vec!["up", "--config"]] {
        let output = clawdbot().args(&args).arg(&config).output().expect("runs");
        assert_eq!(output.status.code(), Some(64), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        for key in [
            "`onebot.api_root`",
            "`worker.batch_size`",
            "`ingress.listen`",
        ] {
            assert!(
                stderr.contains(key),
                "{args:?}: {key} missing from:\n{stderr}"
            );
        }
    }
    let _removed = std::fs::remove_file(config);
}

#[test]
fn a_valid_config_checks_ok() {
    let config = temp_config(
        "onebot: { self_id: 1, api_root: \"http://127.0.0.1:5700\" }\ncluster: { redis: \"redis://127.0.0.1:6379\" }\n",
    );
    let output = clawdbot()
        .args(["config", "check"])
        .arg(&config)
        .output()
        .expect("runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let _removed = std::fs::remove_file(config);
}

#[test]
fn a_port_already_in_use_is_named() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("address").port();
    let config = temp_config(
        "onebot: { self_id: 1, api_root: \"http://127.0.0.1:5700\" }\ncluster: { redis: \"redis://127.0.0.1:6379\" }\n",
    );
    let output = clawdbot()
        .args([
            "ingress",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--metrics-listen",
            "127.0.0.1:0",
            "--config",
        ])
        .arg(&config)
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("127.0.0.1:{port}")) && stderr.contains("ingress.listen"),
        "{stderr}"
    );
    let _removed = std::fs::remove_file(config);
}

#[test]
fn output_into_a_closed_pipe_ends_quietly_not_with_a_panic() {
    let dir = std::env::temp_dir().join(format!(
        "clawdbot-pipe-{}",
        clawdbot_testkit::random_suffix()
    ));
    std::fs::create_dir_all(&dir).expect("dir");
    let config = dir.join("clawdbot.yaml");
    std::fs::write(
        &config,
        format!(
            "storage: {{ type: sqlite, path: \"{}\" }}\n",
            dir.join("c.db").display()
        ),
    )
    .expect("config");
    // `clawdbot admin audit show | head -0`: the reader is gone before the first line.
    let mut child = clawdbot()
        .args(["admin", "audit", "show", "--config"])
        .arg(&config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("runs");
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("exits");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let _removed = std::fs::remove_dir_all(dir);
}

/// An admin command given no config finds the deployment the usual way, and never acts on a
/// store it invented: in a directory with nothing it refuses (naming where it looked), beside
/// a local `clawdbot up`'s data file it acts on that file and says so, and with a
/// `./clawdbot.yaml` it uses that.
#[test]
fn admin_commands_without_a_config_act_only_on_a_deployment_they_found() {
    let dir = temp_dir("clawdbot-cli-dir");
    let run = |args: &[&str]| {
        let output = clawdbot()
            .args(args)
            .current_dir(&dir)
            .env_remove("CLAWDBOT_CONFIG")
            .output()
            .expect("runs");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, out, err) = run(&["skill", "disable", "echo"]);
    assert_eq!(code, Some(64), "{out}{err}");
    assert!(
        err.contains("no deployment to act on") && err.contains("--config"),
        "{err}"
    );
    assert!(!dir.join("clawdbot.db").exists(), "no store was invented");

    // A local `clawdbot up` keeps its data in ./clawdbot.db (an empty file is an empty SQLite).
    std::fs::write(dir.join("clawdbot.db"), b"").expect("data file");
    let (code, out, err) = run(&["skill", "disable", "echo"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(err.contains("local `clawdbot up` data"), "{err}");
    let (_, listed, _) = run(&["skill", "list"]);
    let echo = listed
        .lines()
        .find(|l| l.starts_with("echo"))
        .unwrap_or_default();
    assert!(
        echo.contains(" no "),
        "echo switched off in ./clawdbot.db:\n{listed}"
    );

    std::fs::write(
        dir.join("clawdbot.yaml"),
        "storage: { type: sqlite, path: \"team.db\" }\n",
    )
    .expect("config");
    let (code, out, err) = run(&["skill", "disable", "faq"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(err.contains("using the config at clawdbot.yaml"), "{err}");
    assert!(
        dir.join("team.db").exists(),
        "acted on the configured store"
    );
    let _removed = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_role_for_an_unconfigured_platform_names_the_configured_ones() {
    let config = temp_config(&format!(
        "onebot: {{ self_id: 1, api_root: \"http://127.0.0.1:5700\" }}\ncluster: {{ redis: \"{}\", key_prefix: \"t_{}\" }}\n",
        clawdbot_testkit::redis_url(),
        clawdbot_testkit::random_suffix()
    ));
    let output = clawdbot()
        .args([
            "ingress",
            "--platform",
            "nope",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--config",
        ])
        .arg(&config)
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        // notify is always served (issued keys work without a section).
        stderr.contains("`--platform nope`") && stderr.contains("configured: notify, onebot"),
        "{stderr}"
    );
    let _removed = std::fs::remove_file(config);
}

#[test]
fn a_command_error_is_said_once() {
    let dir = temp_dir("clawdbot-cli-once");
    let config = dir.join("clawdbot.yaml");
    std::fs::write(&config, "storage: { type: sqlite, path: \"once.db\" }\n").expect("config");
    let output = clawdbot()
        .args(["skill", "disable", "ehco", "--config"])
        .arg(&config)
        .current_dir(&dir)
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.matches("no skill named `ehco`").count(),
        1,
        "said once, not also as a log line:\n{stderr}"
    );
    let _removed = std::fs::remove_dir_all(&dir);
}

#[test]
fn help_names_every_command_there_is() {
    let top = clawdbot().arg("--help").output().expect("runs");
    let top = String::from_utf8_lossy(&top.stdout);
    let first = top.lines().next().unwrap_or_default();
    for command in [
        "skill", "dlq", "log", "admin", "security", "status", "migrate",
    ] {
        assert!(
            first.contains(command),
            "the summary names `{command}`: {first}"
        );
    }
    let skill = clawdbot().args(["skill", "--help"]).output().expect("runs");
    let skill = String::from_utf8_lossy(&skill.stdout);
    let first = skill.lines().next().unwrap_or_default();
    for word in [
        "list",
        "build",
        "keygen",
        "load",
        "roll",
        "on or off",
        "check",
    ] {
        assert!(
            first.contains(word),
            "`skill --help` says `{word}`: {first}"
        );
    }
}

/// Each role offers only the options that mean something to it: a worker has no listener,
/// ingress and egress have no consumer name or pool. Offered anyway, they are refused by name
/// before anything starts (clap's usage error, exit 2).
#[test]
fn roles_refuse_options_that_mean_nothing_to_them() {
    for (args, option) in [
        (&["egress", "--consumer-name", "x"][..], "--consumer-name"),
        (&["ingress", "--pool", "heavy"][..], "--pool"),
        (&["worker", "--listen", "127.0.0.1:1"][..], "--listen"),
    ] {
        let output = clawdbot().args(args).output().expect("runs");
        let said = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {said}");
        assert!(said.contains(option), "{args:?} names {option}: {said}");
    }
    let help = clawdbot()
        .args(["worker", "--help"])
        .output()
        .expect("runs");
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("--consumer-name") && help.contains("--pool"),
        "{help}"
    );
    assert!(!help.contains("--listen "), "{help}");
}

/// A Python skill file that cannot be built says why and what to do: without componentize-py
/// the one command that installs it; a file with no skill class or two, which class is wrong.
#[test]
fn a_python_skill_that_cannot_be_built_says_why() {
    let dir = temp_dir("clawdbot-cli-python");
    let build = |file: &str, path: &str| {
        let output = clawdbot()
            .args(["skill", "build", file, "--output", "out.skill"])
            .current_dir(&dir)
            .env("PATH", path)
            .output()
            .expect("runs");
        assert!(!output.status.success());
        assert!(!dir.join("out.skill").exists(), "nothing is written");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    std::fs::write(
        dir.join("echo.py"),
        "from clawdbot.skill import BaseSkill\n",
    )
    .expect("write");
    let no_tool = build("echo.py", "/nonexistent");
    assert!(
        no_tool.contains("pip install componentize-py=="),
        "{no_tool}"
    );
    let path = std::env::var("PATH").unwrap_or_default();
    let no_class = build("echo.py", &path);
    if no_class.contains("componentize-py` is not installed") {
        eprintln!("componentize-py is not installed: the class checks are not run here");
        return;
    }
    assert!(
        no_class.contains("defines no class deriving from BaseSkill"),
        "{no_class}"
    );
    std::fs::write(
        dir.join("two.py"),
        "from clawdbot.skill import BaseSkill\nclass A(BaseSkill):\n    pass\nclass B(BaseSkill):\n    pass\n",
    )
    .expect("write");
    let two = build("two.py", &path);
    assert!(
        two.contains("2 BaseSkill classes (A, B): one skill per file"),
        "{two}"
    );
    std::fs::write(
        dir.join("nameless.py"),
        "from clawdbot.skill import BaseSkill\nclass Echo(BaseSkill):\n    def __init__(self):\n        super().__init__(NAME)\n",
    )
    .expect("write");
    let nameless = build("nameless.py", &path);
    assert!(
        nameless.contains("Echo passes no `name=\"...\"` string"),
        "{nameless}"
    );
    let _removed = std::fs::remove_dir_all(&dir);
}
