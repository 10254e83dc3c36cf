//! Content types by extension, and which of them are worth compressing.

use std::path::Path;
use std::sync::Mutex;

/// The Content-Type for `path`, as static text: a response's copy of the
/// header value is then free, where a shared one is counted in and out.
pub fn content_type(path: &Path) -> &'static str {
    let essence = mime_guess::from_path(path)
        .first_raw()
        .unwrap_or("application/octet-stream");
    if is_text(essence) {
        with_charset(essence)
    } else {
        essence
    }
}

/// `essence; charset=utf-8`, made once for each type: a bounded set, the
/// text types of mime_guess's table.
fn with_charset(essence: &'static str) -> &'static str {
    static MADE: Mutex<Vec<(&str, &str)>> = Mutex::new(Vec::new());
    let mut made = MADE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(&(_, text)) = made.iter().find(|(e, _)| *e == essence) {
        return text;
    }
    let text: &'static str = Box::leak(format!("{essence}; charset=utf-8").into_boxed_str());
    made.push((essence, text));
    text
}

fn is_text(essence: &str) -> bool {
    essence.starts_with("text/")
        || matches!(
            essence,
            "application/javascript" | "application/json" | "application/xml" | "image/svg+xml"
        )
        || essence.ends_with("+json")
        || essence.ends_with("+xml")
}

pub fn compressible(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default();
    is_text(essence) || essence == "application/wasm"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_types_carry_a_charset() {
        assert_eq!(
            content_type(Path::new("a.html")),
            "text/html; charset=utf-8"
        );
        assert_eq!(
            content_type(Path::new("a.js")),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type(Path::new("a.png")), "image/png");
        assert_eq!(
            content_type(Path::new("a.unknownext")),
            "application/octet-stream"
        );
        assert!(compressible("text/css; charset=utf-8"));
        assert!(!compressible("image/png"));
    }
}
