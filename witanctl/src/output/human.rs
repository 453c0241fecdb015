//! Numbers for people, as etcdctl shows them: sizes in SI units ("25 kB",
//! go-humanize's `Bytes`) and durations as Go prints them ("1.014109ms").

use std::time::Duration;

/// `size` bytes in SI units: "7 B", "1.5 kB", "25 kB", "3.1 MB".
pub fn bytes(size: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    if size < 10 {
        return format!("{size} B");
    }
    let mut exponent = 0usize;
    let mut scaled = size as f64;
    while scaled >= 1000.0 && exponent + 1 < UNITS.len() {
        scaled /= 1000.0;
        exponent += 1;
    }
    // Rounded to one decimal first, as go-humanize does.
    let value = (scaled * 10.0 + 0.5).floor() / 10.0;
    if value < 10.0 {
        format!("{value:.1} {}", UNITS[exponent])
    } else {
        format!("{value:.0} {}", UNITS[exponent])
    }
}

/// `duration` as Go's `time.Duration.String()` writes it.
pub fn go_duration(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    let (unit, scale) = match nanos {
        n if n < 1_000 => ("ns", 1u128),
        n if n < 1_000_000 => ("µs", 1_000),
        n if n < 1_000_000_000 => ("ms", 1_000_000),
        _ => return seconds(nanos),
    };
    format!("{}{unit}", decimal(nanos, scale))
}

/// Durations of a second or more: "1.5s", "2m3.5s", "1h0m0s".
fn seconds(nanos: u128) -> String {
    let total_seconds = nanos / 1_000_000_000;
    let hours = total_seconds / 3600;
    let minutes = (total_seconds % 3600) / 60;
    let rest = nanos - (hours * 3600 + minutes * 60) * 1_000_000_000;
    let secs = format!("{}s", decimal(rest, 1_000_000_000));
    if hours > 0 {
        format!("{hours}h{minutes}m{secs}")
    } else if minutes > 0 {
        format!("{minutes}m{secs}")
    } else {
        secs
    }
}

/// `value / scale` with as many decimals as needed, none trailing.
fn decimal(value: u128, scale: u128) -> String {
    let whole = value / scale;
    let fraction = value % scale;
    if fraction == 0 {
        return whole.to_string();
    }
    let digits = scale.to_string().len() - 1;
    let text = format!("{fraction:0digits$}");
    format!("{whole}.{}", text.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_go_humanize() {
        assert_eq!(bytes(7), "7 B");
        assert_eq!(bytes(24576), "25 kB");
        assert_eq!(bytes(1500), "1.5 kB");
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(3_145_728), "3.1 MB");
    }

    #[test]
    fn durations_read_like_go() {
        assert_eq!(go_duration(Duration::from_nanos(1_014_109)), "1.014109ms");
        assert_eq!(go_duration(Duration::from_nanos(897_608)), "897.608µs");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_secs(125)), "2m5s");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(go_duration(Duration::ZERO), "0s");
        assert_eq!(go_duration(Duration::from_nanos(12)), "12ns");
    }
}
