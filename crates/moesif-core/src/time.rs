//! ISO 8601 timestamps without a date-time dependency.

/// `2024-10-30T04:45:42.914Z` (UTC, milliseconds) for nanoseconds since the Unix epoch.
pub fn iso8601_ms(unix_ns: i64) -> String {
    let mut out = Vec::with_capacity(24);
    write_iso8601_ms(&mut out, unix_ns);
    String::from_utf8_lossy(&out).into_owned()
}

/// Appends [`iso8601_ms`] to `out`: the event writer formats two per event, so no `format!`.
pub(crate) fn write_iso8601_ms(out: &mut Vec<u8>, unix_ns: i64) {
    let ms = unix_ns.div_euclid(1_000_000);
    let secs = ms.div_euclid(1000);
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    if (0..=9999).contains(&y) {
        push_digits(out, y, 4);
    } else {
        // Unreachable from an i64 of nanoseconds (years 1677 to 2262), kept exact anyway.
        out.extend_from_slice(format!("{y:04}").as_bytes());
    }
    out.push(b'-');
    push_digits(out, m, 2);
    out.push(b'-');
    push_digits(out, d, 2);
    out.push(b'T');
    push_digits(out, sod / 3600, 2);
    out.push(b':');
    push_digits(out, sod % 3600 / 60, 2);
    out.push(b':');
    push_digits(out, sod % 60, 2);
    out.push(b'.');
    push_digits(out, ms.rem_euclid(1000), 3);
    out.push(b'Z');
}

/// The last `width` decimal digits of `n` (which is not negative), zero-padded.
fn push_digits(out: &mut Vec<u8>, mut n: i64, width: usize) {
    let mut digits = [b'0'; 4];
    let digits = digits.get_mut(..width).unwrap_or_default();
    for slot in digits.iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.extend_from_slice(digits);
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(iso8601_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            iso8601_ms(1_730_263_542_914_999_999),
            "2024-10-30T04:45:42.914Z"
        );
        assert_eq!(
            iso8601_ms(951_782_400_000_000_000),
            "2000-02-29T00:00:00.000Z"
        );
        assert_eq!(
            iso8601_ms(4_102_444_799_999_000_000),
            "2099-12-31T23:59:59.999Z"
        );
    }

    #[test]
    fn extremes_match_the_format_macro() {
        for ns in [i64::MIN, i64::MAX, -1, 1] {
            let ms = ns.div_euclid(1_000_000);
            let secs = ms.div_euclid(1000);
            let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
            let (y, m, d) = civil_from_days(days);
            let expected = format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
                sod / 3600,
                sod % 3600 / 60,
                sod % 60,
                ms.rem_euclid(1000)
            );
            assert_eq!(iso8601_ms(ns), expected);
        }
    }
}
