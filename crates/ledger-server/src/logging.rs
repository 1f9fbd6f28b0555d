//! One logging convention for every command of the binary: the standard `RUST_LOG` filter
//! syntax of `tracing-subscriber` (`info`, `warn,ledger_engine=debug`), read from
//! `VOUCHER_LEDGER_LOG` when it is set (the project's own variable, kept for the scripts that
//! use it), else from `RUST_LOG`, else the command's default. A filter that does not parse is
//! an error naming the variable: a typo must not silently turn the logs off or up.

use tracing_subscriber::EnvFilter;

/// The project's own variable; it takes precedence over `RUST_LOG`.
pub const LOG_VARIABLE: &str = "VOUCHER_LEDGER_LOG";
/// The conventional variable of Rust programs.
pub const RUST_LOG_VARIABLE: &str = "RUST_LOG";

/// The filter in force and where it came from.
#[derive(Debug)]
pub struct LogFilter {
    pub filter: EnvFilter,
    pub directives: String,
    /// `VOUCHER_LEDGER_LOG`, `RUST_LOG` or `default`.
    pub origin: &'static str,
}

#[derive(Debug, thiserror::Error)]
#[error("{variable}={value:?} is not a valid log filter (such as info or warn,ledger_engine=debug): {reason}")]
pub struct LogFilterError {
    pub variable: &'static str,
    pub value: String,
    pub reason: String,
}

/// The filter from the two variables' values (an empty one counts as unset) or `default`.
pub fn choose_filter(
    voucher_ledger_log: Option<&str>,
    rust_log: Option<&str>,
    default: &str,
) -> Result<LogFilter, LogFilterError> {
    fn set(value: Option<&str>) -> Option<&str> {
        value.map(str::trim).filter(|value| !value.is_empty())
    }
    let (directives, origin) = match (set(voucher_ledger_log), set(rust_log)) {
        (Some(value), _) => (value, LOG_VARIABLE),
        (None, Some(value)) => (value, RUST_LOG_VARIABLE),
        (None, None) => (default, "default"),
    };
    let filter = EnvFilter::builder()
        .parse(directives)
        .map_err(|error| LogFilterError {
            variable: origin,
            value: directives.to_owned(),
            reason: error.to_string(),
        })?;
    Ok(LogFilter {
        filter,
        directives: directives.to_owned(),
        origin,
    })
}

/// [`choose_filter`] with this process's environment.
pub fn filter_from_environment(default: &str) -> Result<LogFilter, LogFilterError> {
    let variable = |name: &str| std::env::var(name).ok();
    choose_filter(
        variable(LOG_VARIABLE).as_deref(),
        variable(RUST_LOG_VARIABLE).as_deref(),
        default,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voucher_ledger_log_wins_over_rust_log_which_wins_over_the_default() {
        let cases = [
            (Some("debug"), Some("warn"), "debug", LOG_VARIABLE),
            (None, Some("warn"), "warn", RUST_LOG_VARIABLE),
            (Some(""), Some("warn"), "warn", RUST_LOG_VARIABLE),
            (None, None, "info", "default"),
            (Some("  "), Some(""), "info", "default"),
            (
                None,
                Some("warn,ledger_engine=debug"),
                "warn,ledger_engine=debug",
                RUST_LOG_VARIABLE,
            ),
        ];
        for (own, rust_log, directives, origin) in cases {
            let chosen = choose_filter(own, rust_log, "info").expect("a valid filter");
            assert_eq!(
                (chosen.directives.as_str(), chosen.origin),
                (directives, origin)
            );
        }
    }

    #[test]
    fn a_filter_that_does_not_parse_is_an_error_naming_its_variable() {
        let error =
            choose_filter(None, Some("ledger_engine=loud"), "info").expect_err("loud is no level");
        assert_eq!(error.variable, RUST_LOG_VARIABLE);
        assert!(
            error
                .to_string()
                .starts_with("RUST_LOG=\"ledger_engine=loud\" is not a valid log filter"),
            "{error}"
        );
        let error = choose_filter(Some("[unclosed"), Some("info"), "info")
            .expect_err("an unclosed span filter");
        assert_eq!(error.variable, LOG_VARIABLE);
    }
}
