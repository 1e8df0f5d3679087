//! The one clawdbot binary: parses the command line, loads the config, starts telemetry and
//! hands over to [`app`], which wires the roles together.

mod admin_cli;
mod app;
mod backends;
mod cli;
mod cli_out;
mod commands;
mod config_discovery;
mod config_secrets;
mod dlq_cli;
mod history_cli;
mod internal_tls;
mod log_cli;
mod log_store;
mod metrics_server;
mod open_files;
mod process_metrics;
mod security_cli;
mod skill_cli;
mod status;
mod telemetry;
mod vault;
mod wiring;

use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// `EX_USAGE`: the config or the command line is wrong.
const EXIT_USAGE: u8 = 64;

fn main() -> ExitCode {
    let mut cli = cli::Cli::parse();
    if let cli::Command::CompileWasm {
        memory_bytes,
        max_instances,
        input,
        output,
    } = &cli.command
    {
        return match clawdbot_wasm::compiled::compile_file(
            *memory_bytes,
            *max_instances,
            input,
            output,
        ) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("{error}");
                ExitCode::FAILURE
            }
        };
    }
    if let cli::Command::Config(cli::ConfigCommand::Reference) = &cli.command {
        print!("{}", clawdbot_config::reference::markdown());
        return ExitCode::SUCCESS;
    }
    if let Err(refusal) = find_config(&mut cli) {
        eprintln!("{refusal}");
        return ExitCode::from(EXIT_USAGE);
    }
    let config_env = match &cli.command {
        cli::Command::Security(_) => Ok(clawdbot_config::ConfigEnv::default()),
        command => config_secrets::open(command.config_path()),
    };
    let config_env = match config_env {
        Ok(env) => env,
        Err(error) => {
            eprintln!("invalid config:\n{error:#}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let loaded = match &cli.command {
        cli::Command::Security(_) => config_secrets::unresolved(cli.command.config_path()),
        _ => cli.load_config(&config_env),
    };
    let mut config = match loaded {
        Ok(config) => config,
        Err(error) => {
            eprintln!("invalid config:\n{error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    // Workers compile skill components in a child process of this same binary.
    config.core.worker.wasm.compile_in = std::env::current_exe().ok();
    if let cli::Command::Config(cli::ConfigCommand::Check { .. }) = &cli.command {
        for note in config.core.notes() {
            println!("note: {note}");
        }
        println!("config ok");
        return ExitCode::SUCCESS;
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if config.core.performance.worker_threads > 0 {
        builder.worker_threads(config.core.performance.worker_threads);
    }
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    // A role's failure is also a log event (collected with its other logs); a command's is
    // said once, on stderr.
    let logs_its_failure = matches!(
        cli.command,
        cli::Command::Up(_)
            | cli::Command::Ingress { .. }
            | cli::Command::Worker(_)
            | cli::Command::Egress(_)
            | cli::Command::Migrate(_)
    );
    let result = runtime.block_on(async {
        let _telemetry = telemetry::init(&config.core.telemetry, cli.command.role_name())?;
        app::run(cli, config, config_env).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("clawdbot: {error:#}");
            if logs_its_failure {
                tracing::error!(
                    error = format!("{error:#}"),
                    "clawdbot stopped with an error"
                );
            }
            ExitCode::FAILURE
        }
    }
}

/// Fills in the config of a command given none, from the usual places (see
/// `config_discovery`); an admin command that finds nothing to act on is refused.
fn find_config(cli: &mut cli::Cli) -> Result<(), String> {
    if cli.command.config_path().is_some() {
        return Ok(());
    }
    let acts = cli.command.acts_on_a_deployment();
    let role = cli.command.role_name();
    let Some(arg) = cli.command.config_arg_mut() else {
        return Ok(());
    };
    match config_discovery::find() {
        config_discovery::Found::Config(path) => {
            eprintln!("clawdbot {role}: using the config at {}", path.display());
            arg.config = Some(path);
            Ok(())
        }
        config_discovery::Found::LocalUp(data) if acts => {
            eprintln!(
                "clawdbot {role}: no config given or found; acting on the local `clawdbot up` data in ./{}",
                data.display()
            );
            Ok(())
        }
        config_discovery::Found::Nothing if acts => Err(config_discovery::nothing_found(role)),
        _ => Ok(()),
    }
}
