//! Value parsers of the command line's durations and rates, shared by every command's flags.

use std::time::Duration;

/// Accepts `30`, `30s`, `1500ms`, `5m`, `1h 30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<f64>() {
        if seconds >= 0.0 && seconds.is_finite() {
            return Ok(Duration::from_secs_f64(seconds));
        }
        return Err(format!("{text:?} is not a duration"));
    }
    humantime::parse_duration(text)
        .map_err(|e| format!("{text:?} is not a duration ({e}); try 30s, 500ms or 5m"))
}

/// Accepts `2.5` (per second) or `5/3` (5 per 3 seconds). Returns calls per second.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let bad =
        || format!("{text:?} is not a rate; use calls per second (2.5) or calls/seconds (5/3)");
    let rate = match text.split_once('/') {
        Some((calls, seconds)) => {
            let calls: f64 = calls.trim().parse().map_err(|_| bad())?;
            let seconds: f64 = seconds
                .trim()
                .trim_end_matches('s')
                .parse()
                .map_err(|_| bad())?;
            if seconds <= 0.0 {
                return Err(bad());
            }
            calls / seconds
        }
        None => text.trim().parse().map_err(|_| bad())?,
    };
    if !rate.is_finite() || rate < 0.0 {
        return Err(bad());
    }
    // Slower than one call an hour is a typo, not a pace (and 1e-300 would overflow the
    // interval between calls); 0 means unpaced.
    if rate > 0.0 && rate < MIN_RATE {
        return Err(format!(
            "{text:?} is slower than one call an hour; use 0 for no pacing, or a faster rate"
        ));
    }
    Ok(rate)
}

/// The slowest pace `parse_rate` accepts: one call an hour.
const MIN_RATE: f64 = 1.0 / 3600.0;

/// A request timeout of at least 100 ms: `0s` made every request time out (and each row
/// drag through its retries) instead of being refused.
pub fn parse_request_timeout(text: &str) -> Result<Duration, String> {
    let timeout = parse_duration(text)?;
    if timeout < Duration::from_millis(100) {
        return Err(format!(
            "{text:?} is too short for a request to bunq; use at least 100ms (default 30s)"
        ));
    }
    Ok(timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regression_a_vanishing_rate_panicked_instead_of_being_refused() {
        for rate in ["1e-300", "1/1e300", "0.0001"] {
            assert!(parse_rate(rate).is_err(), "{rate}");
        }
        assert_eq!(parse_rate("0").unwrap(), 0.0);
        assert_eq!(parse_rate("1/3600").unwrap(), 1.0 / 3600.0);
        assert_eq!(parse_rate("5/3").unwrap(), 5.0 / 3.0);
    }

    #[test]
    fn regression_a_zero_request_timeout_was_accepted() {
        assert!(parse_request_timeout("0s").is_err());
        assert!(parse_request_timeout("50ms").is_err());
        assert_eq!(
            parse_request_timeout("300ms").unwrap(),
            Duration::from_millis(300)
        );
    }

    #[test]
    fn durations_and_rates_parse() {
        assert_eq!(parse_duration("30").unwrap(), Duration::from_secs(30));
        assert_eq!(
            parse_duration("1500ms").unwrap(),
            Duration::from_millis(1500)
        );
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert!(parse_duration("soon").is_err());
        assert!((parse_rate("5/3").unwrap() - 5.0 / 3.0).abs() < 1e-9);
        assert_eq!(parse_rate("2.5").unwrap(), 2.5);
        assert_eq!(parse_rate("0").unwrap(), 0.0);
        assert!(parse_rate("5/0").is_err());
        assert!(parse_rate("-1").is_err());
    }
}
