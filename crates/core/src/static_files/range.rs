//! `Range: bytes=...` (RFC 9110 §14): single, open-ended, suffix and several ranges.

/// Inclusive byte positions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    pub fn len(&self) -> u64 {
        self.end - self.start + 1
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Ranges {
    /// No usable Range header: serve the whole representation.
    Whole,
    Satisfiable(Vec<ByteRange>),
    Unsatisfiable,
}

/// More ranges than this are treated as an attack and answered with the whole file.
const MAX_RANGES: usize = 32;

pub fn parse(value: Option<&str>, size: u64) -> Ranges {
    let Some(spec) = value.and_then(|v| v.trim().strip_prefix("bytes=")) else {
        return Ranges::Whole;
    };
    let mut ranges = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((first, last)) = part.split_once('-') else {
            return Ranges::Whole;
        };
        let range = if first.is_empty() {
            let Ok(suffix) = last.parse::<u64>() else {
                return Ranges::Whole;
            };
            if suffix == 0 || size == 0 {
                continue;
            }
            ByteRange {
                start: size.saturating_sub(suffix),
                end: size - 1,
            }
        } else {
            let Ok(start) = first.parse::<u64>() else {
                return Ranges::Whole;
            };
            let end = if last.is_empty() {
                size.saturating_sub(1)
            } else {
                match last.parse::<u64>() {
                    Ok(end) if end >= start => end.min(size.saturating_sub(1)),
                    _ => return Ranges::Whole,
                }
            };
            if start >= size {
                continue;
            }
            ByteRange { start, end }
        };
        ranges.push(range);
    }
    if ranges.len() > MAX_RANGES {
        return Ranges::Whole;
    }
    if ranges.is_empty() {
        Ranges::Unsatisfiable
    } else {
        Ranges::Satisfiable(ranges)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start: u64, end: u64) -> ByteRange {
        ByteRange { start, end }
    }

    #[test]
    fn forms() {
        assert_eq!(parse(None, 10), Ranges::Whole);
        assert_eq!(
            parse(Some("bytes=0-4"), 10),
            Ranges::Satisfiable(vec![r(0, 4)])
        );
        assert_eq!(
            parse(Some("bytes=5-"), 10),
            Ranges::Satisfiable(vec![r(5, 9)])
        );
        assert_eq!(
            parse(Some("bytes=-3"), 10),
            Ranges::Satisfiable(vec![r(7, 9)])
        );
        assert_eq!(
            parse(Some("bytes=-30"), 10),
            Ranges::Satisfiable(vec![r(0, 9)])
        );
        assert_eq!(
            parse(Some("bytes=0-1, 4-5"), 10),
            Ranges::Satisfiable(vec![r(0, 1), r(4, 5)])
        );
        assert_eq!(
            parse(Some("bytes=8-100"), 10),
            Ranges::Satisfiable(vec![r(8, 9)])
        );
        assert_eq!(parse(Some("bytes=10-"), 10), Ranges::Unsatisfiable);
        assert_eq!(parse(Some("bytes=5-2"), 10), Ranges::Whole);
        assert_eq!(parse(Some("items=0-1"), 10), Ranges::Whole);
    }
}
