//! A tiny OCI Distribution registry on 127.0.0.1, serving from memory,
//! with optional Basic auth or a Bearer token endpoint.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use berth_image::{Digest, ImageReference};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

#[derive(Clone, Debug)]
pub enum Auth {
    Anonymous,
    Basic {
        user: String,
        password: String,
    },
    /// Tokens from `/token`; if `user` is set the token endpoint demands
    /// those credentials.
    Bearer {
        user: Option<(String, String)>,
    },
}

#[derive(Default)]
struct State {
    /// (repository, tag or digest) → (media type, body)
    manifests: HashMap<(String, String), (String, Bytes)>,
    blobs: HashMap<String, Bytes>,
    /// Served instead of the real content for these digests.
    tampered: HashMap<String, Bytes>,
    tokens: HashSet<String>,
    token_requests: usize,
    token_scopes: Vec<String>,
    blob_gets: HashMap<String, usize>,
    manifest_gets: usize,
    blob_delay: Duration,
}

pub struct TestRegistry {
    addr: SocketAddr,
    auth: Auth,
    state: Arc<Mutex<State>>,
    server: tokio::task::JoinHandle<()>,
}

impl TestRegistry {
    pub async fn start(auth: Auth) -> TestRegistry {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let server = {
            let state = state.clone();
            let auth = auth.clone();
            tokio::spawn(async move {
                // Connection tasks live in this set, so aborting the server
                // also drops connections a client keeps alive.
                let mut connections = tokio::task::JoinSet::new();
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        break;
                    };
                    let state = state.clone();
                    let auth = auth.clone();
                    connections.spawn(async move {
                        let service = hyper::service::service_fn(move |req| {
                            let state = state.clone();
                            let auth = auth.clone();
                            async move { Ok::<_, Infallible>(handle(req, &state, &auth, addr).await) }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            })
        };
        TestRegistry {
            addr,
            auth,
            state,
            server,
        }
    }

    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    pub fn reference(&self, repo_and_tag: &str) -> ImageReference {
        ImageReference::parse(&format!("{}/{}", self.host(), repo_and_tag)).unwrap()
    }

    pub fn put_blob(&self, bytes: impl Into<Bytes>) -> Digest {
        let bytes = bytes.into();
        let digest = Digest::of(&bytes);
        self.state
            .lock()
            .unwrap()
            .blobs
            .insert(digest.to_string(), bytes);
        digest
    }

    /// Stores a manifest under its digest and, if given, a tag.
    pub fn put_manifest(
        &self,
        repo: &str,
        tag: Option<&str>,
        media_type: &str,
        bytes: impl Into<Bytes>,
    ) -> Digest {
        let bytes = bytes.into();
        let digest = Digest::of(&bytes);
        let mut state = self.state.lock().unwrap();
        let entry = (media_type.to_owned(), bytes);
        state
            .manifests
            .insert((repo.to_owned(), digest.to_string()), entry.clone());
        if let Some(tag) = tag {
            state
                .manifests
                .insert((repo.to_owned(), tag.to_owned()), entry);
        }
        digest
    }

    pub fn tamper(&self, digest: &Digest, bytes: impl Into<Bytes>) {
        self.state
            .lock()
            .unwrap()
            .tampered
            .insert(digest.to_string(), bytes.into());
    }

    pub fn blob_gets(&self, digest: &Digest) -> usize {
        self.state
            .lock()
            .unwrap()
            .blob_gets
            .get(&digest.to_string())
            .copied()
            .unwrap_or(0)
    }

    pub fn total_blob_gets(&self) -> usize {
        self.state.lock().unwrap().blob_gets.values().sum()
    }

    pub fn manifest_gets(&self) -> usize {
        self.state.lock().unwrap().manifest_gets
    }

    pub fn token_requests(&self) -> usize {
        self.state.lock().unwrap().token_requests
    }

    pub fn token_scopes(&self) -> Vec<String> {
        self.state.lock().unwrap().token_scopes.clone()
    }

    pub fn set_blob_delay(&self, delay: Duration) {
        self.state.lock().unwrap().blob_delay = delay;
    }

    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    /// Stops serving: new connections are refused, open ones dropped.
    pub async fn stop(self) {
        self.server.abort();
        let _ = self.server.await;
    }
}

fn respond(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
}

fn error(status: StatusCode, code: &str) -> Response<Full<Bytes>> {
    let mut r = respond(
        status,
        format!(r#"{{"errors":[{{"code":"{code}","message":"{code}"}}]}}"#),
    );
    r.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    r
}

fn basic_ok(req: &Request<Incoming>, user: &str, password: &str) -> bool {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    );
    req.headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        == Some(expected.as_str())
}

async fn handle(
    req: Request<Incoming>,
    state: &Mutex<State>,
    auth: &Auth,
    addr: SocketAddr,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    if path == "/token" {
        let query = req.uri().query().unwrap_or("").to_owned();
        if let Auth::Bearer { user: Some((u, p)) } = auth
            && !basic_ok(&req, u, p)
        {
            return error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
        }
        let mut s = state.lock().unwrap();
        s.token_requests += 1;
        s.token_scopes.push(query);
        let token = format!("token-{}", s.token_requests);
        s.tokens.insert(token.clone());
        return respond(
            StatusCode::OK,
            format!(r#"{{"token":"{token}","expires_in":300}}"#),
        );
    }
    let Some(rest) = path.strip_prefix("/v2/") else {
        return error(StatusCode::NOT_FOUND, "NOT_FOUND");
    };

    let (repo, kind, reference) = if let Some((repo, r)) = rest.rsplit_once("/manifests/") {
        (repo.to_owned(), "manifests", r.to_owned())
    } else if let Some((repo, r)) = rest.rsplit_once("/blobs/") {
        (repo.to_owned(), "blobs", r.to_owned())
    } else {
        (String::new(), "base", String::new())
    };

    let authorized = match auth {
        Auth::Anonymous => true,
        Auth::Basic { user, password } => basic_ok(&req, user, password),
        Auth::Bearer { .. } => req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|t| state.lock().unwrap().tokens.contains(t)),
    };
    if !authorized {
        let mut r = error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
        let challenge = match auth {
            Auth::Basic { .. } => r#"Basic realm="test""#.to_owned(),
            _ => format!(
                r#"Bearer realm="http://{addr}/token",service="test-registry",scope="repository:{repo}:pull""#
            ),
        };
        r.headers_mut()
            .insert("www-authenticate", challenge.parse().unwrap());
        return r;
    }

    match kind {
        "manifests" => {
            let found = {
                let mut s = state.lock().unwrap();
                s.manifest_gets += 1;
                s.manifests.get(&(repo, reference)).cloned()
            };
            match found {
                Some((media_type, body)) => {
                    let digest = Digest::of(&body);
                    let mut r = respond(StatusCode::OK, body);
                    r.headers_mut()
                        .insert("content-type", media_type.parse().unwrap());
                    r.headers_mut()
                        .insert("docker-content-digest", digest.to_string().parse().unwrap());
                    r
                }
                None => error(StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN"),
            }
        }
        "blobs" => {
            let (body, delay) = {
                let mut s = state.lock().unwrap();
                *s.blob_gets.entry(reference.clone()).or_default() += 1;
                let body = s
                    .tampered
                    .get(&reference)
                    .or_else(|| s.blobs.get(&reference))
                    .cloned();
                (body, s.blob_delay)
            };
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            match body {
                Some(body) => respond(StatusCode::OK, body),
                None => error(StatusCode::NOT_FOUND, "BLOB_UNKNOWN"),
            }
        }
        _ => respond(StatusCode::OK, "{}"),
    }
}
