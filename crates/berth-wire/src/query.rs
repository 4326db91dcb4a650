//! The AWS query protocol: `application/x-www-form-urlencoded` bodies with
//! `Action` and `Version`, XML responses.

use crate::ServiceError;
use percent_encoding::percent_decode;

/// Decode a form body (or query string) into ordered key/value pairs.
/// `+` means space; invalid percent-escapes are kept literally; invalid
/// UTF-8 is replaced, never a panic.
pub fn parse_form(input: &[u8]) -> Vec<(String, String)> {
    input
        .split(|b| *b == b'&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (k, v) = match part.iter().position(|b| *b == b'=') {
                Some(i) => (&part[..i], &part[i + 1..]),
                None => (part, &[][..]),
            };
            (decode_component(k), decode_component(v))
        })
        .collect()
}

fn decode_component(raw: &[u8]) -> String {
    let plus_as_space: Vec<u8> = raw.iter().map(|b| if *b == b'+' { b' ' } else { *b }).collect();
    percent_decode(&plus_as_space).decode_utf8_lossy().into_owned()
}

/// Escape text for XML element content and attribute values.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// The XML error document of the query protocol.
pub fn error_xml(code: &str, message: &str, sender_fault: bool, request_id: &str) -> String {
    format!(
        "<ErrorResponse><Error><Type>{}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
        if sender_fault { "Sender" } else { "Receiver" },
        xml_escape(code),
        xml_escape(message),
        xml_escape(request_id)
    )
}

/// Render a service error as (status, XML body).
pub fn render_error(err: &dyn ServiceError, request_id: &str) -> (u16, String) {
    let status = err.status();
    (status, error_xml(err.code(), &err.message(), status < 500, request_id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_form() {
        let f = parse_form(b"Action=DescribeLoadBalancers&Version=2015-12-01&Names.member.1=a+b%2Fc&flag");
        assert_eq!(f[0], ("Action".into(), "DescribeLoadBalancers".into()));
        assert_eq!(f[2], ("Names.member.1".into(), "a b/c".into()));
        assert_eq!(f[3], ("flag".into(), "".into()));
    }

    #[test]
    fn escapes_xml() {
        assert_eq!(xml_escape("<a & 'b'>"), "&lt;a &amp; &apos;b&apos;&gt;");
        assert!(error_xml("X", "<m>", true, "r").contains("<Message>&lt;m&gt;</Message>"));
    }

    proptest! {
        #[test]
        fn parse_form_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse_form(&bytes);
        }
    }
}
