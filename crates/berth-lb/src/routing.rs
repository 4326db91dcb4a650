//! Which rule of a listener answers a request, as an ALB decides it.
//!
//! Pure: a function of the listener's rules and a few facts about the
//! request, so every condition type is unit-tested without sockets. Rules
//! are tried in priority order (the default rule, which has no conditions,
//! last); the first whose conditions all hold wins. Within one condition
//! the values are alternatives.

use crate::snapshot::{ListenerConfig, RuleConfig};
use berth_elbv2::model::Condition;
use std::net::IpAddr;

/// What rules look at in a request.
pub struct RequestFacts<'a> {
    pub method: &'a str,
    /// The Host header (or HTTP/2 `:authority`), port included if sent.
    pub host: Option<&'a str>,
    /// The path alone, without the query.
    pub path: &'a str,
    /// The raw query string, without the `?`.
    pub query: Option<&'a str>,
    pub headers: &'a http::HeaderMap,
    /// The TCP peer of the client connection.
    pub source_ip: IpAddr,
}

/// The first rule whose conditions all match; `None` only when the
/// listener has no default rule.
pub fn select_rule<'a>(listener: &'a ListenerConfig, req: &RequestFacts) -> Option<&'a RuleConfig> {
    select_rule_index(listener, req).and_then(|i| listener.rules.get(i))
}

/// The index in `listener.rules` of the rule [`select_rule`] picks.
pub fn select_rule_index(listener: &ListenerConfig, req: &RequestFacts) -> Option<usize> {
    listener
        .rules
        .iter()
        .position(|r| r.conditions.iter().all(|c| condition_matches(c, req)))
}

/// One condition. An unknown field never matches: a rule Berth cannot
/// evaluate must not capture traffic meant for a later rule.
pub fn condition_matches(c: &Condition, req: &RequestFacts) -> bool {
    match c.field.as_str() {
        "path-pattern" => c.values.iter().any(|p| wildcard(p, req.path, false, false)),
        "host-header" => match req.host.map(strip_port) {
            Some(host) => c.values.iter().any(|p| wildcard(p, host, true, false)),
            None => false,
        },
        "http-header" => {
            let Some(name) = c.header_name.as_deref() else {
                return false;
            };
            // HeaderMap lookups are case-insensitive by construction.
            req.headers.get_all(name).iter().any(|v| {
                let v = String::from_utf8_lossy(v.as_bytes());
                c.values.iter().any(|p| wildcard(p, &v, true, false))
            })
        }
        "http-request-method" => c.values.iter().any(|m| m == req.method),
        "query-string" => {
            let params: Vec<(String, String)> = req.query.map(parse_query).unwrap_or_default();
            c.query.iter().any(|(key, value)| {
                params.iter().any(|(k, v)| {
                    key.as_deref().is_none_or(|kp| wildcard(kp, k, true, true))
                        && wildcard(value, v, true, true)
                })
            })
        }
        "source-ip" => {
            let ip = canonical(req.source_ip);
            c.values.iter().any(|cidr| cidr_contains(cidr, ip))
        }
        _ => false,
    }
}

/// `host[:port]` or `[v6]:port` without the port.
fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if !h.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

/// `key=value` pairs of a raw query, percent-decoded. A parameter without
/// `=` has an empty value.
fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// Decodes `%XX`; malformed escapes are kept literally (a client cannot
/// make routing fail).
pub(crate) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// ELB's wildcard match: `*` any run of characters, `?` exactly one.
/// `escapes` lets `\*`, `\?` and `\\` stand for the literal characters, as
/// query-string conditions allow.
pub fn wildcard(pattern: &str, text: &str, case_insensitive: bool, escapes: bool) -> bool {
    let fold = |c: char| {
        if case_insensitive {
            c.to_lowercase().next().unwrap_or(c)
        } else {
            c
        }
    };
    let toks: Vec<berth_glob::Token> = berth_glob::compile(pattern, escapes)
        .into_iter()
        .map(|t| match t {
            berth_glob::Token::Literal(c) => berth_glob::Token::Literal(fold(c)),
            other => other,
        })
        .collect();
    let text: Vec<char> = text.chars().map(fold).collect();
    berth_glob::matches_with(&toks, &text, |p, t| p == t)
}

/// IPv4-mapped IPv6 peers (a dual-stack socket) compare as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// `addr/len` (or a bare address) contains `ip`. Unparsable entries match
/// nothing.
fn cidr_contains(cidr: &str, ip: IpAddr) -> bool {
    let (addr, len) = match cidr.trim().split_once('/') {
        Some((a, l)) => (a, l.parse::<u32>().ok()),
        None => (cidr.trim(), None),
    };
    let Ok(net) = addr.parse::<IpAddr>() else {
        return false;
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let len = len.unwrap_or(32);
            if len > 32 {
                return false;
            }
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let len = len.unwrap_or(128);
            if len > 128 {
                return false;
            }
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{ActionConfig, LbKind, ListenerProtocol};
    use std::time::Duration;

    fn cond(field: &str, values: &[&str]) -> Condition {
        Condition {
            field: field.into(),
            values: values.iter().map(|s| s.to_string()).collect(),
            header_name: None,
            query: vec![],
        }
    }

    fn rule(n: u32, conditions: Vec<Condition>) -> RuleConfig {
        RuleConfig {
            arn: format!("rule-{n}"),
            priority: if conditions.is_empty() { None } else { Some(n) },
            conditions,
            action: ActionConfig::FixedResponse {
                status: 200,
                content_type: None,
                body: Some(n.to_string()),
            },
        }
    }

    fn listener(rules: Vec<RuleConfig>) -> ListenerConfig {
        ListenerConfig {
            arn: "l".into(),
            lb_arn: "lb".into(),
            lb_kind: LbKind::Application,
            protocol: ListenerProtocol::Http,
            port: 80,
            certificates: vec![],
            idle_timeout: Duration::from_secs(60),
            http2: true,
            rules,
        }
    }

    struct Req {
        method: &'static str,
        host: Option<&'static str>,
        path: &'static str,
        query: Option<&'static str>,
        headers: http::HeaderMap,
        ip: IpAddr,
    }

    impl Req {
        fn new(path: &'static str) -> Req {
            Req {
                method: "GET",
                host: Some("example.com"),
                path,
                query: None,
                headers: http::HeaderMap::new(),
                ip: "10.1.2.3".parse().unwrap(),
            }
        }
        fn facts(&self) -> RequestFacts<'_> {
            RequestFacts {
                method: self.method,
                host: self.host,
                path: self.path,
                query: self.query,
                headers: &self.headers,
                source_ip: self.ip,
            }
        }
        fn matches(&self, c: &Condition) -> bool {
            condition_matches(c, &self.facts())
        }
    }

    #[test]
    fn wildcards() {
        assert!(wildcard("/api/*", "/api/x/y", false, false));
        assert!(wildcard("/api/*", "/api/", false, false));
        assert!(!wildcard("/api/*", "/api", false, false));
        assert!(wildcard("/a?c", "/abc", false, false));
        assert!(!wildcard("/a?c", "/ac", false, false));
        assert!(wildcard("*.png", "/img/x.png", false, false));
        assert!(wildcard("*a*b*c*", "xxaxxbxxcxx", false, false));
        assert!(!wildcard("*a*b*c*", "xxcxxbxxaxx", false, false));
        assert!(wildcard("*", "", false, false));
        assert!(!wildcard("?", "", false, false));
        assert!(!wildcard("/API", "/api", false, false));
        assert!(wildcard("/API", "/api", true, false));
        assert!(wildcard("a\\*b", "a*b", false, true));
        assert!(!wildcard("a\\*b", "axxb", false, true));
        assert!(wildcard("a\\?", "a?", false, true));
    }

    #[test]
    fn path_pattern_is_case_sensitive_and_ignores_query() {
        let c = cond("path-pattern", &["/img/*", "/static/*.css"]);
        let mut r = Req::new("/img/cat.png");
        assert!(r.matches(&c));
        r.path = "/static/site.css";
        r.query = Some("v=/img/x");
        assert!(r.matches(&c));
        r.path = "/IMG/cat.png";
        assert!(!r.matches(&c));
        r.path = "/other";
        assert!(!r.matches(&c));
    }

    #[test]
    fn host_header_case_insensitive_port_stripped() {
        let c = cond("host-header", &["*.example.com", "api.test"]);
        let mut r = Req::new("/");
        r.host = Some("WWW.Example.COM:8080");
        assert!(r.matches(&c));
        r.host = Some("api.test");
        assert!(r.matches(&c));
        r.host = Some("example.com");
        assert!(!r.matches(&c));
        r.host = None;
        assert!(!r.matches(&c));
        let v6 = cond("host-header", &["::1"]);
        r.host = Some("[::1]:80");
        assert!(r.matches(&v6));
    }

    #[test]
    fn http_header_name_and_value_case_insensitive() {
        let mut c = cond("http-header", &["*Mobile*", "curl/?.*"]);
        c.header_name = Some("User-Agent".into());
        let mut r = Req::new("/");
        r.headers
            .insert("user-agent", "Mozilla (iPhone; mobile)".parse().unwrap());
        assert!(r.matches(&c));
        r.headers.insert("user-agent", "curl/8.1".parse().unwrap());
        assert!(r.matches(&c));
        r.headers.insert("user-agent", "wget".parse().unwrap());
        assert!(!r.matches(&c));
        r.headers.clear();
        assert!(!r.matches(&c));
    }

    #[test]
    fn method_is_exact() {
        let c = cond("http-request-method", &["POST", "PUT"]);
        let mut r = Req::new("/");
        assert!(!r.matches(&c));
        r.method = "POST";
        assert!(r.matches(&c));
        r.method = "post";
        assert!(!r.matches(&c));
    }

    #[test]
    fn query_string_pairs() {
        let mut c = cond("query-string", &[]);
        c.query = vec![
            (Some("version".into()), "v1*".into()),
            (None, "example".into()),
        ];
        let mut r = Req::new("/");
        assert!(!r.matches(&c));
        r.query = Some("a=1&VERSION=V1.2");
        assert!(r.matches(&c));
        r.query = Some("anything=Example");
        assert!(r.matches(&c));
        r.query = Some("v=exa%6Dple");
        assert!(r.matches(&c), "percent-decoded");
        r.query = Some("version=v2");
        assert!(!r.matches(&c));
        r.query = Some("%zz=%");
        assert!(!r.matches(&c), "malformed escapes never panic");
    }

    #[test]
    fn source_ip_cidrs() {
        let c = cond(
            "source-ip",
            &["192.168.0.0/16", "2001:db8::/32", "10.9.9.9"],
        );
        let mut r = Req::new("/");
        r.ip = "192.168.4.5".parse().unwrap();
        assert!(r.matches(&c));
        r.ip = "::ffff:192.168.4.5".parse().unwrap();
        assert!(r.matches(&c), "v4-mapped peer");
        r.ip = "2001:db8:1::7".parse().unwrap();
        assert!(r.matches(&c));
        r.ip = "10.9.9.9".parse().unwrap();
        assert!(r.matches(&c));
        r.ip = "10.9.9.8".parse().unwrap();
        assert!(!r.matches(&c));
        assert!(cidr_contains("0.0.0.0/0", "1.2.3.4".parse().unwrap()));
        assert!(!cidr_contains("1.2.3.4/40", "1.2.3.4".parse().unwrap()));
        assert!(!cidr_contains("garbage", "1.2.3.4".parse().unwrap()));
    }

    #[test]
    fn first_match_wins_conditions_and_default_last() {
        let l = listener(vec![
            rule(
                1,
                vec![
                    cond("path-pattern", &["/a/*"]),
                    cond("http-request-method", &["POST"]),
                ],
            ),
            rule(2, vec![cond("path-pattern", &["/a/*", "/b/*"])]),
            rule(3, vec![cond("path-pattern", &["/a/x"])]),
            rule(99, vec![]),
        ]);
        let pick = |r: &Req| select_rule(&l, &r.facts()).map(|r| r.arn.clone());
        let mut r = Req::new("/a/x");
        assert_eq!(
            pick(&r).as_deref(),
            Some("rule-2"),
            "conditions AND: method differs"
        );
        r.method = "POST";
        assert_eq!(pick(&r).as_deref(), Some("rule-1"));
        r.path = "/c";
        assert_eq!(pick(&r).as_deref(), Some("rule-99"));
        assert!(select_rule(&listener(vec![]), &r.facts()).is_none());
        assert!(!Req::new("/").matches(&cond("unknown-field", &["x"])));
    }
}
