//! The page's files, built into the binary, and the headers every answer carries.
//!
//! One table, [`ASSETS`], says what is served where; the Content-Security-Policy says the page
//! may load only these files and talk only to its own host, so even a bug that let a message
//! become markup could neither run inline script nor send anything elsewhere.
//!
//! Nothing here reads a socket.

use crate::wire::http::{Response, Status};

/// One file the door serves.
#[derive(Debug)]
pub struct Asset {
    /// The paths it answers (the first is its own).
    pub paths: &'static [&'static str],
    pub content_type: &'static str,
    pub body: &'static [u8],
    /// A strong validator: the FNV-1a hash of the body, computed at compile time.
    pub etag: u64,
}

/// FNV-1a, 64 bits: the ETag of each file. Not for security: it only has to change when the
/// file does.
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    hash
}

macro_rules! asset {
    ($paths:expr, $content_type:expr, $file:expr) => {
        Asset {
            paths: $paths,
            content_type: $content_type,
            body: include_bytes!($file),
            etag: fnv1a(include_bytes!($file)),
        }
    };
}

/// Every file the door serves. The icon is an SVG drawn here, served for `/favicon.ico` too,
/// so a browser that asks for it anyway gets an answer instead of a 404 in the console.
pub const ASSETS: &[Asset] = &[
    asset!(
        &["/", "/index.html"],
        "text/html; charset=utf-8",
        "static/index.html"
    ),
    asset!(
        &["/app.js"],
        "text/javascript; charset=utf-8",
        "static/app.js"
    ),
    asset!(&["/app.css"], "text/css; charset=utf-8", "static/app.css"),
    asset!(
        &["/icon.svg", "/favicon.ico"],
        "image/svg+xml",
        "static/icon.svg"
    ),
];

/// The path of the WebSocket.
pub const WS_PATH: &str = "/ws";

/// The page's Content-Security-Policy: its own files only (no inline script or style, so
/// `'unsafe-inline'` is never listed), no plugins, no framing (clickjacking), no `<base>` or
/// form tricks; `connect-src 'self'` allows `ws:`/`wss:` to the page's own host (CSP Level 3).
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
                       img-src 'self'; connect-src 'self'; object-src 'none'; \
                       base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The asset at `path`, if any.
pub fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|asset| asset.paths.contains(&path))
}

/// Adds the headers every answer carries: the CSP, no sniffing, no referrer, no framing for
/// old browsers, and no cross-origin reads of the files.
pub fn secure(response: &mut Response) -> &mut Response {
    response
        .header("content-security-policy", CSP)
        .header("x-content-type-options", "nosniff")
        .header("referrer-policy", "no-referrer")
        .header("x-frame-options", "DENY")
        .header("cross-origin-resource-policy", "same-origin")
}

/// The answer for an asset: the file (headers only for HEAD), or `304` when the client's
/// `If-None-Match` names the current version. `no-cache` makes the browser check each time, so
/// a new binary's page is never mixed with an old cached script.
pub fn respond(asset: &Asset, if_none_match: Option<&str>, head_only: bool) -> Response {
    let etag = format!("\"{:016x}\"", asset.etag);
    let fresh = if_none_match.is_some_and(|list| {
        list.split(',')
            .any(|tag| tag.trim() == etag || tag.trim() == "*")
    });
    let mut response = if fresh {
        Response::new(Status::NotModified, b"")
    } else {
        Response::new(Status::Ok, asset.body)
    };
    response.head_only = head_only;
    response
        .header("content-type", asset.content_type)
        .header("cache-control", "no-cache")
        .header("etag", etag);
    secure(&mut response);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The page loads its script and style from files (the CSP forbids inline ones), and
    /// nothing in the files names another host.
    #[test]
    fn the_page_is_self_contained() {
        let page = std::str::from_utf8(find("/").expect("page").body).expect("utf-8");
        assert!(page.contains(r#"<script src="/app.js" defer></script>"#));
        assert!(page.contains(r#"<link rel="stylesheet" href="/app.css">"#));
        assert!(!page.contains("<script>") && !page.contains("style="));
        for asset in ASSETS {
            let text = std::str::from_utf8(asset.body).expect("utf-8");
            for scheme in ["http://", "https://", "//fonts", "@import"] {
                let hits: Vec<&str> = text.matches(scheme).collect();
                // The only URLs allowed are the SVG namespace and the script's link check.
                let allowed = text.matches("http://www.w3.org/2000/svg").count()
                    + text.matches("'http://'").count()
                    + text.matches("'https://'").count();
                assert!(hits.len() <= allowed, "{:?} names {scheme}", asset.paths);
            }
        }
    }

    /// A client holding the current version gets 304 without the body; HEAD gets the length.
    #[test]
    fn validators_and_head() {
        let asset = find("/app.js").expect("script");
        let etag = format!("\"{:016x}\"", asset.etag);
        let fresh = respond(asset, Some(&format!("\"x\", {etag}")), false).encode();
        assert!(fresh.starts_with(b"HTTP/1.1 304 "));
        let head = String::from_utf8(respond(asset, None, true).encode()).expect("utf-8");
        assert!(head.contains(&format!("content-length: {}\r\n", asset.body.len())));
        assert!(head.ends_with("\r\n\r\n"));
        assert!(head.contains("content-security-policy: default-src 'self';"));
    }
}
