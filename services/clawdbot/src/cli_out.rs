//! A command's output on stdout. A closed pipe (`clawdbot dlq list | head`) ends the command
//! quietly with success, as for any Unix tool, instead of a panic (exit 101).

use std::io::Write;

/// Prints one line.
///
/// # Errors
/// Stdout failed for another reason than a closed pipe.
pub fn line(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}") {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(error) => Err(error.into()),
    }
}
