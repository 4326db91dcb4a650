//! Registry credentials, `WWW-Authenticate` challenges and the bearer
//! token cache.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;

/// Username and password for a registry (Basic auth, or the token
/// endpoint of a Bearer registry). `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Credentials {
    pub username: String,
    password: String,
}

impl Credentials {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials {
            username: username.into(),
            password: password.into(),
        }
    }

    pub fn password(&self) -> &str {
        &self.password
    }

    pub(crate) fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }

    /// Distinguishes cached tokens obtained with different credentials
    /// without keeping a second copy of the password around.
    fn fingerprint(&self) -> String {
        crate::digest::Digest::of(format!("{}\0{}", self.username, self.password).as_bytes()).hex()
            [..16]
            .to_owned()
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// One challenge from a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Lowercased (`bearer`, `basic`).
    pub scheme: String,
    /// Parameter names lowercased.
    pub params: BTreeMap<String, String>,
}

/// Parses RFC 7235 challenges: `Bearer realm="…",service="…",scope="…"`,
/// several per header allowed.
pub fn parse_www_authenticate(header: &str) -> Vec<Challenge> {
    let mut out: Vec<Challenge> = Vec::new();
    let s = header.as_bytes();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < s.len() && (s[*i] == b' ' || s[*i] == b'\t' || s[*i] == b',') {
            *i += 1;
        }
    };
    let is_token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/".contains(&b);
    loop {
        skip_ws(&mut i);
        if i >= s.len() {
            break;
        }
        let start = i;
        while i < s.len() && is_token(s[i]) {
            i += 1;
        }
        if start == i {
            // Garbage; give up rather than loop.
            break;
        }
        let token = &header[start..i];
        let mut j = i;
        while j < s.len() && (s[j] == b' ' || s[j] == b'\t') {
            j += 1;
        }
        if j < s.len() && s[j] == b'=' && !out.is_empty() {
            // A parameter of the current challenge.
            i = j + 1;
            while i < s.len() && (s[i] == b' ' || s[i] == b'\t') {
                i += 1;
            }
            let value = if i < s.len() && s[i] == b'"' {
                i += 1;
                let mut v = String::new();
                while i < s.len() && s[i] != b'"' {
                    if s[i] == b'\\' && i + 1 < s.len() {
                        i += 1;
                    }
                    // Safe to slice by char: we only stop on ASCII bytes.
                    let ch_len = header[i..].chars().next().map_or(1, char::len_utf8);
                    v.push_str(&header[i..i + ch_len]);
                    i += ch_len;
                }
                i += 1;
                v
            } else {
                let vs = i;
                while i < s.len() && s[i] != b',' {
                    i += 1;
                }
                header[vs..i].trim().to_owned()
            };
            if let Some(current) = out.last_mut() {
                current.params.insert(token.to_ascii_lowercase(), value);
            }
        } else {
            out.push(Challenge {
                scheme: token.to_ascii_lowercase(),
                params: BTreeMap::new(),
            });
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct TokenKey {
    host: String,
    repository: String,
    identity: Option<String>,
}

impl TokenKey {
    pub(crate) fn new(host: &str, repository: &str, credentials: Option<&Credentials>) -> TokenKey {
        TokenKey {
            host: host.to_owned(),
            repository: repository.to_owned(),
            identity: credentials.map(Credentials::fingerprint),
        }
    }
}

/// Bearer tokens per (registry, repository, identity), reused until shortly
/// before they expire so a pull of many layers asks for one token.
#[derive(Debug, Default)]
pub(crate) struct TokenCache {
    tokens: Mutex<HashMap<TokenKey, (String, Instant)>>,
}

/// The distribution spec's default when a token response has no
/// `expires_in`.
pub(crate) const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);

impl TokenCache {
    pub(crate) fn get(&self, key: &TokenKey) -> Option<String> {
        let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens
            .get(key)
            .filter(|(_, expires)| Instant::now() < *expires)
            .map(|(t, _)| t.clone())
    }

    pub(crate) fn put(&self, key: TokenKey, token: String, lifetime: Duration) {
        // Renew a little early so a token does not expire mid-request.
        let lifetime = lifetime
            .saturating_sub(Duration::from_secs(10))
            .max(Duration::from_secs(1));
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens.insert(key, (token, Instant::now() + lifetime));
    }
}

/// Percent-encodes a query parameter value.
pub(crate) fn query_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_challenge() {
        let c = parse_www_authenticate(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].params["realm"], "https://auth.docker.io/token");
        assert_eq!(c[0].params["service"], "registry.docker.io");
        assert_eq!(c[0].params["scope"], "repository:library/busybox:pull");
    }

    #[test]
    fn parses_several_challenges_and_odd_spacing() {
        let c = parse_www_authenticate(
            r#"Basic realm="Registry Realm", Bearer  realm = "http://x/t" , service=svc"#,
        );
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].scheme, "basic");
        assert_eq!(c[0].params["realm"], "Registry Realm");
        assert_eq!(c[1].scheme, "bearer");
        assert_eq!(c[1].params["realm"], "http://x/t");
        assert_eq!(c[1].params["service"], "svc");
        assert_eq!(parse_www_authenticate("Basic")[0].scheme, "basic");
        assert!(parse_www_authenticate("").is_empty());
        let escaped = parse_www_authenticate(r#"Bearer realm="a\"b""#);
        assert_eq!(escaped[0].params["realm"], "a\"b");
    }

    #[test]
    fn credentials_debug_is_redacted() {
        let c = Credentials::new("alice", "hunter2");
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(c.basic_header(), "Basic YWxpY2U6aHVudGVyMg==");
    }

    #[test]
    fn token_cache_expires() {
        let cache = TokenCache::default();
        let key = TokenKey::new("h", "r", None);
        cache.put(key.clone(), "t".into(), Duration::from_secs(300));
        assert_eq!(cache.get(&key).as_deref(), Some("t"));
        assert_eq!(
            cache.get(&TokenKey::new("h", "r", Some(&Credentials::new("a", "b")))),
            None
        );
        cache.put(key.clone(), "t".into(), Duration::ZERO);
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(cache.get(&key), None);
    }

    #[test]
    fn escapes_query_values() {
        assert_eq!(
            query_escape("repository:a/b:pull"),
            "repository%3Aa%2Fb%3Apull"
        );
    }
}
