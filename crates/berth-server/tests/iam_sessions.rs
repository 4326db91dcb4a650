//! Temporary credentials and IAM users at the front door, with a fake
//! clock: a session is accepted as its assumed role until it expires, then
//! refused with ExpiredToken; tampered tokens are refused as invalid; a
//! user's key is authorized by its policies.

use berth_clock::FakeClock;
use berth_iam::model::{AccessKey, IamState, Role, User};
use berth_iam::sessions::{self, SessionClaims, SessionSubject};
use berth_iam::{Iam, MasterKey};
use berth_server::FrontDoor;
use berth_server::credentials::{self, Overrides};
use berth_sigv4::signer::{self, Credentials, SigningParams};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request};
use http_body_util::{BodyExt, Full};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

const ACCOUNT: &str = "123456789012";
const NOW: u64 = 1_795_000_000;

struct Door {
    door: FrontDoor,
    clock: Arc<FakeClock>,
    iam: Arc<Iam>,
    _dir: tempfile::TempDir,
}

fn role(name: &str, policy: &str) -> Role {
    Role {
        name: name.into(),
        id: "AROAEXAMPLEROLE00001".into(),
        path: "/".into(),
        arn: format!("arn:aws:iam::{ACCOUNT}:role/{name}"),
        created_at: NOW,
        assume_role_policy_document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#.into(),
        description: None,
        max_session_duration: 3600,
        inline_policies: BTreeMap::from([("p".to_string(), policy.to_string())]),
        attached_policies: vec![],
        tags: vec![],
    }
}

async fn door() -> Door {
    let dir = tempfile::tempdir().unwrap();
    let identity = credentials::load_or_create(
        dir.path(),
        &Overrides {
            account_id: Some(ACCOUNT.into()),
            root_access_key_id: Some("AKIAIAMSESSIONSROOT1".into()),
            root_secret_access_key: Some("iam-sessions-root-secret-0123456789abcd".into()),
        },
    )
    .unwrap();
    let clock = Arc::new(FakeClock::at_epoch_secs(NOW));
    let store: Arc<dyn berth_store::Store> = Arc::new(berth_store::memory::MemoryStore::new());
    let iam = Iam::open(store.clone(), identity.account_id.clone(), MasterKey::generate()).await.unwrap();
    iam.mutate(|s: &mut IamState| {
        s.roles.insert("reader".into(), role("reader", r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecs:List*","Resource":"*"}]}"#));
        Ok(())
    })
    .await
    .unwrap();
    let door = FrontDoor::new(identity, berth_ecs::Ecs::new(store), iam.clone(), clock.clone(), 1 << 20);
    Door { door, clock, iam, _dir: dir }
}

fn session(d: &Door, lifetime: u64) -> sessions::SessionCredentials {
    let claims = SessionClaims {
        account: ACCOUNT.into(),
        subject: SessionSubject::AssumedRole { role_name: "reader".into(), role_id: "AROAEXAMPLEROLE00001".into(), session_name: "task-1".into() },
        issued_at: NOW,
        expires_at: NOW + lifetime,
    };
    sessions::mint(d.iam.key(), &claims)
}

/// A signed request: JSON (`target` set) or query (`form` body).
fn signed(d: &Door, akid: &str, secret: &str, token: Option<&str>, service: &str, target: Option<&str>, body: &str) -> Request<Full<Bytes>> {
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("127.0.0.1:4566"));
    match target {
        Some(t) => {
            headers.insert("content-type", HeaderValue::from_static("application/x-amz-json-1.1"));
            headers.insert("x-amz-target", HeaderValue::from_str(t).unwrap());
        }
        None => {
            headers.insert("content-type", HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"));
        }
    }
    let params = SigningParams {
        credentials: Credentials { access_key_id: akid, secret_access_key: secret, session_token: token },
        region: "us-east-1",
        service,
        time: berth_clock::Clock::now(d.clock.as_ref()),
    };
    signer::sign("POST", "/", "", &mut headers, body.as_bytes(), &params).unwrap();
    let mut req = Request::builder().method("POST").uri("/");
    for (k, v) in &headers {
        req = req.header(k, v);
    }
    req.body(Full::new(Bytes::from(body.to_string()))).unwrap()
}

async fn call(d: &Door, req: Request<Full<Bytes>>) -> (u16, String) {
    let resp = d.door.handle(req).await;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

const LIST: &str = "AmazonEC2ContainerServiceV20141113.ListClusters";
const CREATE: &str = "AmazonEC2ContainerServiceV20141113.CreateCluster";
const WHO: &str = "Action=GetCallerIdentity&Version=2011-06-15";

#[tokio::test]
async fn a_session_is_its_assumed_role_until_it_expires() {
    let d = door().await;
    let s = session(&d, 900);
    let (status, body) = call(&d, signed(&d, &s.access_key_id, &s.secret_access_key, Some(&s.session_token), "ecs", Some(LIST), "{}")).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(&d, signed(&d, &s.access_key_id, &s.secret_access_key, Some(&s.session_token), "sts", None, WHO)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("<Arn>arn:aws:sts::123456789012:assumed-role/reader/task-1</Arn>"), "{body}");
    assert!(body.contains("<UserId>AROAEXAMPLEROLE00001:task-1</UserId>"), "{body}");
    // The role's policy allows List* only.
    let (status, body) = call(&d, signed(&d, &s.access_key_id, &s.secret_access_key, Some(&s.session_token), "ecs", Some(CREATE), r#"{"clusterName":"x"}"#)).await;
    assert_eq!(status, 400);
    assert!(body.contains("AccessDeniedException") && body.contains("assumed-role/reader/task-1 is not authorized to perform: ecs:CreateCluster"), "{body}");

    // One second before expiry: fine; at expiry: refused in each protocol's words.
    d.clock.advance(Duration::from_secs(899));
    let (status, _) = call(&d, signed(&d, &s.access_key_id, &s.secret_access_key, Some(&s.session_token), "ecs", Some(LIST), "{}")).await;
    assert_eq!(status, 200);
    d.clock.advance(Duration::from_secs(1));
    let (status, body) = call(&d, signed(&d, &s.access_key_id, &s.secret_access_key, Some(&s.session_token), "ecs", Some(LIST), "{}")).await;
    assert_eq!(status, 403);
    assert!(body.contains("ExpiredTokenException") && body.contains("The security token included in the request is expired"), "{body}");
    let (status, body) = call(&d, signed(&d, &s.access_key_id, &s.secret_access_key, Some(&s.session_token), "sts", None, WHO)).await;
    assert_eq!(status, 403);
    assert!(body.contains("<Code>ExpiredToken</Code>"), "{body}");
}

#[tokio::test]
async fn tampered_tokens_and_deleted_roles_get_nothing() {
    let d = door().await;
    let s = session(&d, 3600);
    let mut bytes = s.session_token.clone().into_bytes();
    let i = bytes.len() / 2;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes).unwrap();
    let (status, body) = call(&d, signed(&d, &s.access_key_id, &s.secret_access_key, Some(&tampered), "ecs", Some(LIST), "{}")).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("UnrecognizedClientException"), "{body}");
    let (status, body) = call(&d, signed(&d, &s.access_key_id, &s.secret_access_key, Some(&tampered), "sts", None, WHO)).await;
    assert_eq!(status, 403);
    assert!(body.contains("<Code>InvalidClientTokenId</Code>"), "{body}");

    // A token sealed under another master key.
    let foreign = sessions::mint(
        &MasterKey::generate(),
        &SessionClaims { account: ACCOUNT.into(), subject: SessionSubject::Root, issued_at: NOW, expires_at: NOW + 3600 },
    );
    let (_, body) = call(&d, signed(&d, &foreign.access_key_id, &foreign.secret_access_key, Some(&foreign.session_token), "ecs", Some(LIST), "{}")).await;
    assert!(body.contains("UnrecognizedClientException"), "{body}");

    // The role deleted: the session lives on, its permissions do not.
    d.iam.mutate(|st| {
        st.roles.clear();
        Ok(())
    })
    .await
    .unwrap();
    let (status, body) = call(&d, signed(&d, &s.access_key_id, &s.secret_access_key, Some(&s.session_token), "ecs", Some(LIST), "{}")).await;
    assert_eq!(status, 400);
    assert!(body.contains("AccessDeniedException"), "{body}");
}

#[tokio::test]
async fn a_users_key_is_authorized_by_its_policies_and_sealed_at_rest() {
    let d = door().await;
    let secret = "user-secret-key-material-0123456789abcd";
    let sealed = d.iam.key().seal("AKIAUSERKEYEXAMPLE01", secret.as_bytes());
    d.iam
        .mutate(|st| {
            st.users.insert(
                "ci".into(),
                User {
                    name: "ci".into(),
                    id: "AIDAEXAMPLEUSER00001".into(),
                    path: "/".into(),
                    arn: format!("arn:aws:iam::{ACCOUNT}:user/ci"),
                    created_at: NOW,
                    inline_policies: BTreeMap::from([(
                        "p".to_string(),
                        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecs:DescribeClusters","Resource":"*"}]}"#.to_string(),
                    )]),
                    attached_policies: vec![],
                    groups: vec![],
                    tags: vec![],
                },
            );
            st.access_keys.insert(
                "AKIAUSERKEYEXAMPLE01".into(),
                AccessKey { access_key_id: "AKIAUSERKEYEXAMPLE01".into(), user_name: "ci".into(), secret: sealed.clone(), status: "Active".into(), created_at: NOW },
            );
            Ok(())
        })
        .await
        .unwrap();
    let raw = d.iam.store().get("iam/123456789012/state").await.unwrap().unwrap();
    assert!(!String::from_utf8_lossy(&raw.value).contains(secret), "the secret is stored sealed");

    let describe = "AmazonEC2ContainerServiceV20141113.DescribeClusters";
    let (status, body) = call(&d, signed(&d, "AKIAUSERKEYEXAMPLE01", secret, None, "ecs", Some(describe), r#"{"clusters":["default"]}"#)).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(&d, signed(&d, "AKIAUSERKEYEXAMPLE01", secret, None, "ecs", Some(CREATE), r#"{"clusterName":"prod"}"#)).await;
    assert_eq!(status, 400);
    let expected = "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: ecs:CreateCluster on resource: arn:aws:ecs:us-east-1:123456789012:cluster/prod because no identity-based policy allows the ecs:CreateCluster action";
    assert!(body.contains("AccessDeniedException") && body.contains(expected), "{body}");
    // The wrong secret is a signature mismatch, not a lookup failure.
    let (_, body) = call(&d, signed(&d, "AKIAUSERKEYEXAMPLE01", "wrong-secret-wrong-secret-wrong-secret0", None, "ecs", Some(describe), "{}")).await;
    assert!(body.contains("InvalidSignatureException"), "{body}");
}
