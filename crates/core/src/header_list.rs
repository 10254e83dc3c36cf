//! Header values that are comma-separated lists (`Connection`, `Upgrade`, ...).

/// The list's elements, trimmed.
pub fn elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(<[u8]>::trim_ascii)
}

/// The list names `token`, in any case.
pub fn has(value: &[u8], token: &[u8]) -> bool {
    elements(value).any(|t| t.eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_match_in_any_case_around_spaces() {
        assert!(super::has(b"keep-alive, Upgrade", b"upgrade"));
        assert!(!super::has(b"keep-alive", b"upgrade"));
        assert_eq!(super::elements(b" a ,b").collect::<Vec<_>>(), [b"a", b"b"]);
    }
}
