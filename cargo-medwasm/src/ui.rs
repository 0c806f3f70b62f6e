//! Terminal output: progress on stderr (bars only on a terminal), results on stdout.

use std::io::IsTerminal as _;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// How chatty to be, and whether stderr is a terminal.
#[derive(Debug, Clone)]
pub struct Ui {
    quiet: bool,
    verbose: bool,
    fancy: bool,
}

impl Ui {
    /// `-q` / `-v` as given; bars only when stderr is a terminal and `NO_COLOR` is unset.
    pub fn new(quiet: bool, verbose: bool) -> Ui {
        let fancy = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        Ui {
            quiet,
            verbose,
            fancy,
        }
    }

    /// A quiet UI for tests and library use.
    pub fn silent() -> Ui {
        Ui {
            quiet: true,
            verbose: false,
            fancy: false,
        }
    }

    /// True under `-v`.
    pub fn verbose(&self) -> bool {
        self.verbose
    }

    /// True under `-q`.
    pub fn quiet(&self) -> bool {
        self.quiet
    }

    /// A progress line: `   Importing model.onnx` on stderr.
    pub fn status(&self, verb: &str, what: impl std::fmt::Display) {
        if !self.quiet {
            if self.fancy {
                eprintln!("\x1b[1;32m{verb:>12}\x1b[0m {what}");
            } else {
                eprintln!("{verb:>12} {what}");
            }
        }
    }

    /// A note on stderr.
    pub fn note(&self, what: impl std::fmt::Display) {
        if !self.quiet {
            eprintln!("{:>12} {what}", "note:");
        }
    }

    /// A warning on stderr (shown even under `-q`).
    pub fn warn(&self, what: impl std::fmt::Display) {
        if self.fancy {
            eprintln!("\x1b[1;33mwarning\x1b[0m: {what}");
        } else {
            eprintln!("warning: {what}");
        }
    }

    /// A detail shown only under `-v`.
    pub fn detail(&self, what: impl std::fmt::Display) {
        if self.verbose && !self.quiet {
            eprintln!("{:>12} {what}", "");
        }
    }

    /// A spinner for a step of unknown length; plain status line when not a terminal.
    pub fn spinner(&self, verb: &str, what: impl std::fmt::Display) -> Step {
        if self.fancy && !self.quiet {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner:.green} {prefix:>10.bold} {msg} {elapsed}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_prefix(verb.to_string());
            bar.set_message(what.to_string());
            bar.enable_steady_tick(Duration::from_millis(100));
            Step { bar: Some(bar) }
        } else {
            self.status(verb, what);
            Step { bar: None }
        }
    }

    /// A bar over `len` items; nothing when not a terminal.
    pub fn bar(&self, verb: &str, len: u64) -> Step {
        if self.fancy && !self.quiet {
            let bar = ProgressBar::new(len);
            bar.set_style(
                ProgressStyle::with_template("{prefix:>12.bold} [{bar:30}] {pos}/{len} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar.set_prefix(verb.to_string());
            Step { bar: Some(bar) }
        } else {
            Step { bar: None }
        }
    }
}

/// A running progress indicator; cleared when dropped.
#[derive(Debug)]
pub struct Step {
    bar: Option<ProgressBar>,
}

impl Step {
    /// Advances a bar by one.
    pub fn inc(&self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    /// Prints a line above the bar (or plainly).
    pub fn println(&self, line: impl AsRef<str>) {
        match &self.bar {
            Some(bar) => bar.println(line.as_ref()),
            None => eprintln!("{}", line.as_ref()),
        }
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Prints an error with its causes to stderr.
pub fn print_error(err: &anyhow::Error) {
    let fancy = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    if fancy {
        eprintln!("\x1b[1;31merror\x1b[0m: {err}");
    } else {
        eprintln!("error: {err}");
    }
    for cause in err.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
}
