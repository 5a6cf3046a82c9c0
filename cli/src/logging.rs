//! Logging: human-readable on a terminal, JSON otherwise.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use clap::{Args, ValueEnum};
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// Log format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// Human on a terminal, JSON otherwise.
    Auto,
    /// Human-readable lines (coloured only on a terminal).
    Human,
    /// One JSON object per line.
    Json,
}

/// Logging options (global: accepted after any subcommand, listed under "Logging" in every help).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Logging")]
pub(crate) struct LogOpts {
    /// Log filter (tracing `EnvFilter` syntax), e.g. `info` or `holdfast_indexer=debug`.
    #[arg(long, global = true, env = "HOLDFAST_LOG", default_value = "info")]
    pub(crate) log: String,
    /// Log format.
    #[arg(long, global = true, env = "HOLDFAST_LOG_FORMAT", value_enum, default_value_t = LogFormat::Auto)]
    pub(crate) log_format: LogFormat,
}

/// The progress bar on stderr, if one is drawn: log lines are written around it (see [`StderrLog`]).
static PROGRESS_BAR: Mutex<Option<indicatif::ProgressBar>> = Mutex::new(None);

/// Route log lines around `bar` while it is drawn (`None` once it is gone).
pub(crate) fn set_progress_bar(bar: Option<indicatif::ProgressBar>) {
    *PROGRESS_BAR.lock().unwrap_or_else(|e| e.into_inner()) = bar;
}

/// One log line for stderr, written when dropped: through the progress bar's `suspend` while a bar is
/// drawn (the bar is cleared, the line written, the bar redrawn below it), else straight to stderr.
#[derive(Default)]
struct StderrLog(Vec<u8>);

impl Write for StderrLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for StderrLog {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        let write = || {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(&self.0);
            let _ = err.flush();
        };
        let bar = PROGRESS_BAR.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match bar {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }
}

/// Install the global subscriber (logs go to stderr; stdout is for command output).
pub(crate) fn init(opts: &LogOpts) -> eyre::Result<()> {
    let filter = EnvFilter::try_new(&opts.log)?;
    let json = match opts.log_format {
        LogFormat::Json => true,
        LogFormat::Human => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let registry = tracing_subscriber::registry().with(filter);
    if json {
        registry.with(fmt::layer().json().with_writer(StderrLog::default)).try_init()?;
    } else {
        // Colour codes only on a terminal: `--log-format human 2>file` writes plain text.
        let ansi = std::io::stderr().is_terminal();
        registry.with(fmt::layer().with_ansi(ansi).with_writer(StderrLog::default)).try_init()?;
    }
    Ok(())
}
