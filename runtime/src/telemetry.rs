//! Tracing setup: human or JSON lines on stderr, filtered by `SECO_LOG` (or a given filter).
//!
//! [`init`] installs the global subscriber once; later calls (other tests in the same process)
//! return `Ok(false)` and change nothing.

use std::sync::Mutex;

use tracing_subscriber::{fmt, EnvFilter};

/// Environment variable holding the filter, e.g. `SECO_LOG=info,seco_runtime=debug`.
pub const LOG_ENV: &str = "SECO_LOG";

/// Output format of the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Human,
    /// One JSON object per line (for log collectors).
    Json,
}

/// Why tracing could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TelemetryError {
    /// The filter string does not parse.
    #[error("bad log filter {filter:?}: {source}")]
    BadFilter {
        /// The filter.
        filter: String,
        /// The parse error.
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
    /// Another global subscriber was installed by someone else.
    #[error("a global tracing subscriber is already set: {0}")]
    AlreadySet(String),
}

/// The format installed by this module, if any; the lock also serialises concurrent `init`s.
static INSTALLED: Mutex<Option<LogFormat>> = Mutex::new(None);

/// Installs the global subscriber. `filter` wins over `SECO_LOG`; with neither, `info`.
/// Returns `Ok(true)` when this call installed it, `Ok(false)` when it was already installed.
pub fn init(format: LogFormat, filter: Option<&str>) -> Result<bool, TelemetryError> {
    let mut installed = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
    if installed.is_some() {
        return Ok(false);
    }
    let spec = match filter {
        Some(f) => f.to_string(),
        None => std::env::var(LOG_ENV).unwrap_or_else(|_| "info".to_string()),
    };
    let env_filter = EnvFilter::try_new(&spec).map_err(|source| TelemetryError::BadFilter {
        filter: spec.clone(),
        source,
    })?;
    let builder = fmt()
        .with_env_filter(env_filter)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    match result {
        Ok(()) => {
            *installed = Some(format);
            Ok(true)
        }
        Err(e) => Err(TelemetryError::AlreadySet(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_is_idempotent_and_checks_filter() {
        assert!(matches!(
            init(LogFormat::Human, Some("=[")),
            Err(TelemetryError::BadFilter { .. })
        ));
        let first = init(LogFormat::Json, Some("warn")).unwrap();
        assert!(first);
        assert!(!init(LogFormat::Human, None).unwrap());
        tracing::info!("still works");
    }
}
