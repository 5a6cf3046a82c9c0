//! Logging: human-readable on a terminal, JSON otherwise.

use std::io::IsTerminal;

use clap::{Args, ValueEnum};
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// Log format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// Human on a terminal, JSON otherwise.
    Auto,
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// Logging options.
#[derive(Debug, Clone, Args)]
pub(crate) struct LogOpts {
    /// Log filter (tracing `EnvFilter` syntax), e.g. `info` or `holdfast_indexer=debug`.
    #[arg(long, global = true, env = "HOLDFAST_LOG", default_value = "info")]
    pub(crate) log: String,
    /// Log format.
    #[arg(long, global = true, env = "HOLDFAST_LOG_FORMAT", value_enum, default_value_t = LogFormat::Auto)]
    pub(crate) log_format: LogFormat,
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
        registry.with(fmt::layer().json().with_writer(std::io::stderr)).try_init()?;
    } else {
        registry.with(fmt::layer().with_writer(std::io::stderr)).try_init()?;
    }
    Ok(())
}
