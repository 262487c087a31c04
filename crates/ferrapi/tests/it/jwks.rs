//! JWKS (feature `jwks`): keys fetched from an identity provider's URL,
//! cached, rotated by `kid`, kept while the provider fails — against a real
//! HTTP server on 127.0.0.1 whose key set the tests change.

use crate::middleware::jwt::{assert_invalid, call, me};
use base64::Engine as _;
use bytes::Bytes;
use ferrapi::middleware::jwt::{Jwks, JwksError, JwtLayer, JwtVerifier};
use ferrapi::prelude::*;
use ferrapi::testing::{TestClient, TestResponse};
use futures_util::future::join_all;
use http_body_util::Full;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

// Test keys, generated for these tests only.
const RSA_A: &str = r"-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDLJk9PfesJjPGG
4vzvXmeg04nreqiqdE2fBhVEykVVY46zMLuoZCah5yrfxwBzFH4/vrQY1jyCbNeU
ji5v6SFC6hwc1Zgjatfm28xmGl9H7a1pglM2dqx1NYfAd6XJxd7fhMl2pTFiB7yo
dhQbcUanmNNjqzgj2LE9xFThq1470f9ikxhqx3QvpjTJORYYO1QelucqtkJjmkXX
fA041mx1vLhfbthjmQuXvGY8B/nblrjBqpQHyt3iorRleq8zUTT1Qg2HyRhHK5fo
8iZsnzp9SUhnW8hClNANFsnnKgtn7xOmBavFZyQotuAAHvvf/DSVPuXqgAMlCaaF
D5mVg9WzAgMBAAECggEAObQqkApU0lQqIOXl8bovllOwF+ax9STvDW4laXJJCm2q
kYSUsUqtXIy0tXapzoZyK/on3uwvqN5wx94xG5GtZHvqO1iCjADjzcv+Pbxc9ynw
eYlOyKgh6XMomceCnJMrcPMfZKecpNtMv882e+sLpjx3QxbV7fy1r7VOZQGP1U6Z
iRmTJk/5A03fhARLh7ajqQvcyyQEeEWrdyOm2RU8MQAhB3z4twch5h+H8MMnPYwQ
RiDUdsUF9fR/IbpU1+yyMZ//oRLc2pdlUDwLI5mXI8VIabxKmI+LcXFQULvdDhdD
AT5pLx6zuYrd6bOmL0+/JI/Ls1k/wC6CUEE8RXCehQKBgQD3/apQcPbocfVbe4DX
l+3AzkW7aE4jXnmjFr58hjbhjDGQ1oLjwPteRaPoyCXkhmGOx1OuApdOBvl2BsUt
5nTaa5BbuNO+7XjfXw+CZL/rtQy2yedbZHvKm2fQq6UVKT2GZutNxqCp1FJqo4lp
t+2JRidc7Idaf8Qved6KN0Pt5wKBgQDRtegt9Ig9h5eTPuJIhrkOSAm+zy2T1Q42
MoeWwJSQlOxYnTLwxx2j5aYEhwgPNB3A8cqJo9gtRvtuYAJSmhPcpdd+yZ9rt384
kxuk+kg9KvTNM79T5yNCcrKWN7NkOFl7lP39rsucBojI8DmESAEMaE6Z8Hz6nX92
zKdhuDBoVQKBgQCfBpGy593NjVZThc1Hc2vJGf1pgiepUqoZxTn9zGthE2+te4GP
327SM0I6wi5abzocPwIQMiUoqhxKbWkAWCpS7msyBkHyy4GZa/IcIdNYqU8v4CV2
W+duM13NWGSSP1Hu4AzAYUEh5r+7FofFvWabgts3IY5ioFAESdhFNc9fvQKBgCKv
y++N+tryioe4ZwVIA2PxVmtRKWDCZM9iHDs7L1eaylz942cgCC8L1SH6k8KwBBvd
4npRt3gFvaDMEJZJFe/xHmvCPbQ7bbeV3YS0QS6c5FDstkDSgmqDPjbKj8mL6IEg
a8KCHvt3uThDQ8A1iLbcqeOce4+YbXTg9O6c4KThAoGBAMvaqxVSR5w3/cuDngug
ImLAXo6ZKNrYlw3bBuvEiNGWjJTqCrFOZwQnNMZAwKv84476rU93HoB59fCbPu25
vwbWHvFgpUoGM7pLI1MwuLCLoC+7AY+b5HNzfS54m5gB6VPu55/r7oFEHt/1vup7
9HwoS+A+B2iJDjlLQfaKVX4g
-----END PRIVATE KEY-----";
const RSA_B: &str = r"-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDK9dSydzkcWhX9
48ZrqmFbU8M0IMCZQiNwKUC+Pac+RsPXd+tH1GnUwf1ic0CZBjZHu6xUCRE+EqQQ
B9knl+CxEpvTAquVl8Qf+SyXfRK3fDaq+sxi1R2gFDwAnmTO9Vk+bAfvdXj21SLz
J8JnUCRBDaWAZGGuHChG2PBKwO9T2jXDn1bRJFOQCPTFn+y5EQd2yb3sz3G9XhhT
c36bxswAzOji+Rv0D4oOJ0m+xYGYAfINdHOdbS6xmAodLpszA8ICfxJch8eKytbr
uzVEFzkTfNBni6BRc5iM2s+MVWvoDu+bv3sxOOPuiAAbhen2ygHr0aBdjmoa7D1X
HnqapHZlAgMBAAECggEACLuAggg6qxNeMF0RP7cmNrN5KeBB4SY1F6GSwUyuSjHp
wbbNZvsG7apGEGsUi7D2e2oh/UChnwnWyMDJsVgpyPybuz25a7eKrvR93Gu7dy0P
PhaJ3jO8sVNFjKJEBJqOUy77PWyQvpAHj641gVPzp1/ir85B3Kel/PxfBFxeP72H
Vs+vqlSp4e67Jc2ZEviK3t8xdBGetZf69agAqL5HJFqwCHjIQKrJpPJ+pSVRhZAZ
axhDgjIFcWq1JGJ9GcL/mos7Hri/xbjG8zrOTw10tXf6q3YFMcZ/Se4/Z9hTv3HO
XHygfIXWpKmG/mouFRIUOFgt/g2N9oZsLBataKkzqQKBgQD213fjVbC0lBO3MvGe
HbNhEQmSX4euSPBQiRJnOCHOYFHWpaCW+OjbfyWlusrypPM1bfKCnYC97KfLNMbD
tqX4Feb2qT45+/4w4kqrIOll+aWETcr9ASjagoq85YU4mms5W8od7q1gGfgI4rX0
Zag9CFccHhHhfCQ8C9tax5IInQKBgQDSfZJhByrhXUXI+aKVdfkjn/Z6MjC/Am1S
V/eFfjSsZ6PeOemfvtdlP59JNu/aVkz/G5k4HP7tEF6pWT5UhhgqnBpOaOvE8PWr
Ux0aDK9VOt7vALNM+E0Bl973M9Tj6DOVW6CSD/ga8nv6Z57dpOi6S8fWabLedAfJ
3eYW37RGaQKBgQDouKSTdMqwtZsQ8brS8/WW4lU/50kojCPmChWLs2RMCoud73HE
ZNBFgU6hPcbxlYqnKQ2nD4+9gE2CTDPJeX5os12Z2F6OlIJG3FLBnLnwJrpiTmW+
u0UlHkZnaY18nDnTTjL0nX5gSJuM5RHfZaiEQkS+gasiB8SxyAv7PoT0EQKBgEOP
UGtaLJY3JM3z6g5E1llr32WrNGAqfEJAv86WCnwHq94JAoZmb6YsvIh4XJXcu0vq
ZMxQ6jXW2jtKzKm+fIU4o2zlWj9VA9UgkSeqSKB3i9R0ihg7XiQTxdncRgl8nwni
ZfBbtcuYZtihZ6lGY/hfmF2mgWXLIjDVyyMuXCN5AoGASVx2d7PiLDmimz67nVid
3hxgWdfVh5qrK4lnoh4M2p6gy1V2IY81WEGvAv3iBi9MFs+GYe/XbBo/HoKtU1oc
Dh+nP/XEiJ8jL1EeC5BSMHFUt967xmBQz9hbcTBkzvr2+oUutghdQ3Ys+Ajd0V8H
noF4CMxg3uKuM7yADuSjG2Q=
-----END PRIVATE KEY-----";
const EC_P256: &str = r"-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgjPsyOOtQHl+1jCrU
NCLHCcPP4YDtRzJWJ2Tn+FbrcyehRANCAATifRmk9tViv4zlKtDdxy9VAYWTkBF1
n8EV9OQVBpQbfWmLXgEkPTtquPS35bAPGJRzLyMhDsdSpXWMNJIX9nKF
-----END PRIVATE KEY-----";
const ED25519: &str = r"-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIMAhi4eNWVXV0mWQzKXaW/FAQh5PnNCs+8FxyOkOM32A
-----END PRIVATE KEY-----";

/// A token of `claims` signed by `key` with this header `alg` and `kid`.
fn sign(key: &EncodingKey, alg: Algorithm, kid: &str, claims: Value) -> String {
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, &claims, key).unwrap()
}

/// `token` with its header's `kid` replaced (and so its signature broken).
fn with_kid(token: &str, kid: &str) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (header, rest) = token.split_once('.').unwrap();
    let mut header: Value = serde_json::from_slice(&b64.decode(header).unwrap()).unwrap();
    header["kid"] = kid.into();
    format!("{}.{rest}", b64.encode(header.to_string()))
}

fn rsa(pem: &str) -> EncodingKey {
    EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap()
}

fn exp() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600
}

/// `sub` = `who`, valid ten minutes.
fn claims(who: &str) -> Value {
    json!({"sub": who, "exp": exp()})
}

/// The public JWK of a private key, named `kid`, with or without `alg`.
fn jwk(key: &EncodingKey, alg: Algorithm, kid: &str, with_alg: bool) -> Value {
    let mut jwk = serde_json::to_value(Jwk::from_encoding_key(key, alg).unwrap()).unwrap();
    jwk["kid"] = kid.into();
    jwk["use"] = "sig".into();
    if !with_alg {
        jwk.as_object_mut().unwrap().remove("alg");
    }
    jwk
}

fn key_set(keys: &[Value]) -> Value {
    json!({ "keys": keys })
}

/// What the provider answers.
#[derive(Clone)]
enum Answer {
    Keys(Value),
    Status(u16),
    Garbage,
}

struct ProviderState {
    answer: Mutex<Answer>,
    cache_control: Mutex<Option<String>>,
    delay: Mutex<Duration>,
    fetches: AtomicUsize,
}

/// An identity provider's JWKS endpoint: a real HTTP/1.1 server on
/// 127.0.0.1 whose key set the test changes, counting the fetches.
struct Provider {
    addr: SocketAddr,
    state: Arc<ProviderState>,
    task: tokio::task::JoinHandle<()>,
}

impl Provider {
    async fn start(keys: Value) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(ProviderState {
            answer: Mutex::new(Answer::Keys(keys)),
            cache_control: Mutex::new(None),
            delay: Mutex::new(Duration::ZERO),
            fetches: AtomicUsize::new(0),
        });
        let shared = state.clone();
        // The connections live in the accept task's JoinSet: aborting the
        // task (`stop`) closes them and the port, as a crashed provider.
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                while connections.try_join_next().is_some() {}
                let state = shared.clone();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(answer(&state, req.uri().path()).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, state, task }
    }

    fn url(&self) -> String {
        format!("http://{}/.well-known/jwks.json", self.addr)
    }

    fn serve(&self, answer: Answer) {
        *self.state.answer.lock().unwrap() = answer;
    }

    fn cache_control(&self, value: &str) {
        *self.state.cache_control.lock().unwrap() = Some(value.to_owned());
    }

    fn delay(&self, delay: Duration) {
        *self.state.delay.lock().unwrap() = delay;
    }

    fn fetches(&self) -> usize {
        self.state.fetches.load(Ordering::SeqCst)
    }

    /// Down: connections closed, the port refuses.
    fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(state: &ProviderState, path: &str) -> http::Response<Full<Bytes>> {
    let response = http::Response::builder();
    if path != "/.well-known/jwks.json" {
        return response.status(404).body(Full::default()).unwrap();
    }
    state.fetches.fetch_add(1, Ordering::SeqCst);
    let delay = *state.delay.lock().unwrap();
    tokio::time::sleep(delay).await;
    let answer = state.answer.lock().unwrap().clone();
    let mut response = response.header("content-type", "application/json");
    if let Some(value) = state.cache_control.lock().unwrap().clone() {
        response = response.header("cache-control", value);
    }
    match answer {
        Answer::Keys(keys) => response.body(Full::new(Bytes::from(keys.to_string()))),
        Answer::Status(status) => response.status(status).body(Full::default()),
        Answer::Garbage => response.body(Full::new(Bytes::from_static(b"<html>oops</html>"))),
    }
    .unwrap()
}

/// The verifier as application state: `Claims` verifies (and fetches).
fn with_state(verifier: JwtVerifier) -> TestClient {
    TestClient::new(App::new().state(verifier).route(me))
}

/// The verifier in `JwtLayer`: the layer verifies (and fetches).
fn with_layer(verifier: JwtVerifier) -> TestClient {
    TestClient::new(App::new().layer(JwtLayer::new(verifier)).route(me))
}

#[track_caller]
fn assert_accepted(res: &TestResponse, who: &str) {
    assert_eq!((res.status().as_u16(), res.text()), (200, who.to_owned()));
}

#[tokio::test]
async fn rsa_ec_and_okp_keys_verify_by_kid_from_one_fetch() {
    let (a, ec, ed) = (
        rsa(RSA_A),
        EncodingKey::from_ec_pem(EC_P256.as_bytes()).unwrap(),
        EncodingKey::from_ed_pem(ED25519.as_bytes()).unwrap(),
    );
    let provider = Provider::start(key_set(&[
        jwk(&a, Algorithm::RS256, "a", true),
        // Without `alg`: bound to what the key type allows.
        jwk(&ec, Algorithm::ES256, "ec", false),
        jwk(&ed, Algorithm::EdDSA, "ed", false),
    ]))
    .await;
    let client = with_state(JwtVerifier::from_jwks(
        Jwks::from_url(provider.url()).unwrap(),
    ));
    assert_eq!(
        provider.fetches(),
        0,
        "nothing fetched before a token needs it"
    );
    let tokens = [
        sign(&a, Algorithm::RS256, "a", claims("rsa")),
        sign(&ec, Algorithm::ES256, "ec", claims("ec")),
        sign(&ed, Algorithm::EdDSA, "ed", claims("ed")),
    ];
    for _ in 0..3 {
        for (token, who) in tokens.iter().zip(["rsa", "ec", "ed"]) {
            assert_accepted(&call(&client, token).await, who);
        }
    }
    assert_eq!(provider.fetches(), 1, "the set is cached");
    // The right kid, another key's signature.
    let forged = sign(&rsa(RSA_B), Algorithm::RS256, "a", claims("mallory"));
    assert_invalid(
        &call(&client, &forged).await,
        "signed by a key not in the set",
    );
    // The right kid, an algorithm its JWK does not allow.
    let ps = sign(&a, Algorithm::PS256, "a", claims("rsa"));
    assert_invalid(&call(&client, &ps).await, "PS256 on a JWK that says RS256");
    assert_eq!(
        provider.fetches(),
        1,
        "a known kid is never a reason to fetch"
    );
}

#[tokio::test]
async fn rotation_new_key_after_a_refetch_removed_key_refused_after_max_age() {
    let (a, b) = (rsa(RSA_A), rsa(RSA_B));
    let (jwk_a, jwk_b) = (
        jwk(&a, Algorithm::RS256, "a", true),
        jwk(&b, Algorithm::RS256, "b", true),
    );
    let provider = Provider::start(key_set(std::slice::from_ref(&jwk_a))).await;
    // The provider's Cache-Control decides the lifetime (within bounds).
    provider.cache_control("public, max-age=2");
    let jwks = Jwks::from_url(provider.url())
        .unwrap()
        .max_age_bounds(Duration::ZERO, Duration::from_secs(3600))
        .cooldown(Duration::from_millis(200));
    let client = with_layer(JwtVerifier::from_jwks(jwks));
    let old = sign(&a, Algorithm::RS256, "a", claims("old"));
    let new = sign(&b, Algorithm::RS256, "b", claims("new"));
    assert_accepted(&call(&client, &old).await, "old");
    assert_eq!(provider.fetches(), 1);

    // The provider publishes the new key; its first token is unknown to
    // the cache: one refetch, then accepted.
    provider.serve(Answer::Keys(key_set(&[jwk_a.clone(), jwk_b.clone()])));
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_accepted(&call(&client, &new).await, "new");
    assert_eq!(provider.fetches(), 2);
    let rotated_at = std::time::Instant::now();

    // The provider retires the old key: its tokens still pass while the
    // cached set lives, and are refused once it has expired.
    provider.serve(Answer::Keys(key_set(&[jwk_b])));
    assert_accepted(&call(&client, &old).await, "old");
    assert_eq!(provider.fetches(), 2);
    tokio::time::sleep(Duration::from_millis(2100).saturating_sub(rotated_at.elapsed())).await;
    assert_invalid(&call(&client, &old).await, "retired key after max-age");
    assert_eq!(provider.fetches(), 3, "expiry: one refetch");
    assert_accepted(&call(&client, &new).await, "new");
    // Within the cooldown, the retired kid causes no more fetches.
    assert_invalid(&call(&client, &old).await, "retired key");
    assert_eq!(provider.fetches(), 3);
}

/// A provider publishing RSA key `a`, and that key's private half.
async fn provider_of_key_a() -> (Provider, EncodingKey) {
    let a = rsa(RSA_A);
    let provider = Provider::start(key_set(&[jwk(&a, Algorithm::RS256, "a", true)])).await;
    (provider, a)
}

#[tokio::test]
async fn a_burst_of_unknown_kids_makes_one_fetch_and_is_refused() {
    let (provider, a) = provider_of_key_a().await;
    let jwks = Jwks::from_url(provider.url())
        .unwrap()
        .cooldown(Duration::from_secs(1));
    let client = with_layer(JwtVerifier::from_jwks(jwks));
    let good = sign(&a, Algorithm::RS256, "a", claims("ada"));
    // Signing is slow in a debug build: the made-up kids reuse one token.
    let unknown = with_kid(&good, "not-published");
    let made_up: Vec<String> = (0..20)
        .map(|i| with_kid(&good, &format!("kid-{i}")))
        .collect();
    // A slow provider, so that the whole burst arrives during the fetch.
    provider.delay(Duration::from_millis(300));

    // Cold cache, 50 concurrent requests: one fetch.
    let answers = join_all((0..50).map(|_| call(&client, &good))).await;
    for res in &answers {
        assert_accepted(res, "ada");
    }
    assert_eq!(provider.fetches(), 1, "cold burst");

    // After the cooldown, 50 tokens naming a kid the provider does not
    // have: one refetch, all refused.
    tokio::time::sleep(Duration::from_millis(1050)).await;
    let started = std::time::Instant::now();
    let answers = join_all((0..50).map(|_| call(&client, &unknown))).await;
    for res in &answers {
        assert_invalid(res, "unknown kid");
    }
    assert_eq!(provider.fetches(), 2, "unknown-kid burst");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "waiters share one fetch"
    );

    // More made-up kids within the cooldown: refused without fetching.
    provider.delay(Duration::ZERO);
    for token in &made_up {
        assert_invalid(&call(&client, token).await, "made-up kid");
    }
    assert_eq!(provider.fetches(), 2, "cooldown");
    // The known key was never in doubt.
    assert_accepted(&call(&client, &good).await, "ada");
}

#[tokio::test]
async fn the_last_good_keys_serve_while_the_provider_fails() {
    let (provider, a) = provider_of_key_a().await;
    let jwks = Jwks::from_url(provider.url())
        .unwrap()
        .ttl(Duration::from_millis(400))
        .cooldown(Duration::from_millis(100))
        .max_stale(Duration::from_secs(3));
    let client = with_state(JwtVerifier::from_jwks(jwks));
    let token = sign(&a, Algorithm::RS256, "a", claims("ada"));
    assert_accepted(&call(&client, &token).await, "ada");
    let fetched_at = std::time::Instant::now();

    // Expired, and the provider answers 503, then garbage: each refetch
    // fails and the last good set is used.
    provider.serve(Answer::Status(503));
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_accepted(&call(&client, &token).await, "ada");
    assert_eq!(provider.fetches(), 2);
    provider.serve(Answer::Garbage);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_accepted(&call(&client, &token).await, "ada");
    assert_eq!(provider.fetches(), 3);
    // Within the cooldown after a failure: no new attempt.
    assert_accepted(&call(&client, &token).await, "ada");
    assert_eq!(provider.fetches(), 3);

    // The provider is gone altogether (connection refused).
    provider.stop();
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_accepted(&call(&client, &token).await, "ada");
    // Past max_stale (3 s after expiry), stale keys are no longer trusted.
    let limit = Duration::from_millis(400 + 3000 + 100);
    tokio::time::sleep(limit.saturating_sub(fetched_at.elapsed())).await;
    assert_invalid(&call(&client, &token).await, "stale beyond max_stale");
}

#[tokio::test]
async fn a_provider_that_never_answered_refuses_tokens_without_hanging() {
    let a = rsa(RSA_A);
    let provider = Provider::start(key_set(&[])).await;
    let url = provider.url();
    provider.stop();
    // Give the aborted task a moment to drop its listener.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let jwks = Jwks::from_url(url).unwrap().timeout(Duration::from_secs(2));
    let client = with_layer(JwtVerifier::from_jwks(jwks.clone()));
    let started = std::time::Instant::now();
    let token = sign(&a, Algorithm::RS256, "a", claims("ada"));
    assert_invalid(&call(&client, &token).await, "no key set yet");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(matches!(jwks.refresh().await, Err(JwksError::Client(_))));
}

#[tokio::test]
async fn hs256_tokens_never_verify_with_key_set_keys() {
    let a = rsa(RSA_A);
    let rsa_jwk = jwk(&a, Algorithm::RS256, "a", false);
    let secret = b"a shared secret of 32 bytes.....";
    let mut oct_jwk = serde_json::to_value(
        Jwk::from_encoding_key(&EncodingKey::from_secret(secret), Algorithm::HS256).unwrap(),
    )
    .unwrap();
    oct_jwk["kid"] = "h".into();
    let provider = Provider::start(key_set(&[rsa_jwk.clone(), oct_jwk])).await;
    let client = with_layer(JwtVerifier::from_jwks(
        Jwks::from_url(provider.url()).unwrap(),
    ));
    assert_accepted(
        &call(&client, &sign(&a, Algorithm::RS256, "a", claims("ada"))).await,
        "ada",
    );
    // The classic confusion: HS256 "signed" with the RSA key's public
    // material, which the attacker has from the key set; and a symmetric
    // key published in the set, which is never used.
    let n = rsa_jwk["n"].as_str().unwrap();
    let published = rsa_jwk.to_string();
    for (secret, kid, why) in [
        (n.as_bytes(), "a", "HS256 over n, naming the RSA kid"),
        (
            published.as_bytes(),
            "a",
            "HS256 over the JWK, naming the RSA kid",
        ),
        (&secret[..], "h", "HS256 with an oct key from the set"),
    ] {
        let token = sign(
            &EncodingKey::from_secret(secret),
            Algorithm::HS256,
            kid,
            claims("admin"),
        );
        assert_invalid(&call(&client, &token).await, why);
    }
    // `alg: none` naming the RSA kid.
    let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    let none = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","kid":"a"}"#),
        b64(claims("admin").to_string().as_bytes())
    );
    assert_invalid(&call(&client, &none).await, "alg none");
    // All refused on the spot: a known kid with the wrong algorithm is no
    // reason to fetch, and the skipped oct key's kid, unknown, falls in
    // the cooldown after the first fetch.
    assert_eq!(provider.fetches(), 1);
}
