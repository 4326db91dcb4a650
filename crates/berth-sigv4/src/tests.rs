//! Crate tests: AWS-published vectors, botocore-generated vectors, every
//! error path, signer round trips and property tests.

use std::time::{Duration, SystemTime};

use berth_wire::ServiceError;
use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;

use crate::signer::{self, Credentials, SigningParams};
use crate::*;

const AKID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const TOKEN_AKID: &str = "ASIAEXAMPLE";
const S3_AKID: &str = "AKIAIOSFODNN7EXAMPLE";
const S3_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

fn secrets(akid: &str) -> Option<String> {
    match akid {
        AKID | TOKEN_AKID => Some(SECRET.to_owned()),
        S3_AKID => Some(S3_SECRET.to_owned()),
        _ => None,
    }
}

fn at(iso: &str) -> SystemTime {
    time::system_time(time::parse_iso_basic(iso).unwrap()).unwrap()
}

/// An owned request, so tests can mutate pieces before verifying.
#[derive(Clone)]
struct Req {
    method: String,
    path: String,
    query: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Req {
    fn new(method: &str, path: &str, query: &str, headers: &[(&str, &str)], body: &[u8]) -> Self {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        Self {
            method: method.into(),
            path: path.into(),
            query: query.into(),
            headers: h,
            body: body.to_vec(),
        }
    }

    fn parts(&self) -> RequestParts<'_> {
        RequestParts {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            headers: &self.headers,
            body: &self.body,
        }
    }

    fn verify_at(&self, now: &str) -> Result<Authenticated, SigV4Error> {
        verify(&self.parts(), at(now), &secrets)
    }

    fn set(&mut self, name: &str, value: &str) -> &mut Self {
        self.headers.insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
        self
    }

    fn auth(&self) -> String {
        self.headers
            .get("authorization")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned()
    }
}

fn incomplete(r: Result<Authenticated, SigV4Error>) -> String {
    match r {
        Err(SigV4Error::IncompleteSignature(m)) => m,
        other => panic!("expected IncompleteSignature, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// AWS-published vectors (SigV4 test suite / documentation examples)
// ---------------------------------------------------------------------------

const VANILLA_DATE: &str = "20150830T123600Z";

fn vanilla_auth(signed: &str, sig: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders={signed}, Signature={sig}"
    )
}

fn vanilla(
    method: &str,
    query: &str,
    extra: &[(&str, &str)],
    body: &[u8],
    signed: &str,
    sig: &str,
) -> Req {
    let auth = vanilla_auth(signed, sig);
    let mut headers = vec![
        ("host", "example.amazonaws.com"),
        ("x-amz-date", VANILLA_DATE),
        ("authorization", auth.as_str()),
    ];
    headers.extend_from_slice(extra);
    Req::new(method, "/", query, &headers, body)
}

#[test]
fn aws_get_vanilla() {
    let r = vanilla(
        "GET",
        "",
        &[],
        b"",
        "host;x-amz-date",
        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    );
    let a = r.verify_at(VANILLA_DATE).unwrap();
    assert_eq!(a.access_key_id, AKID);
    assert_eq!(a.region, "us-east-1");
    assert_eq!(a.service, "service");
    assert_eq!(a.session_token, None);
    assert_eq!(a.signed_at, at(VANILLA_DATE));
}

#[test]
fn aws_get_vanilla_query_order_key_case() {
    let r = vanilla(
        "GET",
        "Param2=value2&Param1=value1",
        &[],
        b"",
        "host;x-amz-date",
        "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
    );
    r.verify_at(VANILLA_DATE).unwrap();
}

#[test]
fn aws_post_vanilla() {
    let r = vanilla(
        "POST",
        "",
        &[],
        b"",
        "host;x-amz-date",
        "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
    );
    r.verify_at(VANILLA_DATE).unwrap();
}

#[test]
fn aws_post_x_www_form_urlencoded() {
    let r = vanilla(
        "POST",
        "",
        &[("content-type", "application/x-www-form-urlencoded")],
        b"Param1=value1",
        "content-type;host;x-amz-date",
        "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
    );
    r.verify_at(VANILLA_DATE).unwrap();
    let mut tampered = r.clone();
    tampered.body = b"Param1=value2".to_vec();
    assert_eq!(
        tampered.verify_at(VANILLA_DATE).unwrap_err(),
        SigV4Error::SignatureDoesNotMatch
    );
}

#[test]
fn aws_docs_iam_list_users() {
    let r = Req::new(
        "GET",
        "/",
        "Action=ListUsers&Version=2010-05-08",
        &[
            ("host", "iam.amazonaws.com"),
            (
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            ),
            ("x-amz-date", VANILLA_DATE),
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
            ),
        ],
        b"",
    );
    let a = r.verify_at(VANILLA_DATE).unwrap();
    assert_eq!(a.service, "iam");
    assert_eq!(parse_scope(&r.parts()).unwrap().service, "iam");
}

/// The S3 documentation's "GET Object" header example (path `/test.txt` is
/// the same under S3's single and everyone else's double encoding).
#[test]
fn aws_docs_s3_get_object_with_content_sha256() {
    let r = Req::new(
        "GET",
        "/test.txt",
        "",
        &[
            ("host", "examplebucket.s3.amazonaws.com"),
            ("range", "bytes=0-9"),
            (
                "x-amz-content-sha256",
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ),
            ("x-amz-date", "20130524T000000Z"),
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
            ),
        ],
        b"",
    );
    r.verify_at("20130524T000500Z").unwrap();
}

/// The S3 documentation's presigned URL example.
#[test]
fn aws_docs_s3_presigned() {
    let r = Req::new(
        "GET",
        "/test.txt",
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
        &[("host", "examplebucket.s3.amazonaws.com")],
        b"",
    );
    let a = r.verify_at("20130524T120000Z").unwrap();
    assert_eq!(a.service, "s3");
    assert_eq!(a.access_key_id, S3_AKID);
    // Valid right up to X-Amz-Date + X-Amz-Expires, not a second later.
    r.verify_at("20130525T000000Z").unwrap();
    assert!(matches!(
        r.verify_at("20130525T000001Z"),
        Err(SigV4Error::RequestExpired { .. })
    ));
}

// ---------------------------------------------------------------------------
// botocore-generated vectors (botocore 1.43, SigV4Auth / SigV4QueryAuth,
// signing time 2026-11-24T04:40:52Z)
// ---------------------------------------------------------------------------

const BOTO_DATE: &str = "20261124T044052Z";
const BOTO_TOKEN: &str = "FwoGZXIvYXdzEBY/token+with=chars";

struct Vector {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    query: &'static str,
    headers: &'static [(&'static str, &'static str)],
    body: &'static str,
}

impl Vector {
    fn req(&self) -> Req {
        Req::new(
            self.method,
            self.path,
            self.query,
            self.headers,
            self.body.as_bytes(),
        )
    }
}

const BOTOCORE: &[Vector] = &[
    Vector {
        name: "ecs_json",
        method: "POST",
        path: "/",
        query: "",
        headers: &[
            (
                "x-amz-target",
                "AmazonEC2ContainerServiceV20141113.ListClusters",
            ),
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-date", "20261124T044052Z"),
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261124/us-east-1/ecs/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=a7645e03727ad367112a605e08e40acc33a16ce9cd6ab39610f206d0f784b88c",
            ),
            ("content-length", "2"),
            ("host", "ecs.us-east-1.amazonaws.com"),
        ],
        body: "{}",
    },
    Vector {
        name: "ecs_json_token",
        method: "POST",
        path: "/",
        query: "",
        headers: &[
            (
                "x-amz-target",
                "AmazonEC2ContainerServiceV20141113.DescribeClusters",
            ),
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-date", "20261124T044052Z"),
            ("x-amz-security-token", "FwoGZXIvYXdzEBY/token+with=chars"),
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/20261124/eu-west-1/ecs/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, Signature=fea93a7ea51c1692221be718b0d7385a91fb3978066cb1ec4544d763d6c04ac7",
            ),
            ("content-length", "24"),
            ("host", "localhost:8080"),
        ],
        body: "{\"clusters\":[\"default\"]}",
    },
    Vector {
        name: "query_post",
        method: "POST",
        path: "/",
        query: "",
        headers: &[
            (
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            ),
            ("x-amz-date", "20261124T044052Z"),
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261124/us-east-1/elasticloadbalancing/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=c179afe15f024bf71161ec6863f37ed696e265109add692be2ba983195f36aa2",
            ),
            ("content-length", "47"),
            ("host", "127.0.0.1:9000"),
        ],
        body: "Action=DescribeLoadBalancers&Version=2015-12-01",
    },
    Vector {
        name: "weird_path_query",
        method: "GET",
        path: "/a%20b/./c//d/%E2%82%AC:x@y/",
        query: "b=2&a=%2F%20x&a=1&empty=&c~d=e.f_g-h",
        headers: &[
            ("x-amz-date", "20261124T044052Z"),
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261124/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=2e5a9a8fadc71e66fc3363140aebab678990d4303490a3f87787097065651bc6",
            ),
            ("host", "127.0.0.1:9000"),
        ],
        body: "",
    },
    Vector {
        name: "presign_sts",
        method: "GET",
        path: "/",
        query: "Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=ASIAEXAMPLE%2F20261124%2Fus-east-1%2Fsts%2Faws4_request&X-Amz-Date=20261124T044052Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Security-Token=FwoGZXIvYXdzEBY%2Ftoken%2Bwith%3Dchars&X-Amz-Signature=ad782313c93393380eae1cd0b2cdabaf1ac509ad3ac1ee9b86521969575ffc90",
        headers: &[("host", "sts.amazonaws.com")],
        body: "",
    },
    Vector {
        name: "presign_plain",
        method: "GET",
        path: "/x/y%3Dz",
        query: "foo=bar%2Bbaz&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20261124%2Fus-west-2%2Fexecute-api%2Faws4_request&X-Amz-Date=20261124T044052Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=6c0e62c76bf48e1f8e9b6ef9e9c60740384b73daec2f764c0b39b2df48446680",
        headers: &[("host", "127.0.0.1:9000")],
        body: "",
    },
    Vector {
        name: "plus_query",
        method: "GET",
        path: "/",
        query: "b=c+d&a=%7e",
        headers: &[
            ("x-amz-date", "20261124T044052Z"),
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261124/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=e5e45c7ea9ef503445c5f410c7af3bb3aabd8b2860145631af3ba9b96d239bb8",
            ),
            ("host", "127.0.0.1:9000"),
        ],
        body: "",
    },
];

fn boto(name: &str) -> Req {
    BOTOCORE.iter().find(|v| v.name == name).unwrap().req()
}

#[test]
fn botocore_vectors_verify() {
    for v in BOTOCORE {
        let r = v.req();
        let a = r
            .verify_at(BOTO_DATE)
            .unwrap_or_else(|e| panic!("{}: {e}", v.name));
        assert_eq!(a.signed_at, at(BOTO_DATE), "{}", v.name);
        let scope = parse_scope(&r.parts()).unwrap();
        assert_eq!(
            (scope.access_key_id, scope.region, scope.service),
            (a.access_key_id, a.region, a.service)
        );
        assert_eq!(scope.date, "20261124");
    }
}

#[test]
fn botocore_vectors_fail_when_tampered() {
    for v in BOTOCORE {
        let base = v.req();
        let mut muts: Vec<Req> = Vec::new();
        let mut m = base.clone();
        m.method = if m.method == "GET" {
            "HEAD".into()
        } else {
            "PUT".into()
        };
        muts.push(m);
        let mut m = base.clone();
        m.path = format!("{}x", m.path);
        muts.push(m);
        let mut m = base.clone();
        m.query = if m.query.is_empty() {
            "x=1".into()
        } else {
            format!("{}&x=1", m.query)
        };
        muts.push(m);
        let mut m = base.clone();
        m.set("host", "evil.example.com");
        muts.push(m);
        if base.headers.contains_key("authorization") {
            let mut m = base.clone();
            m.body.push(b' ');
            muts.push(m);
        }
        for (i, m) in muts.iter().enumerate() {
            assert_eq!(
                m.verify_at(BOTO_DATE).unwrap_err(),
                SigV4Error::SignatureDoesNotMatch,
                "{} mutation {i}",
                v.name
            );
        }
    }
}

#[test]
fn botocore_ecs_json_with_session_token() {
    let a = boto("ecs_json_token").verify_at(BOTO_DATE).unwrap();
    assert_eq!(a.access_key_id, TOKEN_AKID);
    assert_eq!(a.region, "eu-west-1");
    assert_eq!(a.service, "ecs");
    assert_eq!(a.session_token.as_deref(), Some(BOTO_TOKEN));
    let dbg = format!("{a:?}");
    assert!(!dbg.contains(BOTO_TOKEN), "{dbg}");
    assert!(dbg.contains("<redacted>"));
}

#[test]
fn botocore_query_protocol_scope_routing() {
    let r = boto("query_post");
    assert_eq!(
        parse_scope(&r.parts()).unwrap().service,
        "elasticloadbalancing"
    );
    assert_eq!(
        r.verify_at(BOTO_DATE).unwrap().service,
        "elasticloadbalancing"
    );
}

#[test]
fn botocore_presigned_sts_with_token() {
    let r = boto("presign_sts");
    let a = r.verify_at("20261124T045000Z").unwrap();
    assert_eq!(a.service, "sts");
    assert_eq!(a.session_token.as_deref(), Some(BOTO_TOKEN));
    // Expires=900: 04:40:52 + 15 min.
    r.verify_at("20261124T045552Z").unwrap();
    let err = r.verify_at("20261124T045553Z").unwrap_err();
    assert_eq!(
        err.to_string(),
        "Request has expired: it was valid until 20261124T045552Z (20261124T044052Z + 900 sec.), it is now 20261124T045553Z."
    );
    assert_eq!(err.code(), "InvalidSignatureException");
    assert_eq!(err.query_code(), "SignatureDoesNotMatch");
    // Up to 15 minutes of client clock running ahead is tolerated.
    r.verify_at("20261124T042552Z").unwrap();
    let err = r.verify_at("20261124T042551Z").unwrap_err();
    assert_eq!(
        err.to_string(),
        "Signature not yet current: 20261124T044052Z is still later than 20261124T044051Z (20261124T042551Z + 15 min.)"
    );
}

#[test]
fn botocore_presigned_tampered_signature_or_params() {
    let r = boto("presign_plain");
    r.verify_at(BOTO_DATE).unwrap();
    let mut m = r.clone();
    m.query = m.query.replace("X-Amz-Expires=60", "X-Amz-Expires=600");
    assert_eq!(
        m.verify_at(BOTO_DATE).unwrap_err(),
        SigV4Error::SignatureDoesNotMatch
    );
    let mut m = r.clone();
    m.query = m.query.replace("foo=bar%2Bbaz", "foo=bar%2Bbaz2");
    assert_eq!(
        m.verify_at(BOTO_DATE).unwrap_err(),
        SigV4Error::SignatureDoesNotMatch
    );
    // The signature parameter may sit anywhere in the query.
    let mut m = r.clone();
    let (rest, sig) = m.query.split_once("&X-Amz-Signature=").unwrap();
    m.query = format!("X-Amz-Signature={sig}&{rest}");
    m.verify_at(BOTO_DATE).unwrap();
}

// ---------------------------------------------------------------------------
// The client-side signer
// ---------------------------------------------------------------------------

fn params(time: &str) -> SigningParams<'static> {
    SigningParams {
        credentials: Credentials {
            access_key_id: AKID,
            secret_access_key: SECRET,
            session_token: None,
        },
        region: "us-east-1",
        service: "service",
        time: at(time),
    }
}

#[test]
fn signer_reproduces_get_vanilla() {
    let mut h = HeaderMap::new();
    h.insert("host", HeaderValue::from_static("example.amazonaws.com"));
    signer::sign("GET", "/", "", &mut h, b"", &params(VANILLA_DATE)).unwrap();
    assert_eq!(
        h.get("authorization").unwrap(),
        &vanilla_auth(
            "host;x-amz-date",
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        )
    );
    assert_eq!(h.get("x-amz-date").unwrap(), VANILLA_DATE);
}

#[test]
fn signer_reproduces_botocore_presign() {
    let mut h = HeaderMap::new();
    h.insert("host", HeaderValue::from_static("sts.amazonaws.com"));
    let p = SigningParams {
        credentials: Credentials {
            access_key_id: TOKEN_AKID,
            secret_access_key: SECRET,
            session_token: Some(BOTO_TOKEN),
        },
        region: "us-east-1",
        service: "sts",
        time: at(BOTO_DATE) + Duration::from_millis(999),
    };
    let q = signer::presign(
        "GET",
        "/",
        "Action=GetCallerIdentity&Version=2011-06-15",
        &h,
        Some(b""),
        &p,
        900,
    )
    .unwrap();
    assert_eq!(q, boto("presign_sts").query);
}

#[test]
fn signer_round_trip_header_form() {
    let mut r = Req::new(
        "POST",
        "/",
        "",
        &[
            ("host", "localhost:8080"),
            ("content-type", "application/x-amz-json-1.1"),
            (
                "x-amz-target",
                "AmazonEC2ContainerServiceV20141113.CreateCluster",
            ),
        ],
        br#"{"clusterName":"a"}"#,
    );
    let p = SigningParams {
        credentials: Credentials {
            access_key_id: TOKEN_AKID,
            secret_access_key: SECRET,
            session_token: Some("tok"),
        },
        region: "eu-central-1",
        service: "ecs",
        time: at(BOTO_DATE),
    };
    signer::sign(
        &r.method.clone(),
        "/",
        "",
        &mut r.headers,
        &r.body.clone(),
        &p,
    )
    .unwrap();
    let a = r.verify_at("20261124T045000Z").unwrap();
    assert_eq!(
        (
            a.region.as_str(),
            a.service.as_str(),
            a.session_token.as_deref()
        ),
        ("eu-central-1", "ecs", Some("tok"))
    );
    // Re-signing replaces the old Authorization header.
    signer::sign(
        &r.method.clone(),
        "/",
        "",
        &mut r.headers,
        &r.body.clone(),
        &p,
    )
    .unwrap();
    assert_eq!(r.headers.get_all("authorization").iter().count(), 1);
    r.verify_at(BOTO_DATE).unwrap();
}

#[test]
fn signer_round_trip_presigned_with_body_hash_or_unsigned() {
    let h = Req::new("GET", "/a%2Fb/c d", "", &[("host", "h")], b"").headers;
    // UNSIGNED-PAYLOAD (aws-sdk-rust style): the body is not covered.
    let q = signer::presign(
        "GET",
        "/a%2Fb/c d",
        "z=1&a=%20",
        &h,
        None,
        &params(BOTO_DATE),
        60,
    )
    .unwrap();
    let r = Req::new("GET", "/a%2Fb/c d", &q, &[("host", "h")], b"ignored body");
    r.verify_at(BOTO_DATE).unwrap();
    // Body hash (botocore style): the body is covered.
    let q = signer::presign(
        "GET",
        "/a%2Fb/c d",
        "z=1&a=%20",
        &h,
        Some(b""),
        &params(BOTO_DATE),
        60,
    )
    .unwrap();
    let mut r = Req::new("GET", "/a%2Fb/c d", &q, &[("host", "h")], b"");
    r.verify_at(BOTO_DATE).unwrap();
    r.body = b"x".to_vec();
    assert_eq!(
        r.verify_at(BOTO_DATE).unwrap_err(),
        SigV4Error::SignatureDoesNotMatch
    );
}

#[test]
fn signer_needs_host() {
    let mut h = HeaderMap::new();
    assert_eq!(
        signer::sign("GET", "/", "", &mut h, b"", &params(BOTO_DATE)),
        Err(signer::SignError::MissingHost)
    );
    assert_eq!(
        signer::presign("GET", "/", "", &h, None, &params(BOTO_DATE), 60),
        Err(signer::SignError::MissingHost)
    );
    let dbg = format!("{:?}", params(BOTO_DATE));
    assert!(!dbg.contains(SECRET), "{dbg}");
}

fn signed(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    time: &str,
) -> Req {
    let mut r = Req::new(method, path, query, headers, body);
    signer::sign(method, path, query, &mut r.headers, body, &params(time)).unwrap();
    r
}

fn simple(time: &str) -> Req {
    signed("POST", "/", "", &[("host", "localhost")], b"{}", time)
}

// ---------------------------------------------------------------------------
// Header-form specifics
// ---------------------------------------------------------------------------

#[test]
fn date_header_instead_of_x_amz_date() {
    let mut r = Req::new(
        "GET",
        "/",
        "",
        &[
            ("host", "example.amazonaws.com"),
            ("date", "Sun, 30 Aug 2015 12:36:00 GMT"),
        ],
        b"",
    );
    let p = params(VANILLA_DATE);
    let sig = signer::signature(
        "GET",
        "/",
        "",
        &r.headers,
        "date;host",
        &canonical::sha256_hex(b""),
        false,
        &p,
    );
    r.set(
        "authorization",
        &format!(
            "AWS4-HMAC-SHA256 Credential={}, SignedHeaders=date;host, Signature={sig}",
            p.credential()
        ),
    );
    assert_eq!(
        r.verify_at(VANILLA_DATE).unwrap().signed_at,
        at(VANILLA_DATE)
    );
    // ISO-8601 basic in Date works too.
    let mut r2 = r.clone();
    r2.set("date", VANILLA_DATE);
    let sig = signer::signature(
        "GET",
        "/",
        "",
        &r2.headers,
        "date;host",
        &canonical::sha256_hex(b""),
        false,
        &p,
    );
    r2.set(
        "authorization",
        &format!(
            "AWS4-HMAC-SHA256 Credential={}, SignedHeaders=date;host, Signature={sig}",
            p.credential()
        ),
    );
    r2.verify_at(VANILLA_DATE).unwrap();
    // Garbage in Date.
    r.set("date", "yesterday");
    assert_eq!(
        incomplete(r.verify_at(VANILLA_DATE)),
        "Date must be in ISO-8601 'basic format'. Got 'yesterday'. See http://en.wikipedia.org/wiki/ISO_8601"
    );
}

#[test]
fn header_values_are_trimmed_and_joined() {
    let mut r = Req::new(
        "GET",
        "/",
        "",
        &[("host", "h"), ("x-a", "  one   two  ")],
        b"",
    );
    r.headers.append("x-b", HeaderValue::from_static("1"));
    r.headers.append("x-b", HeaderValue::from_static("2"));
    signer::sign("GET", "/", "", &mut r.headers, b"", &params(BOTO_DATE)).unwrap();
    // Same canonical form with different inner spacing verifies.
    r.set("x-a", "one two");
    r.verify_at(BOTO_DATE).unwrap();
    // Order of repeated values matters.
    r.headers.remove("x-b");
    r.headers.append("x-b", HeaderValue::from_static("2"));
    r.headers.append("x-b", HeaderValue::from_static("1"));
    assert_eq!(
        r.verify_at(BOTO_DATE).unwrap_err(),
        SigV4Error::SignatureDoesNotMatch
    );
}

#[test]
fn unsigned_headers_may_change() {
    let mut r = Req::new("GET", "/", "", &[("host", "h")], b"");
    signer::sign("GET", "/", "", &mut r.headers, b"", &params(BOTO_DATE)).unwrap();
    r.set("user-agent", "whatever");
    r.verify_at(BOTO_DATE).unwrap();
}

#[test]
fn content_sha256_header() {
    // Matching hash: fine.
    let body = b"{\"a\":1}";
    let hash = canonical::sha256_hex(body);
    let r = signed(
        "POST",
        "/",
        "",
        &[("host", "h"), ("x-amz-content-sha256", &hash)],
        body,
        BOTO_DATE,
    );
    r.verify_at(BOTO_DATE).unwrap();
    // Upper-case hex digest of the same body is accepted too.
    let up = hash.to_uppercase();
    let r = signed(
        "POST",
        "/",
        "",
        &[("host", "h"), ("x-amz-content-sha256", &up)],
        body,
        BOTO_DATE,
    );
    r.verify_at(BOTO_DATE).unwrap();
    // Body swapped after signing: caught before the signature check.
    let mut m = r.clone();
    m.body = b"{\"a\":2}".to_vec();
    let err = m.verify_at(BOTO_DATE).unwrap_err();
    assert_eq!(
        err,
        SigV4Error::InvalidSignature(
            "The provided 'x-amz-content-sha256' header does not match what was computed.".into()
        )
    );
    assert_eq!(
        (err.code(), err.query_code()),
        ("InvalidSignatureException", "SignatureDoesNotMatch")
    );
    // UNSIGNED-PAYLOAD: body not covered.
    let mut r = signed(
        "POST",
        "/",
        "",
        &[("host", "h"), ("x-amz-content-sha256", UNSIGNED_PAYLOAD)],
        body,
        BOTO_DATE,
    );
    r.verify_at(BOTO_DATE).unwrap();
    r.body = b"anything".to_vec();
    r.verify_at(BOTO_DATE).unwrap();
    // Other values are refused.
    let r = signed(
        "POST",
        "/",
        "",
        &[
            ("host", "h"),
            ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
        ],
        body,
        BOTO_DATE,
    );
    assert!(
        matches!(r.verify_at(BOTO_DATE), Err(SigV4Error::InvalidSignature(m)) if m.contains("STREAMING-AWS4-HMAC-SHA256-PAYLOAD"))
    );
}

#[test]
fn path_normalisation_and_raw_query_candidates() {
    // botocore normalises `/./` and `//`, and signs the wire query as-is.
    boto("weird_path_query").verify_at(BOTO_DATE).unwrap();
    boto("plus_query").verify_at(BOTO_DATE).unwrap();
    // A signer that does not normalise the path is accepted too.
    let path = "/a/./b//c/";
    let mut r = Req::new(
        "GET",
        path,
        "",
        &[("host", "h"), ("x-amz-date", BOTO_DATE)],
        b"",
    );
    let p = params(BOTO_DATE);
    let mut creq_headers = r.headers.clone();
    creq_headers.remove("authorization");
    let uri = canonical::canonical_uris(path)[1].clone();
    assert_eq!(uri, "/a/./b//c/");
    let creq = canonical::canonical_request(
        "GET",
        &uri,
        "",
        &canonical::canonical_headers(&r.headers, "host;x-amz-date"),
        "host;x-amz-date",
        &canonical::sha256_hex(b""),
    );
    let key = canonical::signing_key(SECRET, &parse_credential(&p.credential()).unwrap());
    let sig = canonical::signature(
        &key,
        BOTO_DATE,
        &canonical::scope_string(&parse_credential(&p.credential()).unwrap()),
        &creq,
    );
    r.set(
        "authorization",
        &format!(
            "AWS4-HMAC-SHA256 Credential={}, SignedHeaders=host;x-amz-date, Signature={sig}",
            p.credential()
        ),
    );
    r.verify_at(BOTO_DATE).unwrap();
}

#[test]
fn authorization_header_spacing_variants() {
    let r = simple(BOTO_DATE);
    let auth = r.auth();
    for variant in [
        auth.replace(", ", ","),
        auth.replace(", ", " ,  "),
        format!("  {auth}  "),
        auth.replacen(' ', "\t", 1),
        format!("{auth}, Extra=ignored"),
    ] {
        let mut m = r.clone();
        m.set("authorization", &variant);
        m.verify_at(BOTO_DATE)
            .unwrap_or_else(|e| panic!("{variant}: {e}"));
    }
}

// ---------------------------------------------------------------------------
// Error paths
// ---------------------------------------------------------------------------

#[test]
fn missing_authentication_token() {
    let r = Req::new(
        "POST",
        "/",
        "Action=ListUsers",
        &[("host", "h"), ("x-amz-date", BOTO_DATE)],
        b"{}",
    );
    let err = r.verify_at(BOTO_DATE).unwrap_err();
    assert_eq!(err, SigV4Error::MissingAuthenticationToken);
    assert_eq!(err.to_string(), "Missing Authentication Token");
    assert_eq!(err.code(), "MissingAuthenticationTokenException");
    assert_eq!(err.query_code(), "MissingAuthenticationToken");
    assert_eq!(err.status(), 403);
    assert_eq!(
        parse_scope(&r.parts()).unwrap_err(),
        SigV4Error::MissingAuthenticationToken
    );
}

#[test]
fn incomplete_authorization_names_every_missing_part() {
    let mut r = simple(BOTO_DATE);
    r.set(
        "authorization",
        "AWS4-HMAC-SHA256 SignedHeaders=host;x-amz-date",
    );
    r.headers.remove("x-amz-date");
    let err = r.verify_at(BOTO_DATE).unwrap_err();
    assert_eq!(
        (
            err.code(),
            err.query_code(),
            err.status(),
            err.query_status()
        ),
        (
            "IncompleteSignatureException",
            "IncompleteSignature",
            400,
            400
        )
    );
    assert_eq!(
        err.to_string(),
        "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. \
         Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. \
         Authorization=AWS4-HMAC-SHA256 SignedHeaders=host;x-amz-date"
    );
}

#[test]
fn incomplete_authorization_redacts_signature() {
    let r = simple(BOTO_DATE);
    let sig = r.auth().rsplit_once("Signature=").unwrap().1.to_owned();
    let mut m = r.clone();
    m.set(
        "authorization",
        &r.auth().replace("SignedHeaders=host;x-amz-date, ", ""),
    );
    let msg = incomplete(m.verify_at(BOTO_DATE));
    assert!(msg.starts_with("Authorization header requires 'SignedHeaders' parameter. Authorization=AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261124/us-east-1/service/aws4_request, Signature=<redacted>"), "{msg}");
    assert!(!msg.contains(&sig));
    // Missing date header only.
    let mut m = r.clone();
    m.headers.remove("x-amz-date");
    let msg = incomplete(m.verify_at(BOTO_DATE));
    assert!(msg.starts_with("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization="), "{msg}");
    assert!(!msg.contains(&sig));
    // Empty header.
    let mut m = r.clone();
    m.set("authorization", "");
    assert!(incomplete(m.verify_at(BOTO_DATE)).starts_with("Authorization header requires 'Credential' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization header requires 'Signature' parameter."));
    // Debug of the request never shows header values.
    let dbg = format!("{:?}", r.parts());
    assert!(
        !dbg.contains(&sig) && dbg.contains("authorization"),
        "{dbg}"
    );
}

#[test]
fn malformed_authorization() {
    let r = simple(BOTO_DATE);
    let mut m = r.clone();
    m.set(
        "authorization",
        &r.auth().replace("SignedHeaders=", "SignedHeaders "),
    );
    assert!(incomplete(m.verify_at(BOTO_DATE)).starts_with("Invalid key=value pair (missing equal-sign) in Authorization header: 'SignedHeaders host;x-amz-date'"));
    let mut m = r.clone();
    m.set(
        "authorization",
        &r.auth().replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512"),
    );
    assert_eq!(
        incomplete(m.verify_at(BOTO_DATE)),
        "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512'. Only 'AWS4-HMAC-SHA256' is supported."
    );
    let mut m = r.clone();
    m.set("authorization", "Bearer abc");
    assert!(incomplete(m.verify_at(BOTO_DATE)).contains("'Bearer'"));
    assert!(matches!(
        parse_scope(&m.parts()),
        Err(SigV4Error::IncompleteSignature(_))
    ));
    let mut m = r.clone();
    m.headers.insert(
        "authorization",
        HeaderValue::from_bytes(b"AWS4-HMAC-SHA256 Credential=\xff").unwrap(),
    );
    assert_eq!(
        incomplete(m.verify_at(BOTO_DATE)),
        "Authorization header is not valid UTF-8."
    );
}

#[test]
fn bad_x_amz_date() {
    let mut r = simple(BOTO_DATE);
    r.set("x-amz-date", "2026-11-24T04:40:52Z");
    assert_eq!(
        incomplete(r.verify_at(BOTO_DATE)),
        "Date must be in ISO-8601 'basic format'. Got '2026-11-24T04:40:52Z'. See http://en.wikipedia.org/wiki/ISO_8601"
    );
    r.set("x-amz-date", "20261131T044052Z");
    assert!(
        incomplete(r.verify_at(BOTO_DATE))
            .starts_with("Date must be in ISO-8601 'basic format'. Got '20261131T044052Z'.")
    );
}

#[test]
fn bad_credential_scope() {
    let r = simple(BOTO_DATE);
    let good = "AKIDEXAMPLE/20261124/us-east-1/service/aws4_request";
    for (cred, expect) in [
        (
            "AKIDEXAMPLE/20261124/us-east-1/service",
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got 'AKIDEXAMPLE/20261124/us-east-1/service'",
        ),
        (
            "AKIDEXAMPLE/20261124/us-east-1/service/aws4_request/x",
            "Credential must have exactly 5 slash-delimited elements",
        ),
        (
            "AKIDEXAMPLE/20261124/us-east-1/service/aws4_requests",
            "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws4_requests'.",
        ),
        (
            "/20261124/us-east-1/service/aws4_request",
            "Credential should contain an access key id",
        ),
        (
            "AKIDEXAMPLE/2026112/us-east-1/service/aws4_request",
            "Credential should be scoped to a valid date (YYYYMMDD), not '2026112'.",
        ),
        (
            "AKIDEXAMPLE/20261124//service/aws4_request",
            "Credential should be scoped to a valid region, not ''.",
        ),
        (
            "AKIDEXAMPLE/20261124/us-east-1//aws4_request",
            "Credential should be scoped to correct service, not ''.",
        ),
    ] {
        let mut m = r.clone();
        m.set("authorization", &r.auth().replace(good, cred));
        let msg = incomplete(m.verify_at(BOTO_DATE));
        assert!(msg.starts_with(expect), "{cred}: {msg}");
        assert_eq!(
            parse_scope(&m.parts()).unwrap_err(),
            SigV4Error::IncompleteSignature(msg)
        );
    }
}

#[test]
fn scope_date_must_match_request_date() {
    let r = simple(BOTO_DATE);
    let mut m = r.clone();
    m.set(
        "authorization",
        &r.auth().replace("/20261124/", "/20261123/"),
    );
    let err = m.verify_at(BOTO_DATE).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20261123' != '20261124', from 'X-Amz-Date'."
    );
    assert_eq!(
        (err.code(), err.query_code()),
        ("InvalidSignatureException", "SignatureDoesNotMatch")
    );
}

#[test]
fn host_must_be_signed() {
    let mut r = Req::new(
        "GET",
        "/",
        "",
        &[("host", "h"), ("x-amz-date", BOTO_DATE)],
        b"",
    );
    let p = params(BOTO_DATE);
    let sig = signer::signature(
        "GET",
        "/",
        "",
        &r.headers,
        "x-amz-date",
        &canonical::sha256_hex(b""),
        false,
        &p,
    );
    r.set(
        "authorization",
        &format!(
            "AWS4-HMAC-SHA256 Credential={}, SignedHeaders=x-amz-date, Signature={sig}",
            p.credential()
        ),
    );
    assert_eq!(
        incomplete(r.verify_at(BOTO_DATE)),
        "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
    );
}

#[test]
fn unknown_access_key() {
    let r = simple(BOTO_DATE);
    let mut m = r.clone();
    m.set(
        "authorization",
        &r.auth().replace("AKIDEXAMPLE", "AKIDUNKNOWN"),
    );
    let err = m.verify_at(BOTO_DATE).unwrap_err();
    assert_eq!(err, SigV4Error::UnrecognizedClient);
    assert_eq!(
        err.to_string(),
        "The security token included in the request is invalid."
    );
    assert_eq!(
        (
            err.code(),
            err.query_code(),
            err.status(),
            err.query_status()
        ),
        (
            "UnrecognizedClientException",
            "InvalidClientTokenId",
            400,
            403
        )
    );
    // parse_scope does not need the secret.
    assert_eq!(
        parse_scope(&m.parts()).unwrap().access_key_id,
        "AKIDUNKNOWN"
    );
}

#[test]
fn signature_mismatch() {
    let r = simple(BOTO_DATE);
    let wrong_secret = |_: &str| Some("not-the-secret".to_owned());
    let err = verify(&r.parts(), at(BOTO_DATE), &wrong_secret).unwrap_err();
    assert_eq!(err, SigV4Error::SignatureDoesNotMatch);
    assert_eq!(
        err.to_string(),
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
    );
    assert_eq!(
        (
            err.code(),
            err.query_code(),
            err.status(),
            err.query_status()
        ),
        (
            "InvalidSignatureException",
            "SignatureDoesNotMatch",
            400,
            403
        )
    );
    let sig = r.auth().rsplit_once("Signature=").unwrap().1.to_owned();
    for bad in [
        sig.to_uppercase(),
        sig[..63].to_owned(),
        format!("{sig}0"),
        String::new(),
        "0".repeat(64),
    ] {
        let mut m = r.clone();
        m.set("authorization", &r.auth().replace(&sig, &bad));
        assert_eq!(
            m.verify_at(BOTO_DATE).unwrap_err(),
            SigV4Error::SignatureDoesNotMatch,
            "{bad}"
        );
    }
    // Changing X-Amz-Date (even within the skew window) breaks it.
    let mut m = r.clone();
    m.set("x-amz-date", "20261124T044053Z");
    assert_eq!(
        m.verify_at(BOTO_DATE).unwrap_err(),
        SigV4Error::SignatureDoesNotMatch
    );
}

#[test]
fn clock_skew_header_form() {
    let r = simple(BOTO_DATE);
    // ±15 minutes inclusive.
    r.verify_at("20261124T045552Z").unwrap();
    r.verify_at("20261124T042552Z").unwrap();
    let err = r.verify_at("20261124T051052Z").unwrap_err();
    assert_eq!(
        err.to_string(),
        "Signature expired: 20261124T044052Z is now earlier than 20261124T045552Z (20261124T051052Z - 15 min.)"
    );
    assert_eq!(
        (err.code(), err.query_code()),
        ("InvalidSignatureException", "SignatureDoesNotMatch")
    );
    assert!(err.is_time_window());
    assert!(matches!(
        r.verify_at("20261124T045553Z"),
        Err(SigV4Error::SignatureExpired { .. })
    ));
    let err = r.verify_at("20261124T042551Z").unwrap_err();
    assert_eq!(
        err.to_string(),
        "Signature not yet current: 20261124T044052Z is still later than 20261124T044051Z (20261124T042551Z + 15 min.)"
    );
    assert_eq!(
        (err.code(), err.query_code()),
        ("InvalidSignatureException", "SignatureDoesNotMatch")
    );
    // Across midnight, and with a sub-second `now`.
    let r = simple("20261231T235500Z");
    verify(
        &r.parts(),
        at("20270101T000500Z") + Duration::from_millis(999),
        &secrets,
    )
    .unwrap();
    // Checked before the key lookup.
    let mut m = r.clone();
    m.set(
        "authorization",
        &r.auth().replace("AKIDEXAMPLE", "AKIDUNKNOWN"),
    );
    assert!(matches!(
        m.verify_at("20270102T000000Z"),
        Err(SigV4Error::SignatureExpired { .. })
    ));
}

fn presigned(query: &str, expires: u64, time: &str) -> Req {
    let h = Req::new("GET", "/", "", &[("host", "h")], b"").headers;
    let q = signer::presign("GET", "/", query, &h, None, &params(time), expires).unwrap();
    Req::new("GET", "/", &q, &[("host", "h")], b"")
}

#[test]
fn presigned_param_errors() {
    let r = presigned("Action=GetCallerIdentity", 60, BOTO_DATE);
    r.verify_at(BOTO_DATE).unwrap();
    let strip = |name: &str| {
        let mut m = r.clone();
        m.query = m
            .query
            .split('&')
            .filter(|c| !c.starts_with(&format!("{name}=")))
            .collect::<Vec<_>>()
            .join("&");
        m
    };
    assert_eq!(
        incomplete(strip("X-Amz-Credential").verify_at(BOTO_DATE)),
        "AWS query-string parameters must include 'X-Amz-Credential'. Re-examine the query-string parameters."
    );
    let mut m = strip("X-Amz-Date");
    m.query = m
        .query
        .split('&')
        .filter(|c| !c.starts_with("X-Amz-Signature="))
        .collect::<Vec<_>>()
        .join("&");
    assert_eq!(
        incomplete(m.verify_at(BOTO_DATE)),
        "AWS query-string parameters must include 'X-Amz-Date'. AWS query-string parameters must include 'X-Amz-Signature'. Re-examine the query-string parameters."
    );
    assert!(incomplete(strip("X-Amz-Expires").verify_at(BOTO_DATE)).contains("'X-Amz-Expires'"));
    assert!(
        incomplete(strip("X-Amz-SignedHeaders").verify_at(BOTO_DATE))
            .contains("'X-Amz-SignedHeaders'")
    );
    assert!(
        incomplete(strip("X-Amz-Algorithm").verify_at(BOTO_DATE)).contains("'X-Amz-Algorithm'")
    );
    // Only the credential is needed to parse the scope.
    assert_eq!(
        parse_scope(&strip("X-Amz-Date").parts()).unwrap().service,
        "service"
    );
    assert!(matches!(
        parse_scope(&strip("X-Amz-Credential").parts()),
        Err(SigV4Error::IncompleteSignature(_))
    ));

    let with = |from: &str, to: &str| {
        let mut m = r.clone();
        assert!(m.query.contains(from));
        m.query = m.query.replace(from, to);
        m
    };
    assert_eq!(
        incomplete(with("X-Amz-Expires=60", "X-Amz-Expires=0").verify_at(BOTO_DATE)),
        "X-Amz-Expires must be at least 1 second."
    );
    assert_eq!(
        incomplete(with("X-Amz-Expires=60", "X-Amz-Expires=604801").verify_at(BOTO_DATE)),
        "X-Amz-Expires must be less than a week (in seconds) that is 604800."
    );
    assert_eq!(
        incomplete(with("X-Amz-Expires=60", "X-Amz-Expires=-1").verify_at(BOTO_DATE)),
        "X-Amz-Expires should be a number, got '-1'."
    );
    assert_eq!(
        incomplete(
            with("X-Amz-Expires=60", "X-Amz-Expires=99999999999999999999999").verify_at(BOTO_DATE)
        ),
        "X-Amz-Expires should be a number, got '99999999999999999999999'."
    );
    assert_eq!(
        incomplete(
            with(
                "X-Amz-Algorithm=AWS4-HMAC-SHA256",
                "X-Amz-Algorithm=AWS4-ECDSA-P256-SHA256"
            )
            .verify_at(BOTO_DATE)
        ),
        "Unsupported AWS 'algorithm': 'AWS4-ECDSA-P256-SHA256'. Only 'AWS4-HMAC-SHA256' is supported."
    );
    assert!(
        incomplete(with("X-Amz-Date=20261124T044052Z", "X-Amz-Date=20261124").verify_at(BOTO_DATE))
            .starts_with("Date must be in ISO-8601 'basic format'. Got '20261124'.")
    );
    assert!(
        matches!(with("X-Amz-Date=20261124T044052Z", "X-Amz-Date=20261125T000000Z").verify_at(BOTO_DATE), Err(SigV4Error::InvalidSignature(m)) if m.ends_with("'20261124' != '20261125', from 'X-Amz-Date'."))
    );
    assert_eq!(
        incomplete(
            with("X-Amz-SignedHeaders=host", "X-Amz-SignedHeaders=x-amz-date").verify_at(BOTO_DATE)
        ),
        "'Host' or ':authority' must be a 'SignedHeader' in the X-Amz-SignedHeaders."
    );
    assert_eq!(
        incomplete(with("X-Amz-Credential=", "X-Amz-Credential=%FF").verify_at(BOTO_DATE)),
        "Query parameter 'X-Amz-Credential' is not valid UTF-8."
    );
    assert_eq!(
        with("X-Amz-Credential=AKIDEXAMPLE", "X-Amz-Credential=AKIDNOPE")
            .verify_at(BOTO_DATE)
            .unwrap_err(),
        SigV4Error::UnrecognizedClient
    );
    // Max expiry is accepted.
    let r = presigned("", MAX_PRESIGNED_EXPIRES_SECS, BOTO_DATE);
    r.verify_at("20261201T044052Z").unwrap();
    assert!(matches!(
        r.verify_at("20261201T044053Z"),
        Err(SigV4Error::RequestExpired {
            expires: 604_800,
            ..
        })
    ));
}

#[test]
fn presigned_content_sha256() {
    // A body hash declared by header binds the body.
    let mut r = presigned("", 60, BOTO_DATE);
    r.set("x-amz-content-sha256", &canonical::sha256_hex(b"x"));
    r.body = b"y".to_vec();
    assert!(matches!(
        r.verify_at(BOTO_DATE),
        Err(SigV4Error::InvalidSignature(_))
    ));
    // The header changes the payload line, so the UNSIGNED-PAYLOAD signature no longer matches.
    r.body = b"x".to_vec();
    assert_eq!(
        r.verify_at(BOTO_DATE).unwrap_err(),
        SigV4Error::SignatureDoesNotMatch
    );
    // Explicit X-Amz-Content-Sha256=UNSIGNED-PAYLOAD query parameter (as S3 presigners add).
    let r = presigned("X-Amz-Content-Sha256=UNSIGNED-PAYLOAD", 60, BOTO_DATE);
    r.verify_at(BOTO_DATE).unwrap();
}

#[test]
fn authorization_header_wins_over_presigned_params() {
    let mut r = simple(BOTO_DATE);
    r.query = "X-Amz-Signature=abc".into();
    // The query is part of the header-form canonical request, so this fails as a mismatch
    // (not as a presigned-parameter error).
    assert_eq!(
        r.verify_at(BOTO_DATE).unwrap_err(),
        SigV4Error::SignatureDoesNotMatch
    );
}

#[test]
fn error_table() {
    let ts = || "20261124T044052Z".to_owned();
    let all = [
        SigV4Error::MissingAuthenticationToken,
        SigV4Error::IncompleteSignature("m".into()),
        SigV4Error::UnrecognizedClient,
        SigV4Error::SignatureDoesNotMatch,
        SigV4Error::InvalidSignature("m".into()),
        SigV4Error::SignatureExpired {
            signed_at: ts(),
            earliest: ts(),
            now: ts(),
        },
        SigV4Error::SignatureNotYetCurrent {
            signed_at: ts(),
            latest: ts(),
            now: ts(),
        },
        SigV4Error::RequestExpired {
            signed_at: ts(),
            expires: 1,
            expired_at: ts(),
            now: ts(),
        },
    ];
    let table: Vec<_> = all
        .iter()
        .map(|e| {
            (
                e.code(),
                e.query_code(),
                e.status(),
                e.query_status(),
                e.is_time_window(),
            )
        })
        .collect();
    assert_eq!(
        table,
        vec![
            (
                "MissingAuthenticationTokenException",
                "MissingAuthenticationToken",
                403,
                403,
                false
            ),
            (
                "IncompleteSignatureException",
                "IncompleteSignature",
                400,
                400,
                false
            ),
            (
                "UnrecognizedClientException",
                "InvalidClientTokenId",
                400,
                403,
                false
            ),
            (
                "InvalidSignatureException",
                "SignatureDoesNotMatch",
                400,
                403,
                false
            ),
            (
                "InvalidSignatureException",
                "SignatureDoesNotMatch",
                400,
                403,
                false
            ),
            (
                "InvalidSignatureException",
                "SignatureDoesNotMatch",
                400,
                403,
                true
            ),
            (
                "InvalidSignatureException",
                "SignatureDoesNotMatch",
                400,
                403,
                true
            ),
            (
                "InvalidSignatureException",
                "SignatureDoesNotMatch",
                400,
                403,
                true
            ),
        ]
    );
    for e in &all {
        assert_eq!(e.message(), e.to_string());
        assert_eq!(e.json_code(), e.code());
    }
}

#[test]
fn messages_sanitise_echoed_input() {
    let mut r = simple(BOTO_DATE);
    r.headers.insert(
        "x-amz-date",
        HeaderValue::from_bytes(b"a\tb\xe2\x82\xac").unwrap(),
    );
    let msg = incomplete(r.verify_at(BOTO_DATE));
    assert!(msg.contains("Got 'a?b\u{20ac}'"), "{msg}");
    r.set("x-amz-date", &"9".repeat(500));
    let msg = incomplete(r.verify_at(BOTO_DATE));
    assert!(msg.len() < 200, "{msg}");
}

// ---------------------------------------------------------------------------
// Property tests
// ---------------------------------------------------------------------------

const KNOWN_CODES: [&str; 5] = [
    "MissingAuthenticationTokenException",
    "IncompleteSignatureException",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "InvalidSignatureException",
];

fn check_outcome(r: &Req, now: SystemTime) -> Result<(), TestCaseError> {
    let parts = r.parts();
    let _ = parse_scope(&parts);
    match verify(&parts, now, &secrets) {
        Ok(a) => {
            prop_assert!(secrets(&a.access_key_id).is_some());
        }
        Err(e) => {
            prop_assert!(KNOWN_CODES.contains(&e.code()), "{:?}", e);
            prop_assert!(
                [
                    "MissingAuthenticationToken",
                    "IncompleteSignature",
                    "InvalidClientTokenId",
                    "SignatureDoesNotMatch"
                ]
                .contains(&e.query_code())
            );
            let msg = e.to_string();
            let dbg = format!("{e:?}");
            prop_assert!(!msg.contains(SECRET) && !dbg.contains(SECRET));
            prop_assert!(msg.len() < 2048, "{}", msg.len());
        }
    }
    Ok(())
}

fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("authorization".to_owned()),
        Just("x-amz-date".to_owned()),
        Just("date".to_owned()),
        Just("host".to_owned()),
        Just("x-amz-content-sha256".to_owned()),
        Just("x-amz-security-token".to_owned()),
        "[a-z][a-z0-9-]{0,12}",
    ]
}

fn auth_like() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just("AWS4-HMAC-SHA256 ".to_owned()),
        Just("Credential=".to_owned()),
        Just("AKIDEXAMPLE/20261124/us-east-1/ecs/aws4_request".to_owned()),
        Just(", SignedHeaders=".to_owned()),
        Just("host;x-amz-date".to_owned()),
        Just(", Signature=".to_owned()),
        Just("=".to_owned()),
        Just(",".to_owned()),
        Just("/".to_owned()),
        "[ -~]{0,16}",
    ];
    prop_oneof![
        proptest::collection::vec(piece, 0..10).prop_map(|v| v.concat().into_bytes()),
        proptest::collection::vec(any::<u8>(), 0..64),
    ]
}

fn query_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("X-Amz-Algorithm=AWS4-HMAC-SHA256".to_owned()),
        Just("X-Amz-Credential=AKIDEXAMPLE%2F20261124%2Fus-east-1%2Fsts%2Faws4_request".to_owned()),
        Just("X-Amz-Date=20261124T044052Z".to_owned()),
        Just("X-Amz-Expires=900".to_owned()),
        Just("X-Amz-SignedHeaders=host".to_owned()),
        Just("X-Amz-Signature=".to_owned()),
        Just("X-Amz-Security-Token=%FF%00".to_owned()),
        Just("X-Amz-Content-Sha256=".to_owned()),
        Just("&".to_owned()),
        Just("=".to_owned()),
        Just("%".to_owned()),
        "[ -~]{0,12}",
        "\\PC{0,6}",
    ];
    proptest::collection::vec(piece, 0..10).prop_map(|v| v.join("&"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_requests_never_panic(
        method in "\\PC{0,8}",
        path in "\\PC{0,24}",
        query in query_like(),
        headers in proptest::collection::vec((header_name(), auth_like()), 0..8),
        body in proptest::collection::vec(any::<u8>(), 0..64),
        now_secs in prop_oneof![Just(1_795_495_252i64), -100_000_000_000i64..100_000_000_000i64],
    ) {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            if let (Ok(k), Ok(v)) = (HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_bytes(&v)) {
                h.append(k, v);
            }
        }
        let r = Req { method, path, query, headers: h, body };
        let now = time::system_time(now_secs).unwrap_or(SystemTime::UNIX_EPOCH);
        check_outcome(&r, now)?;
    }

    #[test]
    fn mutated_signed_requests_never_panic(
        presign in any::<bool>(),
        which in 0usize..5,
        pos in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        skew in -2_000i64..2_000,
    ) {
        let mut r = if presign {
            presigned("Action=GetCallerIdentity&Version=2011-06-15", 900, BOTO_DATE)
        } else {
            signed("POST", "/", "", &[("host", "localhost"), ("content-type", "application/x-amz-json-1.1")], b"{\"a\":1}", BOTO_DATE)
        };
        let flip = |s: &mut Vec<u8>| {
            if s.is_empty() { s.push(byte) } else { let i = pos.index(s.len()); s[i] = byte; }
        };
        match which {
            0 => { let mut b = r.path.clone().into_bytes(); flip(&mut b); r.path = String::from_utf8_lossy(&b).into_owned(); }
            1 => { let mut b = r.query.clone().into_bytes(); flip(&mut b); r.query = String::from_utf8_lossy(&b).into_owned(); }
            2 => flip(&mut r.body),
            3 => {
                if let Some(v) = r.headers.get("authorization") {
                    let mut b = v.as_bytes().to_vec();
                    flip(&mut b);
                    if let Ok(v) = HeaderValue::from_bytes(&b) { r.headers.insert("authorization", v); }
                }
            }
            _ => {
                let mut b = r.headers.get("host").map(|v| v.as_bytes().to_vec()).unwrap_or_default();
                flip(&mut b);
                if let Ok(v) = HeaderValue::from_bytes(&b) { r.headers.insert("host", v); }
            }
        }
        let now = at(BOTO_DATE) + Duration::from_secs(2_000) - Duration::from_secs((2_000 - skew) as u64);
        check_outcome(&r, now)?;
    }

    #[test]
    fn signer_and_verifier_agree(
        path_segs in proptest::collection::vec("[a-zA-Z0-9._~%:@!$&'()*+,;= -]{0,6}", 0..4),
        query_pairs in proptest::collection::vec(("[a-zA-Z0-9._~-]{1,6}", "\\PC{0,6}"), 0..4),
        body in proptest::collection::vec(any::<u8>(), 0..32),
        header_val in "[ -~]{0,16}",
        presign in any::<bool>(),
    ) {
        let path = format!("/{}", path_segs.iter().map(|s| canonical::uri_encode(s.as_bytes())).collect::<Vec<_>>().join("/"));
        let query = query_pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", canonical::uri_encode(v.as_bytes())))
            .collect::<Vec<_>>()
            .join("&");
        let r = if presign {
            let h = Req::new("PUT", &path, "", &[("host", "h")], b"").headers;
            let q = signer::presign("PUT", &path, &query, &h, None, &params(BOTO_DATE), 300).unwrap();
            Req::new("PUT", &path, &q, &[("host", "h")], &body)
        } else {
            signed("PUT", &path, &query, &[("host", "h"), ("x-custom", &header_val)], &body, BOTO_DATE)
        };
        let a = r.verify_at(BOTO_DATE);
        prop_assert!(a.is_ok(), "{:?} {} {}", a, path, query);
    }
}
