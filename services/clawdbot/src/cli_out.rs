//! A command's output on stdout. A closed pipe (`clawdbot skill list | head`) ends the command
//! quietly with success, as for any Unix tool, instead of a panic (exit 101); any other write
//! failure (a full disk behind a redirect) ends it with EX_IOERR and says why.

use std::io::Write;

/// Prints one line.
pub fn line(text: &str) {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}") {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(error) => {
            eprintln!("clawdbot: cannot write the output: {error}");
            std::process::exit(74);
        }
    }
}

/// `println!` for a command's output, through [`line`].
macro_rules! say {
    () => {
        $crate::cli_out::line("")
    };
    ($($arg:tt)*) => {
        $crate::cli_out::line(&format!($($arg)*))
    };
}
pub(crate) use say;
