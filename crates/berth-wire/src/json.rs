//! AWS JSON 1.0 / 1.1: requests are a JSON object, responses a JSON object,
//! errors `{"__type": "...", "message": "..."}`.

use crate::ServiceError;

pub const CONTENT_TYPE_1_1: &str = "application/x-amz-json-1.1";
pub const CONTENT_TYPE_1_0: &str = "application/x-amz-json-1.0";

/// Why a request body is not a usable JSON object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    NotUtf8,
    Malformed(String),
    NotAnObject,
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::NotUtf8 => f.write_str("Request body is not valid UTF-8"),
            BodyError::Malformed(e) => write!(f, "Malformed JSON request body: {e}"),
            BodyError::NotAnObject => f.write_str("Request body must be a JSON object"),
        }
    }
}

impl ServiceError for BodyError {
    fn code(&self) -> &'static str {
        "SerializationException"
    }
}

/// Parse a JSON protocol request body. An empty body means `{}`, as botocore
/// sends for operations without input.
pub fn parse_body(body: &[u8]) -> Result<serde_json::Map<String, serde_json::Value>, BodyError> {
    let text = std::str::from_utf8(body).map_err(|_| BodyError::NotUtf8)?;
    if text.trim().is_empty() {
        return Ok(serde_json::Map::new());
    }
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(_) => Err(BodyError::NotAnObject),
        Err(e) => Err(BodyError::Malformed(e.to_string())),
    }
}

/// The error body of the JSON protocols.
pub fn error_body(code: &str, message: &str) -> Vec<u8> {
    let mut obj = serde_json::Map::new();
    obj.insert("__type".into(), code.into());
    obj.insert("message".into(), message.into());
    // Serialising a map of strings cannot fail.
    serde_json::to_vec(&serde_json::Value::Object(obj)).unwrap_or_default()
}

/// Render a service error as (status, body).
pub fn render_error(err: &dyn ServiceError) -> (u16, Vec<u8>) {
    (err.status(), error_body(err.code(), &err.message()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn empty_body_is_empty_object() {
        assert!(parse_body(b"").unwrap().is_empty());
        assert!(parse_body(b"  \n").unwrap().is_empty());
    }

    #[test]
    fn rejects_non_objects() {
        assert_eq!(parse_body(b"[1]"), Err(BodyError::NotAnObject));
        assert_eq!(parse_body(b"\"x\""), Err(BodyError::NotAnObject));
        assert!(matches!(parse_body(b"{"), Err(BodyError::Malformed(_))));
        assert_eq!(parse_body(&[0xff, 0xfe]), Err(BodyError::NotUtf8));
    }

    #[test]
    fn error_body_escapes() {
        let b = error_body("ClientException", "bad \"name\"\n");
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["__type"], "ClientException");
        assert_eq!(v["message"], "bad \"name\"\n");
    }

    proptest! {
        #[test]
        fn parse_body_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_body(&bytes);
        }

        #[test]
        fn parse_body_accepts_any_object(s in "\\PC*") {
            let body = serde_json::to_vec(&serde_json::json!({ "k": s })).unwrap();
            prop_assert!(parse_body(&body).is_ok());
        }
    }
}
